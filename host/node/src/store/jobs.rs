//! Jobs and their event log: insert (idempotent), claim under a lease,
//! fenced updates, requeue.

use std::time::Duration;

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now_ms, Dialect, Result, Store};

/// A job's state. Jobs move queued → running → proving → proved
/// (→ settling → settled), or to failed; dev-mode jobs end in executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Proving,
    Proved,
    Executed,
    Settling,
    Settled,
    Failed,
}

impl JobState {
    pub const ALL: [JobState; 8] = [
        JobState::Queued,
        JobState::Running,
        JobState::Proving,
        JobState::Proved,
        JobState::Executed,
        JobState::Settling,
        JobState::Settled,
        JobState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Proving => "proving",
            JobState::Proved => "proved",
            JobState::Executed => "executed",
            JobState::Settling => "settling",
            JobState::Settled => "settled",
            JobState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|j| j.as_str() == s)
    }

    /// True once nothing more will happen to the job on this node.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Proved | JobState::Executed | JobState::Settled | JobState::Failed)
    }
}

/// Whether a job is proved or only executed (dev mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobMode {
    Prove,
    Dev,
}

impl JobMode {
    pub fn as_str(self) -> &'static str {
        match self {
            JobMode::Prove => "prove",
            JobMode::Dev => "dev",
        }
    }
}

/// A job as stored.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Job {
    pub id: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub state: String,
    pub mode: String,
    pub module_digest: String,
    pub input_digest: String,
    pub input_bytes: i64,
    pub security: i64,
    #[serde(skip)]
    pub api_key_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub attempts: i64,
    pub max_attempts: i64,
    pub worker_id: Option<String>,
    pub lease_until: Option<i64>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub error_kind: Option<String>,
    pub error: Option<String>,
    pub fuel_used: Option<i64>,
    pub vm_steps: Option<i64>,
    pub cpu_rows: Option<i64>,
    pub execute_us: Option<i64>,
    pub prove_us: Option<i64>,
    pub verify_us: Option<i64>,
    /// The public output words, JSON.
    pub output: Option<String>,
    /// The guest's report (not proven).
    pub report: Option<String>,
    pub receipt_digest: Option<String>,
    pub receipt_bytes: Option<i64>,
    pub backend: Option<String>,
    /// The client's nonce in the spec hash.
    pub nonce: String,
    /// The job's spec hash (0x-hex felt): the escrow's job id.
    pub spec_hash: Option<String>,
    /// The transaction that submitted the result to the escrow.
    pub settle_tx: Option<String>,
}

const JOB_COLUMNS: &str =
    "id, created_at, updated_at, state, mode, module_digest, input_digest, input_bytes, security, \
    api_key_id, idempotency_key, attempts, max_attempts, worker_id, lease_until, started_at, finished_at, error_kind, \
    error, fuel_used, vm_steps, cpu_rows, execute_us, prove_us, verify_us, output, report, receipt_digest, \
    receipt_bytes, backend, nonce, spec_hash, settle_tx";

impl Job {
    fn from_row(r: &AnyRow) -> std::result::Result<Self, sqlx::Error> {
        Ok(Job {
            id: r.try_get("id")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
            state: r.try_get("state")?,
            mode: r.try_get("mode")?,
            module_digest: r.try_get("module_digest")?,
            input_digest: r.try_get("input_digest")?,
            input_bytes: r.try_get("input_bytes")?,
            security: r.try_get("security")?,
            api_key_id: r.try_get("api_key_id")?,
            idempotency_key: r.try_get("idempotency_key")?,
            attempts: r.try_get("attempts")?,
            max_attempts: r.try_get("max_attempts")?,
            worker_id: r.try_get("worker_id")?,
            lease_until: r.try_get("lease_until")?,
            started_at: r.try_get("started_at")?,
            finished_at: r.try_get("finished_at")?,
            error_kind: r.try_get("error_kind")?,
            error: r.try_get("error")?,
            fuel_used: r.try_get("fuel_used")?,
            vm_steps: r.try_get("vm_steps")?,
            cpu_rows: r.try_get("cpu_rows")?,
            execute_us: r.try_get("execute_us")?,
            prove_us: r.try_get("prove_us")?,
            verify_us: r.try_get("verify_us")?,
            output: r.try_get("output")?,
            report: r.try_get("report")?,
            receipt_digest: r.try_get("receipt_digest")?,
            receipt_bytes: r.try_get("receipt_bytes")?,
            backend: r.try_get("backend")?,
            nonce: r.try_get::<Option<String>, _>("nonce")?.unwrap_or_default(),
            spec_hash: r.try_get("spec_hash")?,
            settle_tx: r.try_get("settle_tx")?,
        })
    }

    pub fn state(&self) -> Option<JobState> {
        JobState::parse(&self.state)
    }

    /// True when `key` owns this job (operators see every job).
    pub fn owned_by(&self, key_id: &str) -> bool {
        self.api_key_id.as_deref() == Some(key_id)
    }
}

/// A job to insert.
pub struct NewJob<'a> {
    pub mode: JobMode,
    pub module_digest: &'a str,
    pub input_digest: &'a str,
    pub input_bytes: i64,
    pub security: i64,
    pub api_key_id: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    pub max_attempts: i64,
    pub nonce: &'a str,
    /// The job id a paying client committed to (its spec hash); a job
    /// without one gets its own once it has run.
    pub spec_hash: Option<&'a str>,
}

/// Counts the jobs that hold a place in the queue.
const ACTIVE: &str = "SELECT COUNT(*) AS n FROM jobs WHERE state IN ('queued', 'running', 'proving')";

/// What [`Store::admit_job`] decided.
pub enum Admission {
    /// Inserted (`new`), or the earlier job with the same idempotency key.
    Admitted { job: Box<Job>, new: bool },
    /// The node's queue is at its cap.
    QueueFull,
    /// This API key's share of the queue is at its cap.
    KeyBusy,
}

/// A job a worker holds: the fencing pair for every later update.
#[derive(Clone, Debug)]
pub struct Claim {
    pub job: Job,
    pub worker_id: String,
    pub attempt: i64,
}

/// What a worker records when a job finishes.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub fuel_used: Option<i64>,
    pub vm_steps: Option<i64>,
    pub cpu_rows: Option<i64>,
    pub execute_us: Option<i64>,
    pub prove_us: Option<i64>,
    pub verify_us: Option<i64>,
    pub output: Option<String>,
    pub report: Option<String>,
    pub receipt_digest: Option<String>,
    pub receipt_bytes: Option<i64>,
    pub backend: Option<String>,
    /// The spec hash of the statement the run produced (kept where the
    /// client committed to one, which must then be equal).
    pub spec_hash: Option<String>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct JobEvent {
    pub id: i64,
    pub job_id: String,
    pub at: i64,
    pub event: String,
    pub worker_id: Option<String>,
    pub detail: Option<String>,
}

impl Store {
    /// Inserts a job, or returns the existing one with the same idempotency
    /// key for the same API key. The bool is true when the job is new.
    /// Admits a job while the node's queue holds fewer than `max_queue`
    /// active jobs and its API key fewer than `max_per_key`. The counts and
    /// the insert are one step: serialised within this process, and across
    /// processes on PostgreSQL by an advisory lock the transaction holds
    /// (and releases when it ends, however it ends).
    pub async fn admit_job(&self, j: &NewJob<'_>, max_queue: i64, max_per_key: i64) -> Result<Admission> {
        if let (Some(key), Some(idem)) = (j.api_key_id, j.idempotency_key) {
            if let Some(existing) = self.job_by_idempotency(key, idem).await? {
                return Ok(Admission::Admitted { job: Box::new(existing), new: false });
            }
        }
        let _serial = self.admission.lock().await;
        // SQLite: take the write lock first. A deferred transaction that reads
        // and then writes fails at once with "database is locked" (SQLITE_BUSY
        // or BUSY_SNAPSHOT, which the busy timeout does not wait out) when a
        // worker wrote in between: 13 of 64 jobs from 8 concurrent clients got
        // HTTP 503 that way on an H100 node (host/benches/RESULTS.md).
        let mut tx = self.begin_write().await?;
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(7316001)").execute(&mut *tx).await?;
        }
        let total: i64 = sqlx::query(ACTIVE).fetch_one(&mut *tx).await?.try_get("n")?;
        if total >= max_queue {
            return Ok(Admission::QueueFull);
        }
        if let Some(key) = j.api_key_id {
            let mine: i64 = sqlx::query(&format!("{ACTIVE} AND api_key_id = $1"))
                .bind(key)
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
            if mine >= max_per_key {
                return Ok(Admission::KeyBusy);
            }
        }
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_ms();
        let inserted = sqlx::query(&format!(
            "INSERT INTO jobs (id, created_at, updated_at, state, mode, module_digest, input_digest, input_bytes, \
             security, api_key_id, idempotency_key, attempts, max_attempts, nonce, spec_hash) \
             VALUES ($1, $2, $2, 'queued', $3, $4, $5, $6, $7, $8, $9, 0, $10, $11, $12) RETURNING {JOB_COLUMNS}",
        ))
        .bind(&id)
        .bind(now)
        .bind(j.mode.as_str())
        .bind(j.module_digest)
        .bind(j.input_digest)
        .bind(j.input_bytes)
        .bind(j.security)
        .bind(j.api_key_id)
        .bind(j.idempotency_key)
        .bind(j.max_attempts)
        .bind(j.nonce)
        .bind(j.spec_hash)
        .fetch_one(&mut *tx)
        .await;
        let job = match inserted {
            Ok(row) => Job::from_row(&row)?,
            // Two requests with one idempotency key raced: the other insert won.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                drop(tx);
                if let (Some(key), Some(idem)) = (j.api_key_id, j.idempotency_key) {
                    if let Some(existing) = self.job_by_idempotency(key, idem).await? {
                        return Ok(Admission::Admitted { job: Box::new(existing), new: false });
                    }
                }
                return Err(sqlx::Error::Database(e).into());
            }
            Err(e) => return Err(e.into()),
        };
        event_on(&mut *tx, &id, "submitted", None, Some(&format!("mode {}", j.mode.as_str()))).await?;
        tx.commit().await?;
        Ok(Admission::Admitted { job: Box::new(job), new: true })
    }

    /// Whether a job (module, input or receipt) or an approved module names
    /// this blob.
    pub async fn blob_referenced(&self, digest: &str) -> Result<bool> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM jobs WHERE module_digest = $1 OR input_digest = $1 OR receipt_digest = $1) \
             + (SELECT COUNT(*) FROM modules WHERE digest = $1) AS n",
        )
        .bind(digest)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// The job this API key submitted with this idempotency key, if any.
    pub async fn job_by_idempotency(&self, key: &str, idem: &str) -> Result<Option<Job>> {
        let q = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE api_key_id = $1 AND idempotency_key = $2");
        let row = sqlx::query(&q).bind(key).bind(idem).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| Job::from_row(&r)).transpose()?)
    }

    pub async fn job(&self, id: &str) -> Result<Option<Job>> {
        let q = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        let row = sqlx::query(&q).bind(id).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| Job::from_row(&r)).transpose()?)
    }

    /// The newest jobs, optionally only those of one API key.
    pub async fn jobs(&self, owner: Option<&str>, limit: i64) -> Result<Vec<Job>> {
        let rows = match owner {
            Some(k) => {
                let q =
                    format!("SELECT {JOB_COLUMNS} FROM jobs WHERE api_key_id = $1 ORDER BY created_at DESC LIMIT $2");
                sqlx::query(&q).bind(k).bind(limit).fetch_all(&self.pool).await?
            }
            None => {
                let q = format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY created_at DESC LIMIT $1");
                sqlx::query(&q).bind(limit).fetch_all(&self.pool).await?
            }
        };
        Ok(rows.iter().map(Job::from_row).collect::<std::result::Result<_, _>>()?)
    }

    /// Job counts per state.
    pub async fn counts(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state").fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok((r.try_get("state")?, r.try_get("n")?))).collect()
    }

    /// Jobs waiting or in progress (all keys, or one key).
    pub async fn active(&self, owner: Option<&str>) -> Result<i64> {
        let base = ACTIVE;
        let row = match owner {
            Some(k) => sqlx::query(&format!("{base} AND api_key_id = $1")).bind(k).fetch_one(&self.pool).await?,
            None => sqlx::query(base).fetch_one(&self.pool).await?,
        };
        Ok(row.try_get("n")?)
    }

    /// Takes the oldest claimable job: queued, or in progress under a lease
    /// that has expired (its worker died). Jobs whose lease expired on their
    /// last allowed attempt fail instead.
    pub async fn claim(&self, worker_id: &str, lease: Duration) -> Result<Option<Claim>> {
        let now = now_ms();
        self.fail_exhausted(now).await?;
        let lock = match self.dialect {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let q = format!(
            "UPDATE jobs SET state = 'running', worker_id = $1, lease_until = $2, attempts = attempts + 1, \
             started_at = $3, updated_at = $3 \
             WHERE id = (SELECT id FROM jobs WHERE (state = 'queued' OR (state IN ('running', 'proving') \
             AND lease_until < $3)) AND attempts < max_attempts ORDER BY created_at LIMIT 1{lock}) \
             RETURNING {JOB_COLUMNS}"
        );
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&q)
            .bind(worker_id)
            .bind(now + lease.as_millis() as i64)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let job = Job::from_row(&row)?;
        let attempt = job.attempts;
        let detail = format!("attempt {attempt} of {}", job.max_attempts);
        event_on(&mut *tx, &job.id, "claimed", Some(worker_id), Some(&detail)).await?;
        tx.commit().await?;
        Ok(Some(Claim { job, worker_id: worker_id.to_string(), attempt }))
    }

    async fn fail_exhausted(&self, now: i64) -> Result<()> {
        // Looked for with a read first: a claim does not take the write lock
        // for an update that, nearly always, changes nothing.
        let any = sqlx::query(
            "SELECT id FROM jobs WHERE state IN ('running', 'proving') AND lease_until < $1 \
             AND attempts >= max_attempts LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        if any.is_none() {
            return Ok(());
        }
        let rows = sqlx::query(
            "UPDATE jobs SET state = 'failed', error_kind = 'retries-exhausted', \
             error = 'the job''s worker stopped on its last allowed attempt', finished_at = $1, updated_at = $1 \
             WHERE state IN ('running', 'proving') AND lease_until < $1 AND attempts >= max_attempts RETURNING id",
        )
        .bind(now)
        .fetch_all(&self.writer)
        .await?;
        for r in rows {
            let id: String = r.try_get("id")?;
            self.event(&id, "failed", None, Some("retries-exhausted")).await?;
        }
        Ok(())
    }

    /// Extends the lease; false when the job is no longer this claim's.
    pub async fn renew(&self, c: &Claim, lease: Duration) -> Result<bool> {
        let now = now_ms();
        let r = sqlx::query(
            "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND worker_id = $3 AND attempts = $4 \
             AND state IN ('running', 'proving')",
        )
        .bind(now + lease.as_millis() as i64)
        .bind(&c.job.id)
        .bind(&c.worker_id)
        .bind(c.attempt)
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Moves a held job to `proving`; false when it is no longer ours.
    pub async fn mark_proving(&self, c: &Claim) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE jobs SET state = 'proving', updated_at = $1 WHERE id = $2 AND worker_id = $3 AND attempts = $4 \
             AND state = 'running'",
        )
        .bind(now_ms())
        .bind(&c.job.id)
        .bind(&c.worker_id)
        .bind(c.attempt)
        .execute(&mut *tx)
        .await?;
        let ours = r.rows_affected() == 1;
        if ours {
            event_on(&mut *tx, &c.job.id, "proving", Some(&c.worker_id), None).await?;
            tx.commit().await?;
        }
        Ok(ours)
    }

    /// Records a finished job (`proved` or `executed`); false when the job
    /// is no longer this claim's, in which case nothing is written.
    pub async fn finish(&self, c: &Claim, state: JobState, o: &Outcome) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE jobs SET state = $1, updated_at = $2, finished_at = $2, lease_until = NULL, fuel_used = $3, \
             vm_steps = $4, cpu_rows = $5, execute_us = $6, prove_us = $7, verify_us = $8, output = $9, report = $10, \
             receipt_digest = $11, receipt_bytes = $12, backend = $13, error_kind = NULL, error = NULL, \
             spec_hash = COALESCE(spec_hash, $17) \
             WHERE id = $14 AND worker_id = $15 AND attempts = $16 AND state IN ('running', 'proving')",
        )
        .bind(state.as_str())
        .bind(now)
        .bind(o.fuel_used)
        .bind(o.vm_steps)
        .bind(o.cpu_rows)
        .bind(o.execute_us)
        .bind(o.prove_us)
        .bind(o.verify_us)
        .bind(o.output.as_deref())
        .bind(o.report.as_deref())
        .bind(o.receipt_digest.as_deref())
        .bind(o.receipt_bytes)
        .bind(o.backend.as_deref())
        .bind(&c.job.id)
        .bind(&c.worker_id)
        .bind(c.attempt)
        .bind(o.spec_hash.as_deref())
        .execute(&mut *tx)
        .await?;
        let ours = r.rows_affected() == 1;
        if ours {
            event_on(&mut *tx, &c.job.id, state.as_str(), Some(&c.worker_id), o.backend.as_deref()).await?;
            // Worker tasks are `<process worker id>/<task>`; the table has one row per process.
            let process = c.worker_id.split('/').next().unwrap_or(&c.worker_id);
            sqlx::query("UPDATE workers SET jobs_done = jobs_done + 1 WHERE id = $1")
                .bind(process)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(ours)
    }

    /// Marks a proved job `settling`: its result went to the escrow in `tx`.
    pub async fn mark_settling(&self, id: &str, tx: &str) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE jobs SET state = 'settling', settle_tx = $1, updated_at = $2 WHERE id = $3 AND state = 'proved'",
        )
        .bind(tx)
        .bind(now_ms())
        .bind(id)
        .execute(&self.writer)
        .await?;
        let ours = r.rows_affected() == 1;
        if ours {
            self.event(id, "settling", None, Some(&format!("result submitted to the escrow in {tx}"))).await?;
        }
        Ok(ours)
    }

    /// Ends a `settling` job: `settled` when the escrow paid, `failed`
    /// (kind `rejected-by-validators`) when the validators rejected it.
    pub async fn end_settlement(&self, id: &str, paid: bool, detail: &str) -> Result<bool> {
        let (state, kind, error) =
            if paid { ("settled", None, None) } else { ("failed", Some("rejected-by-validators"), Some(detail)) };
        let r = sqlx::query(
            "UPDATE jobs SET state = $1, error_kind = $2, error = $3, updated_at = $4 WHERE id = $5 AND state = 'settling'",
        )
        .bind(state)
        .bind(kind)
        .bind(error)
        .bind(now_ms())
        .bind(id)
        .execute(&self.writer)
        .await?;
        let ours = r.rows_affected() == 1;
        if ours {
            self.event(id, state, None, Some(detail)).await?;
        }
        Ok(ours)
    }

    /// Jobs in `settling`.
    pub async fn settling(&self) -> Result<Vec<Job>> {
        let rows = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'settling' ORDER BY created_at"))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(Job::from_row).collect::<std::result::Result<_, _>>()?)
    }

    /// Proved jobs with this spec hash whose result has not gone to the escrow.
    pub async fn unsettled_by_spec_hash(&self, spec_hash: &str) -> Result<Vec<Job>> {
        let rows = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE spec_hash = $1 AND state = 'proved' AND settle_tx IS NULL"
        ))
        .bind(spec_hash)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(Job::from_row).collect::<std::result::Result<_, _>>()?)
    }

    /// The job whose result was submitted to the escrow under `spec_hash`.
    pub async fn job_by_spec_hash(&self, spec_hash: &str) -> Result<Option<Job>> {
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE spec_hash = $1 AND settle_tx IS NOT NULL ORDER BY created_at LIMIT 1"
        ))
        .bind(spec_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(Job::from_row).transpose()?)
    }

    /// Fails a held job for good (a typed reason), or, when `retry` is set
    /// and attempts remain, puts it back in the queue.
    pub async fn fail(&self, c: &Claim, kind: &str, message: &str, retry: bool, o: &Outcome) -> Result<bool> {
        let now = now_ms();
        let requeue = retry && c.attempt < c.job.max_attempts;
        let state = if requeue { "queued" } else { "failed" };
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE jobs SET state = $1, updated_at = $2, finished_at = $3, lease_until = NULL, error_kind = $4, \
             error = $5, fuel_used = $6, vm_steps = $7 \
             WHERE id = $8 AND worker_id = $9 AND attempts = $10 AND state IN ('running', 'proving')",
        )
        .bind(state)
        .bind(now)
        .bind((!requeue).then_some(now))
        .bind(kind)
        .bind(message)
        .bind(o.fuel_used)
        .bind(o.vm_steps)
        .bind(&c.job.id)
        .bind(&c.worker_id)
        .bind(c.attempt)
        .execute(&mut *tx)
        .await?;
        let ours = r.rows_affected() == 1;
        if ours {
            let event = if requeue { "requeued" } else { "failed" };
            event_on(&mut *tx, &c.job.id, event, Some(&c.worker_id), Some(&format!("{kind}: {message}"))).await?;
            tx.commit().await?;
        }
        Ok(ours)
    }

    /// Puts every job that was in progress back in the queue. For a
    /// single-node (SQLite) store at start-up: no other process can hold
    /// them, so their worker died with the previous run.
    pub async fn requeue_in_progress(&self) -> Result<u64> {
        let rows = sqlx::query(
            "UPDATE jobs SET state = 'queued', lease_until = NULL, updated_at = $1 \
             WHERE state IN ('running', 'proving') RETURNING id",
        )
        .bind(now_ms())
        .fetch_all(&self.writer)
        .await?;
        for r in &rows {
            let id: String = r.try_get("id")?;
            self.event(&id, "requeued", None, Some("in progress when the node stopped")).await?;
        }
        Ok(rows.len() as u64)
    }

    pub async fn event(&self, job: &str, event: &str, worker: Option<&str>, detail: Option<&str>) -> Result<()> {
        event_on(&self.writer, job, event, worker, detail).await
    }

    /// Events after `after` (all jobs, or one), oldest first.
    pub async fn events(&self, job: Option<&str>, after: i64, limit: i64) -> Result<Vec<JobEvent>> {
        let cols = "id, job_id, at, event, worker_id, detail";
        let rows = match job {
            Some(j) => {
                sqlx::query(&format!(
                    "SELECT {cols} FROM job_events WHERE job_id = $1 AND id > $2 ORDER BY id LIMIT $3"
                ))
                .bind(j)
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!("SELECT {cols} FROM job_events WHERE id > $1 ORDER BY id LIMIT $2"))
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter()
            .map(|r| {
                Ok(JobEvent {
                    id: r.try_get("id")?,
                    job_id: r.try_get("job_id")?,
                    at: r.try_get("at")?,
                    event: r.try_get("event")?,
                    worker_id: r.try_get("worker_id")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }
}

/// Appends an event to a job's log through `db` (the writer, or a
/// transaction that records the change the event names).
async fn event_on<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    job: &str,
    event: &str,
    worker: Option<&str>,
    detail: Option<&str>,
) -> Result<()> {
    sqlx::query("INSERT INTO job_events (job_id, at, event, worker_id, detail) VALUES ($1, $2, $3, $4, $5)")
        .bind(job)
        .bind(now_ms())
        .bind(event)
        .bind(worker)
        .bind(detail)
        .execute(db)
        .await?;
    Ok(())
}
