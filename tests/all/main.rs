//! All end-to-end tests, in one binary (one link step).

mod node;
mod properties;
mod prove_verify;
mod sandbox;
mod settle;
mod soundness;
mod workloads;
