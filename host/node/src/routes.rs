//! The route table: every path, its method and its handler, and the
//! OpenAPI document at `/v1/openapi.json`. It sits above the handlers
//! (`api`) and the document (`openapi`), which import neither it nor each
//! other's callers.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::api::{
    add_module, dashboard, events, get_job, get_proof, get_receipt, gpu, health, history, job_events, list_jobs,
    list_modules, metrics, settlement_receipt, status, submit_job, verify_receipt, workers,
};
use crate::state::AppState;
use crate::web;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/jobs", post(submit_job).get(list_jobs))
        .route("/v1/jobs/{id}", get(get_job))
        .route("/v1/jobs/{id}/receipt", get(get_receipt))
        .route("/v1/jobs/{id}/proof", get(get_proof))
        .route("/v1/jobs/{id}/events", get(job_events))
        .route("/v1/settlement/{spec_hash}/receipt", get(settlement_receipt))
        .route("/v1/verify", post(verify_receipt))
        .route("/v1/modules", get(list_modules).post(add_module))
        .route("/v1/gpu", get(gpu))
        .route("/v1/workers", get(workers))
        .route("/v1/events", get(events))
        .route("/v1/status", get(status))
        .route("/v1/history", get(history))
        // The browser verifier: a standalone page and the JavaScript package.
        .route("/verify", get(web::page))
        .route("/verifier/index.js", get(web::index_js))
        .route("/verifier/report.js", get(web::report_js))
        .route("/verifier/pkg/bitsage_verify_wasm.js", get(web::glue_js))
        .route("/verifier/pkg/bitsage_verify_wasm_bg.wasm", get(web::wasm))
        // The handlers that take a body enforce the node's limit themselves (`body`).
        .layer(DefaultBodyLimit::disable())
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn openapi() -> impl IntoResponse {
    Json(crate::openapi::document())
}
