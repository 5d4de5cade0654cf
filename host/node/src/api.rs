//! The HTTP API (axum). Every error is JSON `{"error": {"kind", "message"}}`
//! with a fitting status; back-pressure answers carry `Retry-After`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use bitsage_prover::Receipt;
use bitsage_sandbox::modules::PublisherSignature;
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{self, Role};
use crate::blobs::sha256_hex;
pub use crate::state::{rate_limited, ApiError, AppState, ErrorBody, VERIFY_BUDGET};
use crate::store::{now_ms, Admission, History, Job, JobEvent, JobMode, JobState, ModuleEntry, NewJob, WorkerEntry};

type AppResult<T> = Result<T, ApiError>;
type St = State<Arc<AppState>>;

/// Reads a request body under the node's size limit; too large is `413`.
/// An oversized body is still read (and dropped) up to four times the limit
/// before the answer, so the client, which is usually still sending,
/// receives the `413` instead of a reset connection; a declared length past
/// that is refused at once.
async fn body(s: &AppState, headers: &HeaderMap, body: Body) -> AppResult<Bytes> {
    read_body(s, headers, body, true).await
}

/// Authenticates, then reads the body. A refused request's body is read and
/// dropped (bounded as in [`body`]) so the client gets the `401`/`403`
/// rather than a broken pipe while it is still sending.
async fn authed_body(s: &AppState, headers: &HeaderMap, b: Body, need: Role) -> AppResult<(auth::Caller, Bytes)> {
    match auth::caller(s, headers, need).await {
        Ok(c) => Ok((c, body(s, headers, b).await?)),
        Err(e) => {
            let _ = read_body(s, headers, b, false).await;
            Err(e)
        }
    }
}

async fn read_body(s: &AppState, headers: &HeaderMap, body: Body, keep: bool) -> AppResult<Bytes> {
    let limit = s.config.max_body_bytes;
    let drain = limit.saturating_mul(4);
    let too_large = || {
        if keep {
            s.metrics.http_rejections.with_label_values(&["413"]).inc();
        }
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            format!("the request body is over the {limit}-byte limit"),
        )
    };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > drain) {
        return Err(too_large());
    }
    let mut body = body;
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::bad_request("bad-body", format!("reading the request body: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        seen = seen.saturating_add(data.len());
        if seen > drain {
            break;
        }
        if keep && seen <= limit {
            buf.extend_from_slice(&data);
        }
    }
    if seen > limit {
        return Err(too_large());
    }
    Ok(Bytes::from(buf))
}

fn json_body<T: serde::de::DeserializeOwned>(b: &[u8]) -> AppResult<T> {
    serde_json::from_slice(b).map_err(|e| ApiError::bad_request("bad-json", format!("the request body: {e}")))
}

fn b64(field: &'static str, s: &str) -> AppResult<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| ApiError::bad_request("bad-base64", format!("`{field}` is not base64: {e}")))
}

/// A back-pressure answer: counted, with `Retry-After: 5`.
fn back_pressure(s: &AppState, status: StatusCode, kind: &'static str, message: String) -> ApiError {
    s.metrics.http_rejections.with_label_values(&[status.as_str()]).inc();
    ApiError { retry_after: Some(5), ..ApiError::new(status, kind, message) }
}

/// A module a worker would refuse to compile is refused at the door (`422
/// compile-limit`, or `400 malformed-wasm`), before it is stored.
fn compile_bounds(bytes: &[u8]) -> AppResult<()> {
    use bitsage_sandbox::SandboxError;
    bitsage_sandbox::imports::check_encoding(bytes)
        .and_then(|()| bitsage_sandbox::compile::check(bytes, &Default::default()).map(|_| ()))
        .map_err(|e| match e {
            SandboxError::CompileLimit(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "compile-limit", e.to_string())
            }
            other => ApiError::bad_request("malformed-wasm", other.to_string()),
        })
}

fn digest_param(s: &str) -> AppResult<String> {
    let d = s.trim().to_ascii_lowercase();
    if d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(d)
    } else {
        Err(ApiError::bad_request("bad-digest", format!("`{s}` is not a hex SHA-256 digest")))
    }
}

pub(crate) async fn dashboard() -> Html<&'static str> {
    Html(include_str!("dashboard.html"))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
    version: &'static str,
    store: crate::store::Dialect,
    uptime_s: u64,
}

/// Liveness and store reachability (no key needed).
#[utoipa::path(get, path = "/health", responses((status = 200, body = Health), (status = 503, body = ErrorBody)))]
pub(crate) async fn health(State(s): St) -> AppResult<Json<Health>> {
    s.store.ping().await?;
    Ok(Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        store: s.store.dialect(),
        uptime_s: s.started.elapsed().as_secs(),
    }))
}

/// Prometheus text exposition (no key needed).
#[utoipa::path(get, path = "/metrics", responses((status = 200, content_type = "text/plain", body = String)))]
pub(crate) async fn metrics(State(s): St) -> impl IntoResponse {
    let text = s.metrics.render(&s.store, s.pool.as_deref()).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// A job to run.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitJob {
    /// The workload component, base64. Give this or `module_digest`.
    module: Option<String>,
    /// The SHA-256 (hex) of an approved module already on the node.
    module_digest: Option<String>,
    /// The job input as JSON (what `bitsage-host run --input` reads).
    #[schema(value_type = Object)]
    input: Option<serde_json::Value>,
    /// The job input as raw bytes, base64 (instead of `input`).
    input_base64: Option<String>,
    /// `prove` (default) or `dev` (execute only, no proof).
    mode: Option<JobMode>,
    /// 96 or 128 bits; the node's setting by default.
    security: Option<u32>,
    /// The client's nonce (at most 31 bytes, a Cairo short string): with
    /// the module, program and VM input digests and the security level it
    /// makes the job's spec hash, the escrow's job id.
    nonce: Option<String>,
    /// For a paid job: the spec hash (0x hex) the client escrowed payment
    /// under, derived from its own dev run. The node refuses to prove a job
    /// whose run gives another statement (`statement-mismatch`).
    spec_hash: Option<String>,
}

/// A job's state and results.
#[derive(Serialize, ToSchema)]
pub struct JobView {
    #[serde(flatten)]
    job: Job,
    /// Path of the receipt, once proved.
    receipt_url: Option<String>,
    /// True when an earlier submission with the same idempotency key is returned.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    duplicate: bool,
}

fn view(job: Job, duplicate: bool) -> JobView {
    let receipt_url = (job.receipt_digest.is_some()).then(|| format!("/v1/jobs/{}/receipt", job.id));
    JobView { job, receipt_url, duplicate }
}

/// Submits a job: `202` with its id, or `200` with the earlier job when the
/// `Idempotency-Key` was seen before for this key.
#[utoipa::path(post, path = "/v1/jobs", request_body = SubmitJob,
    params(("Idempotency-Key" = Option<String>, Header, description = "Submitting twice with one key makes one job")),
    responses((status = 202, body = JobView), (status = 200, body = JobView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn submit_job(State(s): St, headers: HeaderMap, b: Body) -> AppResult<Response> {
    let (caller, bytes) = authed_body(&s, &headers, b, Role::Client).await?;
    let req: SubmitJob = json_body(&bytes)?;
    let idem = match headers.get("idempotency-key") {
        None => None,
        Some(v) => match v.to_str() {
            Ok(k) if !k.is_empty() && k.len() <= 200 => Some(k.to_string()),
            _ => {
                return Err(ApiError::bad_request(
                    "bad-idempotency-key",
                    "Idempotency-Key must be 1-200 visible characters",
                ))
            }
        },
    };
    // A repeated submission returns the earlier job, whatever the queue looks like now.
    if let Some(k) = &idem {
        if let Some(existing) = s.store.job_by_idempotency(&caller.key_id, k).await? {
            return Ok(job_answer(existing, false));
        }
    }
    let security = req.security.unwrap_or(s.config.security);
    if !matches!(security, 96 | 128) {
        return Err(ApiError::bad_request("bad-security", format!("security {security} (use 96 or 128)")));
    }
    let module_digest = match (&req.module, &req.module_digest) {
        (Some(m), None) => {
            let bytes = b64("module", m)?;
            let digest = sha256_hex(&bytes);
            require_approved(&s, &digest).await?;
            compile_bounds(&bytes)?;
            s.blobs.put(&bytes).await?;
            digest
        }
        (None, Some(d)) => {
            let digest = digest_param(d)?;
            require_approved(&s, &digest).await?;
            if !s.blobs.contains(&digest).await? {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "module-unknown",
                    format!("module {digest} is not on this node; upload it with `module`"),
                ));
            }
            digest
        }
        _ => {
            return Err(ApiError::bad_request("bad-module", "give exactly one of `module` (base64) or `module_digest`"))
        }
    };
    let input = match (&req.input, &req.input_base64) {
        (Some(v), None) => serde_json::to_vec(v).map_err(ApiError::internal)?,
        (None, Some(b)) => b64("input_base64", b)?,
        (None, None) => b"{}".to_vec(),
        _ => return Err(ApiError::bad_request("bad-input", "give at most one of `input` or `input_base64`")),
    };
    // Over the sandbox's input cap: refused now, before anything is stored.
    let cap = s.config.limits.input_bytes;
    if input.len() > cap {
        s.metrics.http_rejections.with_label_values(&["413"]).inc();
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "input-too-large",
            format!("the job input is {} bytes, over the node's {cap}-byte input cap", input.len()),
        ));
    }
    let nonce = req.nonce.clone().unwrap_or_default();
    bitsage_settle::attest::nonce_felt(&nonce).map_err(|e| ApiError::bad_request("bad-nonce", e.to_string()))?;
    let spec_hash = match &req.spec_hash {
        None => None,
        Some(h) => Some(
            bitsage_settle::parse_felt(h)
                .map(bitsage_settle::felt_hex)
                .ok_or_else(|| ApiError::bad_request("bad-spec-hash", "`spec_hash` is not a felt in 0x hex"))?,
        ),
    };
    let input_digest = s.blobs.put(&input).await?;
    let mode = req.mode.unwrap_or(JobMode::Prove);
    // Back-pressure: the node's queue, then this key's share of it, counted
    // and admitted in one step.
    let admitted = s
        .store
        .admit_job(
            &NewJob {
                mode,
                module_digest: &module_digest,
                input_digest: &input_digest,
                input_bytes: input.len() as i64,
                security: security as i64,
                api_key_id: Some(&caller.key_id),
                idempotency_key: idem.as_deref(),
                max_attempts: s.config.max_attempts,
                nonce: &nonce,
                spec_hash: spec_hash.as_deref(),
            },
            s.config.max_queue,
            s.config.max_active_per_key,
        )
        .await?;
    let (job, new) = match admitted {
        Admission::Admitted { job, new } => (*job, new),
        Admission::QueueFull => {
            let why = format!("the node has {} jobs queued or running; try again later", s.config.max_queue);
            return Err(back_pressure(&s, StatusCode::SERVICE_UNAVAILABLE, "queue-full", why));
        }
        Admission::KeyBusy => {
            let why = format!("this key already has {} jobs queued or running", s.config.max_active_per_key);
            return Err(back_pressure(&s, StatusCode::TOO_MANY_REQUESTS, "too-many-jobs", why));
        }
    };
    if new {
        s.metrics.submitted.with_label_values(&[mode.as_str()]).inc();
        s.wake.notify_one();
        tracing::info!(job_id = %job.id, module = %module_digest, "job submitted");
    }
    Ok(job_answer(job, new))
}

/// `202` and the new job, or `200` and the earlier one; `Location` either way.
fn job_answer(job: Job, new: bool) -> Response {
    let status = if new { StatusCode::ACCEPTED } else { StatusCode::OK };
    let location = format!("/v1/jobs/{}", job.id);
    let mut resp = (status, Json(view(job, !new))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

async fn require_approved(s: &AppState, digest: &str) -> AppResult<()> {
    if s.config.open_mode || s.store.module(digest).await?.is_some() {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "module-not-approved",
        format!("module {digest} is not on this node's approved list (an operator adds it with POST /v1/modules)"),
    ))
}

#[derive(Deserialize, IntoParams)]
pub(crate) struct ListQuery {
    /// At most this many (default 50, at most 500).
    limit: Option<i64>,
}

/// The newest jobs: a client's own, or every job for an operator.
#[utoipa::path(get, path = "/v1/jobs", params(ListQuery), responses((status = 200, body = [JobView])), security(("bearer" = [])))]
pub(crate) async fn list_jobs(
    State(s): St,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> AppResult<Json<Vec<JobView>>> {
    let caller = auth::caller(&s, &headers, Role::Client).await?;
    let owner = (caller.role != Role::Operator).then_some(caller.key_id.as_str());
    let jobs = s.store.jobs(owner, q.limit.unwrap_or(50).clamp(1, 500)).await?;
    Ok(Json(jobs.into_iter().map(|j| view(j, false)).collect()))
}

async fn visible_job(s: &AppState, headers: &HeaderMap, id: &str) -> AppResult<Job> {
    let caller = auth::caller(s, headers, Role::Client).await?;
    job_for(s, &caller, id).await
}

/// Job `id` if `caller` may see it (its owner, or an operator).
async fn job_for(s: &AppState, caller: &auth::Caller, id: &str) -> AppResult<Job> {
    match s.store.job(id).await? {
        Some(j) if caller.role == Role::Operator || j.owned_by(&caller.key_id) => Ok(j),
        _ => Err(ApiError::not_found(&format!("job {id}"))),
    }
}

/// The longest a `GET /v1/jobs/{id}?wait_ms=` holds its answer.
pub const MAX_WAIT_MS: u64 = 30_000;

/// How often a long poll re-reads the job even without a signal (a worker
/// in another process, on a shared PostgreSQL store, signals nobody here).
const WAIT_RECHECK: std::time::Duration = std::time::Duration::from_millis(250);

/// Long polls one API key may hold at once, and all keys together; beyond
/// either, `wait_ms` is ignored and the job is answered at once, so held
/// connections and their re-reads of the store stay bounded.
pub const WAITS_PER_KEY: usize = 64;
pub const MAX_WAITS: usize = 1024;

/// The entry of [`AppState::waits`] that counts every key's long polls (no
/// key id contains a NUL).
const ALL_WAITS: &str = "\0all";

#[derive(Deserialize, IntoParams)]
pub(crate) struct JobQuery {
    /// Hold the answer until the job has ended (proved, executed, failed,
    /// settling or settled) or this many milliseconds have passed (at most
    /// 30,000); 0 or absent answers at once.
    wait_ms: Option<u64>,
}

/// Whether a job has ended for its client: a result or a failure to fetch.
fn ended(state: &str) -> bool {
    !matches!(state, "queued" | "running" | "proving")
}

/// A job's state, timings, fuel, rows, output and error; with `wait_ms`, a
/// long poll that answers as soon as the job ends.
#[utoipa::path(get, path = "/v1/jobs/{id}", params(("id" = String, Path), JobQuery),
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn get_job(
    State(s): St,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<JobQuery>,
) -> AppResult<Json<JobView>> {
    let caller = auth::caller(&s, &headers, Role::Client).await?;
    // Subscribed before the read, so an end recorded in between still wakes this poll.
    let mut ends = s.done.subscribe();
    let mut job = job_for(&s, &caller, &id).await?;
    let wait_ms = q.wait_ms.unwrap_or(0).min(MAX_WAIT_MS);
    // Held until the answer: the key's place among long polls, and the node's.
    let slots = (wait_ms > 0 && !ended(&job.state))
        .then(|| KeySlot::take_in(&s.waits, &caller.key_id, WAITS_PER_KEY))
        .flatten()
        .and_then(|k| Some((k, KeySlot::take_in(&s.waits, ALL_WAITS, MAX_WAITS)?)));
    let deadline = Instant::now() + std::time::Duration::from_millis(if slots.is_some() { wait_ms } else { 0 });
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if ended(&job.state) || left.is_zero() {
            return Ok(Json(view(job, false)));
        }
        // This job's end, or a lag (ends dropped unread): read the job again.
        let own_end = async {
            loop {
                match ends.recv().await {
                    Ok(ended_id) if ended_id == id => break,
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        };
        tokio::select! {
            _ = own_end => {}
            // Another process's worker may end it: the store is read now and then regardless.
            _ = tokio::time::sleep(left.min(WAIT_RECHECK)) => {}
        }
        job = s.store.job(&id).await?.ok_or_else(|| ApiError::not_found(&format!("job {id}")))?;
    }
}

async fn receipt_bytes(s: &AppState, job: &Job) -> AppResult<Vec<u8>> {
    let Some(d) = &job.receipt_digest else {
        return Err(ApiError::new(StatusCode::CONFLICT, "not-proved", format!("job {} is {}", job.id, job.state)));
    };
    s.blobs.get(d).await?.ok_or_else(|| ApiError::internal(format!("receipt blob {d} is missing")))
}

fn octets(bytes: Vec<u8>, name: String) -> Response {
    let disposition = format!("attachment; filename=\"{name}\"");
    let mut resp = ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response();
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// The receipt file (statement + proof); check it with `bitsage-host verify`.
#[utoipa::path(get, path = "/v1/jobs/{id}/receipt", params(("id" = String, Path)),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn get_receipt(State(s): St, headers: HeaderMap, Path(id): Path<String>) -> AppResult<Response> {
    let job = visible_job(&s, &headers, &id).await?;
    Ok(octets(receipt_bytes(&s, &job).await?, format!("{id}.receipt")))
}

/// The receipt of the job whose result this node submitted to the escrow
/// under `spec_hash`, for validators. Public: the worker published the
/// result's digests on chain, and validators must be able to check them.
#[utoipa::path(get, path = "/v1/settlement/{spec_hash}/receipt", params(("spec_hash" = String, Path)),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 404, body = ErrorBody)))]
pub(crate) async fn settlement_receipt(State(s): St, Path(spec): Path<String>) -> AppResult<Response> {
    let felt = spec
        .strip_prefix("0x")
        .filter(|h| !h.is_empty() && h.len() <= 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
        .ok_or_else(|| ApiError::bad_request("bad-spec-hash", "a spec hash is 0x followed by at most 64 hex digits"))?;
    let canonical = format!("0x{:0>64}", felt.to_ascii_lowercase());
    let job = s.store.job_by_spec_hash(&canonical).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not-settled-here",
            format!("no result was submitted under {spec} by this node"),
        )
    })?;
    let name = format!("{}.receipt", job.id);
    Ok(octets(receipt_bytes(&s, &job).await?, name))
}

/// The Stwo proof alone (bincode), without the statement.
#[utoipa::path(get, path = "/v1/jobs/{id}/proof", params(("id" = String, Path)),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn get_proof(State(s): St, headers: HeaderMap, Path(id): Path<String>) -> AppResult<Response> {
    let job = visible_job(&s, &headers, &id).await?;
    let bytes = receipt_bytes(&s, &job).await?;
    let proof = Receipt::from_bytes(&bytes).and_then(|r| r.proof_encoded()).map_err(ApiError::internal)?;
    Ok(octets(proof, format!("{id}.proof")))
}

/// A job's history: submitted, claimed, proving, proved or failed, requeued.
#[utoipa::path(get, path = "/v1/jobs/{id}/events", params(("id" = String, Path)),
    responses((status = 200, body = [JobEvent])), security(("bearer" = [])))]
pub(crate) async fn job_events(
    State(s): St,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<JobEvent>>> {
    visible_job(&s, &headers, &id).await?;
    Ok(Json(s.store.events(Some(&id), 0, 1000).await?))
}

/// A verifier's verdict on a receipt.
#[derive(Serialize, ToSchema)]
pub struct Verdict {
    valid: bool,
    /// Why it was rejected.
    error: Option<String>,
    digest: Option<String>,
    /// SHA-256 of the VM program, hex.
    program_digest: Option<String>,
    /// The first [`ECHO_WORDS`] public input words (`input_len` has the count).
    input: Option<Vec<u32>>,
    input_len: Option<usize>,
    /// The first [`ECHO_WORDS`] public output words (`output_len` has the count).
    output: Option<Vec<u32>>,
    output_len: Option<usize>,
    module: Option<String>,
    security_bits: Option<u32>,
    verify_ms: f64,
}

/// Words of a statement's input and output a verdict repeats: an answer
/// never grows with what a client sent.
pub const ECHO_WORDS: usize = 64;

/// Receipt verifications one API key may run at once.
pub const VERIFY_PER_KEY: usize = 2;

/// A key's place among the verifications running; released on drop.
struct KeySlot {
    key: String,
    running: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
}

impl KeySlot {
    fn take(s: &AppState, key: &str) -> Option<KeySlot> {
        Self::take_in(&s.verify_by_key, key, VERIFY_PER_KEY)
    }

    /// A place for `key` in `running`, if it holds fewer than `cap`.
    fn take_in(
        running: &Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
        key: &str,
        cap: usize,
    ) -> Option<KeySlot> {
        let mut map = running.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(key.to_string()).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(KeySlot { key: key.to_string(), running: running.clone() })
    }
}

impl Drop for KeySlot {
    fn drop(&mut self) {
        let mut map = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

fn echo(words: &[obelysk_vm::M31]) -> Vec<u32> {
    words.iter().take(ECHO_WORDS).map(|w| w.0).collect()
}

/// Verifies an uploaded receipt file (the body is the file's bytes).
#[utoipa::path(post, path = "/v1/verify", request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = Verdict), (status = 413, body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn verify_receipt(State(s): St, headers: HeaderMap, b: Body) -> AppResult<Json<Verdict>> {
    let (caller, bytes) = authed_body(&s, &headers, b, Role::Client).await?;
    let Some(key_slot) = KeySlot::take(&s, &caller.key_id) else {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "verifier-busy",
            format!("this key already has {VERIFY_PER_KEY} verifications running"),
        );
        e.retry_after = Some(1);
        return Err(e);
    };
    let Ok(slot) = s.verify_slots.clone().try_acquire_owned() else {
        let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "verifier-busy", "every verifier slot is busy");
        e.retry_after = Some(1);
        return Err(e);
    };
    let verdict = tokio::task::spawn_blocking(move || {
        // Held until the verification ends, even if the answer went first.
        let _slots = (slot, key_slot);
        let t0 = Instant::now();
        let mut v = Verdict {
            valid: false,
            error: None,
            digest: None,
            program_digest: None,
            input: None,
            input_len: None,
            output: None,
            output_len: None,
            module: None,
            security_bits: None,
            verify_ms: 0.0,
        };
        match Receipt::from_bytes(&bytes) {
            Err(e) => v.error = Some(bitsage_air::verify::error_chain(&e)),
            Ok(r) => {
                let st = &r.body.statement;
                v.digest = Some(r.digest_hex());
                v.program_digest = Some(hex::encode(st.program.digest()));
                (v.input, v.input_len) = (Some(echo(&st.input)), Some(st.input.len()));
                (v.output, v.output_len) = (Some(echo(&st.output)), Some(st.output.len()));
                v.module = r.body.module.map(hex::encode);
                v.security_bits = Some(st.security.bits());
                match r.verify() {
                    Ok(()) => v.valid = true,
                    Err(e) => v.error = Some(bitsage_air::verify::error_chain(&e)),
                }
            }
        }
        v.verify_ms = t0.elapsed().as_secs_f64() * 1e3;
        v
    });
    let verdict = tokio::time::timeout(VERIFY_BUDGET, verdict)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "verify-budget-exceeded",
                format!("verification took longer than its {} s budget", VERIFY_BUDGET.as_secs()),
            )
        })?
        .map_err(ApiError::internal)?;
    Ok(Json(verdict))
}

/// The approved modules.
#[utoipa::path(get, path = "/v1/modules", responses((status = 200, body = [ModuleEntry])), security(("bearer" = [])))]
pub(crate) async fn list_modules(State(s): St, headers: HeaderMap) -> AppResult<Json<Vec<ModuleEntry>>> {
    auth::caller(&s, &headers, Role::Client).await?;
    Ok(Json(s.store.modules().await?))
}

/// A module to approve (operators only).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddModule {
    name: String,
    /// The component, base64.
    module: String,
    /// ed25519 publisher key (hex), with `signature`.
    publisher_key: Option<String>,
    /// ed25519 signature (hex) over `"bitsage-module-v1:" || sha256(module)`.
    signature: Option<String>,
}

/// Uploads and approves a module (operators only).
#[utoipa::path(post, path = "/v1/modules", request_body = AddModule,
    responses((status = 201, body = ModuleEntry), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn add_module(State(s): St, headers: HeaderMap, b: Body) -> AppResult<Response> {
    let (_, bytes) = authed_body(&s, &headers, b, Role::Operator).await?;
    let req: AddModule = json_body(&bytes)?;
    let name = req.name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(ApiError::bad_request("bad-name", "a module name is 1-100 characters"));
    }
    let bytes = b64("module", &req.module)?;
    compile_bounds(&bytes)?;
    let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&bytes).into();
    let publisher = match (req.publisher_key, req.signature) {
        (Some(key), Some(signature)) => Some(PublisherSignature { key, signature }),
        (None, None) => None,
        _ => {
            return Err(ApiError::bad_request("bad-signature", "give both `publisher_key` and `signature`, or neither"))
        }
    };
    if let Some(p) = &publisher {
        p.verify(&digest).map_err(|e| ApiError::bad_request("signature-mismatch", e.to_string()))?;
    }
    s.blobs.put(&bytes).await?;
    let entry = ModuleEntry {
        digest: hex::encode(digest),
        name: name.to_string(),
        size: bytes.len() as i64,
        approved_at: now_ms(),
        publisher_key: publisher.as_ref().map(|p| p.key.clone()),
        signature: publisher.map(|p| p.signature),
    };
    s.store.approve_module(&entry).await?;
    tracing::info!(module = %entry.digest, name = %entry.name, "module approved");
    Ok((StatusCode::CREATED, Json(entry)).into_response())
}

/// The prover devices of this node and of every live worker.
#[derive(Serialize, ToSchema)]
pub struct GpuView {
    /// This process's device pool.
    #[schema(value_type = Vec<Object>)]
    local: Vec<bitsage_prover::pool::DeviceStatus>,
    /// Each live worker's devices, as it last reported them.
    #[schema(value_type = Vec<Object>)]
    workers: Vec<serde_json::Value>,
}

#[utoipa::path(get, path = "/v1/gpu", responses((status = 200, body = GpuView)), security(("bearer" = [])))]
pub(crate) async fn gpu(State(s): St, headers: HeaderMap) -> AppResult<Json<GpuView>> {
    auth::caller(&s, &headers, Role::Client).await?;
    let local = s.pool.as_ref().map(|p| p.status()).unwrap_or_default();
    let workers = live_workers(&s)
        .await?
        .into_iter()
        .map(|w| {
            let devices: serde_json::Value = serde_json::from_str(&w.devices).unwrap_or(json!([]));
            json!({ "worker": w.id, "host": w.host, "devices": devices })
        })
        .collect();
    Ok(Json(GpuView { local, workers }))
}

async fn live_workers(s: &AppState) -> AppResult<Vec<WorkerEntry>> {
    let since = now_ms() - 3 * s.config.lease().as_millis() as i64;
    Ok(s.store.workers(since).await?.into_iter().filter(|w| w.stopped_at.is_none()).collect())
}

/// Workers seen recently.
#[utoipa::path(get, path = "/v1/workers", responses((status = 200, body = [WorkerEntry])), security(("bearer" = [])))]
pub(crate) async fn workers(State(s): St, headers: HeaderMap) -> AppResult<Json<Vec<WorkerEntry>>> {
    auth::caller(&s, &headers, Role::Client).await?;
    let since = now_ms() - 3_600_000;
    Ok(Json(s.store.workers(since).await?))
}

#[derive(Deserialize, IntoParams)]
pub(crate) struct EventsQuery {
    /// Only events with a larger id.
    after: Option<i64>,
    /// Only this job's events.
    job: Option<String>,
    limit: Option<i64>,
}

/// The event log of every job, oldest first (operators; `bitsage-host logs`).
#[utoipa::path(get, path = "/v1/events", params(EventsQuery), responses((status = 200, body = [JobEvent])), security(("bearer" = [])))]
pub(crate) async fn events(
    State(s): St,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> AppResult<Json<Vec<JobEvent>>> {
    auth::caller(&s, &headers, Role::Operator).await?;
    let limit = q.limit.unwrap_or(200).clamp(1, 5000);
    Ok(Json(s.store.events(q.job.as_deref(), q.after.unwrap_or(0), limit).await?))
}

#[derive(Deserialize, IntoParams)]
pub(crate) struct HistoryQuery {
    /// How far back, in minutes (1 to 1440; 60 by default), in one-minute buckets.
    minutes: Option<usize>,
}

/// The last hour (or `minutes`) in one-minute buckets: finished jobs by
/// state, the proving-time distribution, each device's busy fraction. The
/// dashboard plots it.
#[utoipa::path(get, path = "/v1/history", params(HistoryQuery), responses((status = 200, body = History)), security(("bearer" = [])))]
pub(crate) async fn history(
    State(s): St,
    headers: HeaderMap,
    Query(q): Query<HistoryQuery>,
) -> AppResult<Json<History>> {
    auth::caller(&s, &headers, Role::Client).await?;
    let minutes = q.minutes.unwrap_or(60);
    if !(1..=1440).contains(&minutes) {
        return Err(ApiError::bad_request("bad-window", format!("minutes must be 1 to 1440, not {minutes}")));
    }
    Ok(Json(s.store.history(now_ms(), 60_000, minutes).await?))
}

/// The node at a glance (operators; `bitsage-host status`).
#[utoipa::path(get, path = "/v1/status", responses((status = 200, body = Object)), security(("bearer" = [])))]
pub(crate) async fn status(State(s): St, headers: HeaderMap) -> AppResult<Json<serde_json::Value>> {
    auth::caller(&s, &headers, Role::Operator).await?;
    let counts: serde_json::Map<String, serde_json::Value> =
        s.store.counts().await?.into_iter().map(|(k, v)| (k, json!(v))).collect();
    let workers = live_workers(&s).await?;
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "store": s.store.dialect(),
        "uptime_s": s.started.elapsed().as_secs(),
        "jobs": counts,
        "queue_depth": s.store.active(None).await?,
        "open_mode": s.config.open_mode,
        "workers": workers,
        "devices": s.pool.as_ref().map(|p| p.status()).unwrap_or_default(),
        "terminal_states": JobState::ALL.iter().filter(|j| j.is_terminal()).map(|j| j.as_str()).collect::<Vec<_>>(),
    })))
}
