//! The browser verifier's files: the standalone page at `/verify`, the
//! `@bitsage/verify` package at `/verifier/`, and its wasm module, which
//! the build embeds when `scripts/build-web.sh` has made it (see build.rs).
//! The dashboard's "Verify" loads the same package, so a receipt is checked
//! client-side, by code that does not trust this node.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::state::ApiError;

macro_rules! web_file {
    ($path:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/", $path))
    };
}

const PAGE: &str = web_file!("verify.html");
const INDEX_JS: &str = web_file!("verifier/index.js");
const REPORT_JS: &str = web_file!("verifier/report.js");

#[cfg(web_verifier)]
const BUNDLE: Option<(&str, &[u8])> = Some((
    include_str!(concat!(env!("BITSAGE_WEB_PKG"), "/bitsage_verify_wasm.js")),
    include_bytes!(concat!(env!("BITSAGE_WEB_PKG"), "/bitsage_verify_wasm_bg.wasm")),
));
#[cfg(not(web_verifier))]
const BUNDLE: Option<(&str, &[u8])> = None;

/// Whether this build carries the wasm verifier.
pub fn has_verifier() -> bool {
    BUNDLE.is_some()
}

fn file(content_type: &'static str, body: impl IntoResponse) -> Response {
    // Revalidated on each load, so a rebuilt node's verifier is picked up.
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

fn not_built() -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "verifier-not-built",
        "this node was built without the browser verifier: run scripts/build-web.sh, then rebuild bitsage-host",
    )
    .into_response()
}

pub(crate) async fn page() -> Response {
    file("text/html; charset=utf-8", PAGE)
}

pub(crate) async fn index_js() -> Response {
    file("text/javascript; charset=utf-8", INDEX_JS)
}

pub(crate) async fn report_js() -> Response {
    file("text/javascript; charset=utf-8", REPORT_JS)
}

pub(crate) async fn glue_js() -> Response {
    match BUNDLE {
        Some((js, _)) => file("text/javascript; charset=utf-8", js),
        None => not_built(),
    }
}

pub(crate) async fn wasm() -> Response {
    match BUNDLE {
        Some((_, wasm)) => file("application/wasm", wasm),
        None => not_built(),
    }
}
