//! All end-to-end tests, in one binary (one link step).

mod prove_verify;
mod soundness;
mod properties;
mod sandbox;
mod workloads;
