//! The OpenAPI document served at `/v1/openapi.json`, generated from the
//! handlers' annotations so it cannot drift from the routes.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api;

#[derive(OpenApi)]
#[openapi(
    info(title = "BitSage node API", description = "Submit WASM workloads, fetch receipts, verify proofs."),
    paths(
        api::health, api::metrics, api::submit_job, api::list_jobs, api::get_job, api::get_receipt, api::get_proof,
        api::job_events, api::settlement_receipt, api::verify_receipt, api::list_modules, api::add_module, api::gpu, api::workers,
        api::events, api::status, api::history
    ),
    modifiers(&Bearer)
)]
struct Doc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("bsk_…").build()),
        );
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    Doc::openapi()
}
