//! The job store: jobs, their event log, API keys, approved modules and
//! workers, in SQLite (the default, a file under the data dir) or
//! PostgreSQL (a cluster). One set of queries serves both through sqlx's
//! `Any` driver; the only dialect difference at run time is the claim,
//! which PostgreSQL runs with `FOR UPDATE SKIP LOCKED`.
//!
//! Every update a worker makes is fenced by `(worker_id, attempts)`: a
//! worker whose lease expired and whose job was claimed again can no longer
//! change it, so a job completes exactly once.

mod history;
mod jobs;
mod registry;

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;

pub use history::{DeviceHistory, History, PROVE_MS_BOUNDS};
pub use jobs::{Admission, Claim, Job, JobEvent, JobMode, JobState, NewJob, Outcome};
pub use registry::{ApiKey, ModuleEntry, WorkerEntry};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL `{0}` (use sqlite://PATH or postgres://...)")]
    Url(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Which database the store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Sqlite,
    Postgres,
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The job store.
#[derive(Clone)]
pub struct Store {
    /// Reads (and, on PostgreSQL, writes).
    pool: AnyPool,
    /// Writes: on SQLite one connection, see [`Store::connect`].
    writer: AnyPool,
    dialect: Dialect,
    /// Serialises job admission in this process (see `admit_job`).
    admission: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Store {
    /// Connects (creating a SQLite file if needed) and applies migrations.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Dialect::Postgres
        } else {
            return Err(StoreError::Url(url.to_string()));
        };
        let (pool, writer) = match dialect {
            Dialect::Sqlite => {
                // WAL lets readers (the API) run beside the one writer. This
                // process writes through one connection, so its writes queue
                // here, in order, instead of colliding in SQLite, whose busy
                // handler sleeps 1, 2, 5, 10 ... ms between tries; the busy
                // timeout is left for other processes on the same file.
                let sqlite = |n: u32| {
                    AnyPoolOptions::new().max_connections(n).after_connect(|conn, _| {
                        Box::pin(async move {
                            sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *conn).await?;
                            sqlx::query("PRAGMA busy_timeout = 10000").execute(&mut *conn).await?;
                            sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
                            Ok(())
                        })
                    })
                };
                let writer = sqlite(1).connect(url).await?;
                sqlx::migrate!("migrations/sqlite").run(&writer).await?;
                (sqlite(8).connect(url).await?, writer)
            }
            Dialect::Postgres => {
                let pool = AnyPoolOptions::new().max_connections(16).connect(url).await?;
                sqlx::migrate!("migrations/postgres").run(&pool).await?;
                (pool.clone(), pool)
            }
        };
        Ok(Store { pool, writer, dialect, admission: Default::default() })
    }

    /// A transaction for writes: on SQLite on the writing connection, with
    /// the database's write lock taken at its start (`BEGIN IMMEDIATE`), so
    /// a read in it cannot go stale before its write.
    pub(super) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.dialect {
            Dialect::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::Postgres => self.writer.begin().await?,
        })
    }

    /// The SQLite URL for a data directory.
    pub fn sqlite_url(data_dir: &std::path::Path) -> String {
        format!("sqlite://{}?mode=rwc", data_dir.join("node.db").display())
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The job an uncapped admission inserted (or found).
    fn admitted(a: Admission) -> (Job, bool) {
        match a {
            Admission::Admitted { job, new } => (*job, new),
            Admission::QueueFull | Admission::KeyBusy => panic!("an uncapped admission was refused"),
        }
    }

    async fn temp_store() -> (Store, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("bitsage-store-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        (Store::connect(&Store::sqlite_url(&dir)).await.expect("store"), dir)
    }

    fn new_job<'a>(idem: Option<&'a str>, max_attempts: i64) -> NewJob<'a> {
        NewJob {
            mode: JobMode::Prove,
            module_digest: "m",
            input_digest: "i",
            input_bytes: 2,
            security: 96,
            api_key_id: Some("k"),
            idempotency_key: idem,
            max_attempts,
            nonce: "",
            spec_hash: Some("0x01"),
        }
    }

    #[tokio::test]
    async fn expired_leases_are_retried_a_bounded_number_of_times_and_fenced() {
        let (store, dir) = temp_store().await;
        let (job, _) = admitted(store.admit_job(&new_job(None, 2), i64::MAX, i64::MAX).await.expect("insert"));
        let first = store.claim("w1/0", Duration::ZERO).await.expect("claim").expect("a job");
        assert_eq!((first.job.id.as_str(), first.attempt), (job.id.as_str(), 1));
        tokio::time::sleep(Duration::from_millis(5)).await;
        // The first lease has expired: another worker takes the job.
        let second = store.claim("w2/0", Duration::ZERO).await.expect("claim").expect("requeued");
        assert_eq!(second.attempt, 2);
        // The first worker is fenced out of every write.
        assert!(!store.renew(&first, Duration::from_secs(30)).await.expect("renew"));
        assert!(!store.mark_proving(&first).await.expect("mark"));
        assert!(!store.finish(&first, JobState::Proved, &Outcome::default()).await.expect("finish"));
        tokio::time::sleep(Duration::from_millis(5)).await;
        // The last attempt's lease expired too: the job fails instead of looping.
        assert!(store.claim("w3/0", Duration::ZERO).await.expect("claim").is_none());
        let failed = store.job(&job.id).await.expect("get").expect("exists");
        assert_eq!((failed.state.as_str(), failed.error_kind.as_deref()), ("failed", Some("retries-exhausted")));
        let events: Vec<String> =
            store.events(Some(&job.id), 0, 100).await.expect("events").into_iter().map(|e| e.event).collect();
        assert_eq!(events, ["submitted", "claimed", "claimed", "failed"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn an_idempotency_key_makes_one_job_and_a_finished_job_stays_finished() {
        let (store, dir) = temp_store().await;
        let (a, new_a) = admitted(store.admit_job(&new_job(Some("x"), 3), i64::MAX, i64::MAX).await.expect("insert"));
        let (b, new_b) =
            admitted(store.admit_job(&new_job(Some("x"), 3), i64::MAX, i64::MAX).await.expect("insert again"));
        assert!(new_a && !new_b);
        assert_eq!(a.id, b.id);
        let c = store.claim("w/0", Duration::from_secs(30)).await.expect("claim").expect("job");
        assert!(store.finish(&c, JobState::Proved, &Outcome::default()).await.expect("finish"));
        // A second finish (a replayed message) changes nothing.
        assert!(!store.finish(&c, JobState::Proved, &Outcome::default()).await.expect("finish again"));
        assert!(store.claim("w/1", Duration::ZERO).await.expect("claim").is_none());
        assert_eq!(store.counts().await.expect("counts"), vec![("proved".to_string(), 1)]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
