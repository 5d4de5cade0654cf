//! All end-to-end tests, in one binary (one link step).

mod hostile_receipts;
mod node;
mod onchain;
mod properties;
mod prove_verify;
mod sandbox;
mod settle;
mod soundness;
mod statements;
mod web;
mod workloads;
