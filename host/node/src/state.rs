//! What every handler shares: the node's state, the error answer, and the
//! per-key rate limit. The HTTP handlers (`api`), authentication (`auth`)
//! and the route table (`routes`) import from here; this module imports none
//! of them.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bitsage_prover::pool::DevicePool;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Serialize;
use tokio::sync::Notify;
use utoipa::ToSchema;

use crate::blobs::Blobs;
use crate::config::NodeConfig;
use crate::metrics::Metrics;
use crate::store::Store;

/// What every handler shares.
pub struct AppState {
    pub store: Store,
    pub blobs: Blobs,
    pub config: NodeConfig,
    pub metrics: Arc<Metrics>,
    /// This process's provers (absent on an API-only node).
    pub pool: Option<Arc<DevicePool>>,
    pub limiter: DefaultKeyedRateLimiter<String>,
    pub wake: Arc<Notify>,
    /// The id of each job whose end a worker of this process records (the
    /// long poll of `GET /v1/jobs/{id}?wait_ms=` waits for its own).
    pub done: Ended,
    pub started: Instant,
    /// Receipt verifications running at once (`POST /v1/verify`): one per
    /// core, so that verifying never starves the API or the provers.
    pub verify_slots: Arc<tokio::sync::Semaphore>,
    /// Verifications running per API key (`api::VERIFY_PER_KEY` at most).
    pub verify_by_key: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
    /// Long polls held per API key, and by all keys (`api::WAITS_PER_KEY`, `api::MAX_WAITS`).
    pub waits: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
}

/// The wall time one verification may take before the node answers 503.
/// An honest receipt verifies in milliseconds; the decoder's caps bound a
/// hostile one well below this.
pub const VERIFY_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

impl AppState {
    pub fn limiter(config: &NodeConfig) -> DefaultKeyedRateLimiter<String> {
        let per_minute = NonZeroU32::new(config.rate_limit_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.rate_burst).unwrap_or(NonZeroU32::MIN);
        RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst))
    }

    pub fn verify_slots() -> Arc<tokio::sync::Semaphore> {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Arc::new(tokio::sync::Semaphore::new(cores))
    }
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
}

/// The body of every error answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
struct ErrorDetail {
    /// A stable machine-readable reason.
    kind: String,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, kind, message: message.into(), retry_after: None }
    }

    pub(crate) fn bad_request(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, kind, message)
    }

    pub(crate) fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", format!("{what} not found"))
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {e}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store-unavailable", e.to_string())
    }
}

impl From<crate::blobs::BlobError> for ApiError {
    fn from(e: crate::blobs::BlobError) -> Self {
        // The I/O variant's cause is its source: show the whole chain.
        ApiError::internal(bitsage_air::verify::error_chain(&e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { kind: self.kind.into(), message: self.message } };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

/// Seconds until the rate limiter lets `key` in again, if it is over.
pub fn rate_limited(s: &AppState, key: &str) -> Option<u64> {
    s.limiter.check_key(&key.to_string()).err().map(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        wait.as_secs() + 1
    })
}

/// Jobs' ends, as their ids, to every long poll: each poll reads the store
/// again only for its own job's end (or when it fell behind), not on every
/// job that ends.
pub type Ended = tokio::sync::broadcast::Sender<String>;

/// A channel of job ends, deep enough for the ends of a burst of jobs
/// between two wake-ups of a poll.
pub fn ended_channel() -> Ended {
    tokio::sync::broadcast::channel(4096).0
}
