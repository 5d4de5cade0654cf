//! Workers: claim a job, run its module in the sandbox, prove the VM
//! execution on the device pool, store the receipt, record the outcome.
//!
//! A worker holds a lease on its job and renews it every third of the
//! lease while it works. If the process dies the lease runs out and any
//! worker (in this process or another) claims the job again. Updates are
//! fenced by the claim, so a worker that lost its lease writes nothing.
//! A guest's failure is the job's failure, with the sandbox's typed reason;
//! the worker goes on to the next job.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bitsage_air::{SecurityLevel, Statement};
use bitsage_prover::pool::DevicePool;
use bitsage_prover::{ProveError, ProveOptions, Receipt};
use bitsage_sandbox::{Limits, Sandbox, SandboxError};
use bitsage_settle::attest::JobSpec;
use tokio::sync::{watch, Notify};
use tracing::{info, warn, Instrument};

use crate::blobs::Blobs;
use crate::metrics::Metrics;
use crate::store::{Claim, JobMode, JobState, Outcome, Store};

/// What every worker task of one process shares.
pub struct WorkerContext {
    pub store: Store,
    pub blobs: Blobs,
    pub sandbox: Arc<Sandbox>,
    pub pool: Arc<DevicePool>,
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
    /// The process's worker id (tasks append their index).
    pub id: String,
    pub lease: Duration,
    pub poll: Duration,
    /// Signalled when a job is submitted to this process's API.
    pub wake: Arc<Notify>,
    /// Each job's id once its end is recorded (wakes the API's long polls).
    pub done: crate::state::Ended,
    /// The worker's identity: signs receipts, settles on chain.
    pub identity: Option<Arc<crate::settle::Identity>>,
}

/// The guest errors that are a limit being hit (counted in metrics).
fn is_limit(e: &SandboxError) -> bool {
    matches!(
        e,
        SandboxError::InputTooLarge { .. }
            | SandboxError::FuelExhausted { .. }
            | SandboxError::Deadline { .. }
            | SandboxError::MemoryLimit { .. }
            | SandboxError::StackOverflow { .. }
            | SandboxError::OutputTooLarge { .. }
            | SandboxError::LogLimit { .. }
            | SandboxError::TraceLimit { .. }
    )
}

/// The device pool's state, JSON (stored in the workers table).
pub fn devices_json(pool: &DevicePool) -> String {
    serde_json::to_string(&pool.status()).unwrap_or_else(|_| "[]".into())
}

/// Runs worker task `index` until `stop` turns true.
pub async fn run(ctx: Arc<WorkerContext>, index: usize, mut stop: watch::Receiver<bool>) {
    let id = format!("{}/{index}", ctx.id);
    loop {
        if *stop.borrow() {
            break;
        }
        match ctx.store.claim(&id, ctx.lease).await {
            Ok(Some(claim)) => {
                let span = tracing::info_span!("job", job_id = %claim.job.id, attempt = claim.attempt, worker = %id);
                process(&ctx, claim).instrument(span).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => warn!(worker = %id, "claiming a job failed: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(ctx.poll) => {}
            _ = ctx.wake.notified() => {}
            _ = stop.changed() => {}
        }
    }
}

/// Keeps the process's row in the workers table fresh.
pub async fn heartbeat(ctx: Arc<WorkerContext>, mut stop: watch::Receiver<bool>) {
    loop {
        if let Err(e) = ctx.store.worker_heartbeat(&ctx.id, &devices_json(&ctx.pool)).await {
            warn!("worker heartbeat failed: {e}");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stop.changed() => break,
        }
    }
    let _ = ctx.store.worker_stopped(&ctx.id).await;
}

// A short-lived return value: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Failure {
    /// The job's own fault: fail it with this reason.
    Job { kind: String, message: String, outcome: Outcome },
    /// The node's fault: retry while attempts remain.
    Node { kind: &'static str, message: String },
    /// The lease was lost; someone else owns the job now.
    Lost,
}

async fn process(ctx: &Arc<WorkerContext>, claim: Claim) {
    let started = Instant::now();
    info!("claimed ({} mode)", claim.job.mode);
    let renewer = {
        let ctx = ctx.clone();
        let claim = claim.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(ctx.lease / 3).await;
                match ctx.store.renew(&claim, ctx.lease).await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => warn!("renewing the lease failed: {e}"),
                }
            }
        })
    };
    let result = work(ctx, &claim).await;
    renewer.abort();
    let store = &ctx.store;
    let recorded = match result {
        Ok((state, outcome)) => {
            let ok = store.finish(&claim, state, &outcome).await;
            if let (Ok(true), Some(backend)) = (&ok, outcome.backend.as_deref()) {
                ctx.metrics.proofs.with_label_values(&[backend]).inc();
            }
            if let (Ok(true), JobState::Proved, Some(id)) = (&ok, state, &ctx.identity) {
                settle_proved(ctx, id, &claim.job.id).await;
            }
            ok.map(|ours| (ours, state.as_str().to_string()))
        }
        Err(Failure::Job { kind, message, outcome }) => {
            warn!("failed: {kind}: {message}");
            ctx.metrics.failures.with_label_values(&[&kind]).inc();
            store.fail(&claim, &kind, &message, false, &outcome).await.map(|ours| (ours, "failed".into()))
        }
        Err(Failure::Node { kind, message }) => {
            warn!("node error: {kind}: {message}");
            ctx.metrics.failures.with_label_values(&[kind]).inc();
            store.fail(&claim, kind, &message, true, &Outcome::default()).await.map(|ours| (ours, "retry".into()))
        }
        Err(Failure::Lost) => Ok((false, "lost".into())),
    };
    // No long poll waiting is not an error.
    let _ = ctx.done.send(claim.job.id.clone());
    match recorded {
        Ok((true, outcome)) => {
            ctx.metrics.job_seconds.with_label_values(&[&outcome]).observe(started.elapsed().as_secs_f64());
            info!("{outcome} in {:.1} ms", started.elapsed().as_secs_f64() * 1e3);
        }
        Ok((false, _)) => warn!("the lease was lost before the job finished; its result is dropped"),
        Err(e) => warn!("recording the outcome failed (the lease will expire and the job retry): {e}"),
    }
}

/// Submits a freshly proved job's result when an escrow waits for it; a
/// failure is recorded on the job and leaves it `proved`.
async fn settle_proved(ctx: &Arc<WorkerContext>, id: &crate::settle::Identity, job_id: &str) {
    let job = match ctx.store.job(job_id).await {
        Ok(Some(j)) => j,
        _ => return,
    };
    if let Err(e) = id.settle(&ctx.store, &ctx.blobs, &job).await {
        warn!("settling failed: {e:#}");
        let _ = ctx.store.event(job_id, "settlement-failed", None, Some(&format!("{e:#}"))).await;
    }
}

/// A job's module: already loaded by this process's sandbox, or its bytes.
enum ModuleSource {
    Loaded(bitsage_sandbox::Module),
    Bytes(Vec<u8>),
}

async fn work(ctx: &Arc<WorkerContext>, claim: &Claim) -> Result<(JobState, Outcome), Failure> {
    let job = &claim.job;
    let node = |kind: &'static str| {
        move |e: crate::blobs::BlobError| Failure::Node { kind, message: bitsage_air::verify::error_chain(&e) }
    };
    let missing = || Failure::Job {
        kind: "blob-missing".into(),
        message: "the job's module or input is not in the blob store".into(),
        outcome: Outcome::default(),
    };
    // A module this process already loaded is not read or hashed again.
    let digest: Option<[u8; 32]> = hex::decode(&job.module_digest).ok().and_then(|d| d.try_into().ok());
    let module = match digest.and_then(|d| ctx.sandbox.loaded(&d)) {
        Some(m) => ModuleSource::Loaded(m),
        None => ModuleSource::Bytes(
            ctx.blobs.get(&job.module_digest).await.map_err(node("blob-store"))?.ok_or_else(missing)?,
        ),
    };
    let input = ctx.blobs.get(&job.input_digest).await.map_err(node("blob-store"))?.ok_or_else(missing)?;

    let sandbox = ctx.sandbox.clone();
    let limits = ctx.limits;
    let t0 = Instant::now();
    let ran = tokio::task::spawn_blocking(move || {
        let m = match module {
            ModuleSource::Loaded(m) => m,
            ModuleSource::Bytes(bytes) => sandbox.load(&bytes)?,
        };
        let run = sandbox.run_with(&m, &input, limits)?;
        Ok::<_, SandboxError>((m.digest, run))
    })
    .await
    .map_err(|e| Failure::Node { kind: "worker-panic", message: e.to_string() })?;
    let (module_digest, run) = match ran {
        Ok(r) => r,
        Err(e) => {
            if is_limit(&e) {
                ctx.metrics.limit_hits.with_label_values(&[e.kind()]).inc();
            }
            if matches!(e, SandboxError::Setup(_)) {
                return Err(Failure::Node { kind: "sandbox-setup", message: e.to_string() });
            }
            return Err(Failure::Job { kind: e.kind().into(), message: e.to_string(), outcome: Outcome::default() });
        }
    };
    let trace = &run.recorded.trace;
    let mut outcome = Outcome {
        fuel_used: Some(run.fuel_used as i64),
        vm_steps: Some(trace.steps.len() as i64),
        cpu_rows: Some(1i64 << bitsage_prover::tracegen::log_size_for(trace.steps.len())),
        execute_us: Some(t0.elapsed().as_micros() as i64),
        output: Some(serde_json::to_string(&trace.output.iter().map(|w| w.0).collect::<Vec<_>>()).unwrap_or_default()),
        report: Some(String::from_utf8_lossy(&run.report).into_owned()),
        ..Outcome::default()
    };
    // The statement this run proves, as a job id: a paying client committed
    // to one from its own run; a different one is never proved or paid.
    let security = if job.security == 128 { SecurityLevel::Bits128 } else { SecurityLevel::Bits96 };
    let own = JobSpec::new(module_digest, &run.recorded.program, &run.recorded.input, security, &job.nonce).job_id();
    if let (Some(committed), Ok(own)) = (job.spec_hash.as_deref(), &own) {
        if bitsage_settle::parse_felt(committed) != Some(*own) {
            return Err(Failure::Job {
                kind: "statement-mismatch".into(),
                message: format!(
                    "the client paid for statement {committed}, but this node's run of the job gives {own:#x} \
                     (another program, VM input or security level)"
                ),
                outcome,
            });
        }
    }
    outcome.spec_hash = own.ok().map(bitsage_settle::felt_hex);
    if job.mode == JobMode::Dev.as_str() {
        return Ok((JobState::Executed, outcome));
    }

    match ctx.store.mark_proving(claim).await {
        Ok(true) => {}
        Ok(false) => return Err(Failure::Lost),
        Err(e) => return Err(Failure::Node { kind: "store", message: e.to_string() }),
    }
    let pool = ctx.pool.clone();
    let identity = ctx.identity.clone();
    let job_row = job.clone();
    let t1 = Instant::now();
    let proved = tokio::task::spawn_blocking(move || {
        let rec = run.recorded;
        let statement = Statement {
            program: rec.program.clone(),
            input: rec.input.clone(),
            output: rec.trace.output.clone(),
            security,
        };
        let opts = ProveOptions { security, ..ProveOptions::default() };
        let (proof, _stats, backend) = pool.prove(&statement, &rec.trace, &opts)?;
        let prove_time = t1.elapsed();
        let mut receipt = Receipt::with_module(statement, proof, Some(module_digest))
            .map_err(|e| ProveError::backend_by("encoding the receipt", e))?;
        if let Some(id) = &identity {
            id.attest(&mut receipt, &job_row).map_err(|e| ProveError::backend_by("attesting the receipt", e))?;
        }
        // A proof that does not verify is never served: the receipt is
        // encoded beside the verification, and kept only if it verifies.
        let (verified, bytes) = std::thread::scope(|s| {
            let encoding = s.spawn(|| receipt.to_bytes());
            let t2 = Instant::now();
            let verified = receipt.verify().map(|()| t2.elapsed());
            (verified, encoding.join())
        });
        let verify_time = verified.map_err(|_| ProveError::ConstraintsNotSatisfied)?;
        let bytes = bytes
            .map_err(|_| ProveError::backend("encoding the receipt panicked"))?
            .map_err(|e| ProveError::backend_by("encoding the receipt", e))?;
        Ok::<_, ProveError>((bytes, backend, prove_time, verify_time))
    })
    .await
    .map_err(|e| Failure::Node { kind: "prover-panic", message: e.to_string() })?;
    let (bytes, backend, prove_time, verify_time) = match proved {
        Ok(p) => p,
        Err(e @ ProveError::Backend(_)) => {
            return Err(Failure::Node { kind: "prover-backend", message: bitsage_air::verify::error_chain(&e) })
        }
        Err(e) => {
            let kind = match e {
                ProveError::TooLarge { .. } => "trace-too-large-for-device",
                ProveError::Exec(_) => "vm-error",
                ProveError::Statement(_) => "invalid-statement",
                _ => "constraints-not-satisfied",
            };
            return Err(Failure::Job { kind: kind.into(), message: bitsage_air::verify::error_chain(&e), outcome });
        }
    };
    ctx.metrics.proving_seconds.with_label_values(&[&backend]).observe(prove_time.as_secs_f64());
    let digest = ctx.blobs.put(&bytes).await.map_err(node("blob-store"))?;
    outcome.prove_us = Some(prove_time.as_micros() as i64);
    outcome.verify_us = Some(verify_time.as_micros() as i64);
    outcome.receipt_digest = Some(digest);
    outcome.receipt_bytes = Some(bytes.len() as i64);
    outcome.backend = Some(backend);
    Ok((JobState::Proved, outcome))
}
