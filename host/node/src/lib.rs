//! The BitSage worker node: `bitsage-host serve` and `bitsage-host worker`.
//!
//! Clients submit WASM jobs over HTTP ([`api`]); jobs live in a store
//! ([`store`]: SQLite under the data dir, or PostgreSQL for a cluster) with
//! their modules, inputs and receipts content-addressed ([`blobs`]).
//! Workers ([`worker`]) claim jobs under leases, run them in the sandbox,
//! prove them on the prover's device pool and record receipts. Nothing is
//! kept only in memory: a node that dies mid-proof requeues the job when it
//! starts again, and a cluster worker's job is requeued when its lease
//! expires.

pub mod api;
pub mod auth;
pub mod blobs;
pub mod config;
pub mod http;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod settle;
pub mod state;
pub mod store;
pub mod web;
pub mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bitsage_prover::pool::DevicePool;
use bitsage_sandbox::{Sandbox, SandboxConfig};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

pub use config::NodeConfig;
use store::{Dialect, Store};

/// Opens the store the configuration names, and its blob store.
pub async fn open_store(config: &NodeConfig) -> anyhow::Result<(Store, blobs::Blobs)> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data dir {}", config.data_dir.display()))?;
    let store = Store::connect(&config.database_url()).await.context("opening the job store")?;
    let blobs = match store.dialect() {
        Dialect::Sqlite => blobs::Blobs::disk(&config.data_dir),
        Dialect::Postgres => blobs::Blobs::Db(store.pool().clone()),
    };
    Ok((store, blobs))
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "localhost".into())
}

/// Workers of one process: the device pool, the sandbox and the tasks.
struct Workers {
    ctx: Arc<worker::WorkerContext>,
    tasks: Vec<JoinHandle<()>>,
}

async fn start_workers(
    config: &NodeConfig,
    store: &Store,
    blobs: &blobs::Blobs,
    metrics: &Arc<metrics::Metrics>,
    wake: &Arc<Notify>,
    done: &state::Ended,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Workers> {
    let choice = config.backend_choice()?;
    let pool =
        tokio::task::spawn_blocking(move || DevicePool::open(choice)).await?.context("opening the prover devices")?;
    let pool = Arc::new(pool);
    let sandbox = Sandbox::new(SandboxConfig {
        limits: config.limits.limits(),
        pooling: Some(64),
        cache_dir: Some(config.data_dir.join("cache").join("components")),
        ..SandboxConfig::default()
    })
    .context("starting the sandbox")?;
    let id = format!("{}-{}", hostname(), &uuid::Uuid::new_v4().simple().to_string()[..8]);
    store.register_worker(&id, &hostname(), &worker::devices_json(&pool)).await?;
    let mut tasks_settle = Vec::new();
    let ctx = Arc::new(worker::WorkerContext {
        store: store.clone(),
        blobs: blobs.clone(),
        sandbox: Arc::new(sandbox),
        pool,
        limits: config.limits.limits(),
        metrics: metrics.clone(),
        id,
        lease: config.lease(),
        poll: Duration::from_millis(config.poll_ms.max(10)),
        wake: wake.clone(),
        done: done.clone(),
        identity: settle::Identity::load(config).await.context("loading the worker's identity")?,
    });
    if let Some(id) = &ctx.identity {
        if id.wallet.is_some() {
            tasks_settle.push(tokio::spawn(settle::watch_settlements(
                store.clone(),
                blobs.clone(),
                id.clone(),
                stop.clone(),
            )));
        }
    }
    let mut tasks = vec![tokio::spawn(worker::heartbeat(ctx.clone(), stop.clone()))];
    tasks.append(&mut tasks_settle);
    for i in 0..config.workers.max(1) {
        tasks.push(tokio::spawn(worker::run(ctx.clone(), i, stop.clone())));
    }
    tracing::info!(
        worker = %ctx.id,
        tasks = config.workers.max(1),
        devices = %ctx.pool.status().iter().map(|d| d.label.clone()).collect::<Vec<_>>().join(", "),
        "workers started"
    );
    Ok(Workers { ctx, tasks })
}

/// Waits for the workers to finish their current jobs (bounded), so a
/// graceful stop loses no work; a job still running when the wait ends is
/// requeued by the next start (SQLite) or its lease (PostgreSQL).
async fn stop_workers(w: Workers, grace: Duration) {
    let deadline = tokio::time::sleep(grace);
    tokio::pin!(deadline);
    for t in w.tasks {
        tokio::select! {
            _ = t => {}
            _ = &mut deadline => { tracing::warn!("workers still busy after {grace:?}; leaving their jobs to be requeued"); break }
        }
    }
    let _ = w.ctx.store.worker_stopped(&w.ctx.id).await;
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

/// `bitsage-host serve`: the API plus `config.workers` worker tasks.
/// `on_listening` is called with the bound address once requests are served.
pub async fn serve(config: NodeConfig, on_listening: impl FnOnce(SocketAddr)) -> anyhow::Result<()> {
    config.validate()?;
    let (store, blobs) = open_store(&config).await?;
    if store.dialect() == Dialect::Sqlite {
        // One node owns a SQLite store: whatever was in progress died with the last run.
        let n = store.requeue_in_progress().await?;
        if n > 0 {
            tracing::warn!("requeued {n} job(s) that were in progress when the node last stopped");
        }
    }
    let metrics = Arc::new(metrics::Metrics::new());
    let wake = Arc::new(Notify::new());
    let done = state::ended_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let workers = if config.workers > 0 {
        Some(start_workers(&config, &store, &blobs, &metrics, &wake, &done, &stop_rx).await?)
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind(config.listen_addr()?)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let state = Arc::new(state::AppState {
        store,
        blobs,
        limiter: state::AppState::limiter(&config),
        config,
        metrics,
        pool: workers.as_ref().map(|w| w.ctx.pool.clone()),
        wake,
        done,
        started: Instant::now(),
        verify_slots: state::AppState::verify_slots(),
        verify_by_key: Default::default(),
        waits: Default::default(),
    });
    // Blobs no job or module references (refused uploads) are swept.
    let min_age = Duration::from_secs(state.config.blob_gc_min_age_secs);
    let (gc_store, gc_blobs) = (state.store.clone(), state.blobs.clone());
    let gc = tokio::spawn(async move {
        loop {
            match gc_blobs.collect(&gc_store, min_age).await {
                Ok(0) => {}
                Ok(n) => tracing::info!("removed {n} unreferenced blobs"),
                Err(e) => tracing::warn!("collecting unreferenced blobs: {}", bitsage_air::verify::error_chain(&e)),
            }
            tokio::time::sleep(min_age.clamp(Duration::from_secs(1), Duration::from_secs(3600))).await;
        }
    });
    let app = routes::router(state);
    on_listening(addr);
    http::serve(listener, app, shutdown_signal()).await;
    gc.abort();
    let _ = stop_tx.send(true);
    if let Some(w) = workers {
        stop_workers(w, Duration::from_secs(30)).await;
    }
    Ok(())
}

/// `bitsage-host worker`: workers only, on a shared PostgreSQL store.
pub async fn run_worker(config: NodeConfig) -> anyhow::Result<()> {
    config.validate()?;
    let (store, blobs) = open_store(&config).await?;
    if store.dialect() != Dialect::Postgres {
        anyhow::bail!("a separate worker needs a shared PostgreSQL store (--db postgres://…); with SQLite, `serve` runs the workers");
    }
    let metrics = Arc::new(metrics::Metrics::new());
    let wake = Arc::new(Notify::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let done = state::ended_channel();
    let workers = start_workers(&config, &store, &blobs, &metrics, &wake, &done, &stop_rx).await?;
    println!("worker {} ready", workers.ctx.id);
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    stop_workers(workers, Duration::from_secs(30)).await;
    Ok(())
}
