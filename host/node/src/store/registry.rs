//! API keys, approved modules and worker processes.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now_ms, Result, Store};

#[derive(Clone, Debug, Serialize)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub role: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ModuleEntry {
    pub digest: String,
    pub name: String,
    pub size: i64,
    pub approved_at: i64,
    pub publisher_key: Option<String>,
    pub signature: Option<String>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct WorkerEntry {
    pub id: String,
    pub host: String,
    pub pid: i64,
    pub started_at: i64,
    pub heartbeat_at: i64,
    /// The worker's device pool, JSON.
    pub devices: String,
    pub jobs_done: i64,
    pub stopped_at: Option<i64>,
}

impl Store {
    // ---- API keys

    pub async fn insert_key(&self, name: &str, role: &str, key_hash: &str) -> Result<String> {
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query("INSERT INTO api_keys (id, name, role, key_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&id)
            .bind(name)
            .bind(role)
            .bind(key_hash)
            .bind(now_ms())
            .execute(&self.writer)
            .await?;
        Ok(id)
    }

    /// The live key with this hash.
    pub async fn key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>> {
        let row = sqlx::query(
            "SELECT id, name, role, created_at, revoked_at FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| api_key(&r)).transpose()?)
    }

    pub async fn keys(&self) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query("SELECT id, name, role, created_at, revoked_at FROM api_keys ORDER BY created_at")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(api_key).collect::<std::result::Result<_, _>>()?)
    }

    /// Revokes by id or name; returns how many keys were revoked.
    pub async fn revoke_key(&self, id_or_name: &str) -> Result<u64> {
        let r = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE (id = $2 OR name = $2) AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(id_or_name)
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected())
    }

    // ---- approved modules

    pub async fn approve_module(&self, m: &ModuleEntry) -> Result<()> {
        // One transaction: the module is never missing from the list between the two.
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM modules WHERE digest = $1").bind(&m.digest).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO modules (digest, name, size, approved_at, publisher_key, signature) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&m.digest)
        .bind(&m.name)
        .bind(m.size)
        .bind(m.approved_at)
        .bind(m.publisher_key.as_deref())
        .bind(m.signature.as_deref())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn module(&self, digest: &str) -> Result<Option<ModuleEntry>> {
        let row = sqlx::query(
            "SELECT digest, name, size, approved_at, publisher_key, signature FROM modules WHERE digest = $1",
        )
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| module_entry(&r)).transpose()?)
    }

    pub async fn modules(&self) -> Result<Vec<ModuleEntry>> {
        let rows =
            sqlx::query("SELECT digest, name, size, approved_at, publisher_key, signature FROM modules ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(module_entry).collect::<std::result::Result<_, _>>()?)
    }

    // ---- workers

    pub async fn register_worker(&self, id: &str, host: &str, devices: &str) -> Result<()> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO workers (id, host, pid, started_at, heartbeat_at, devices, jobs_done) \
             VALUES ($1, $2, $3, $4, $4, $5, 0)",
        )
        .bind(id)
        .bind(host)
        .bind(std::process::id() as i64)
        .bind(now)
        .bind(devices)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn worker_heartbeat(&self, id: &str, devices: &str) -> Result<()> {
        sqlx::query("UPDATE workers SET heartbeat_at = $1, devices = $2 WHERE id = $3")
            .bind(now_ms())
            .bind(devices)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn worker_stopped(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE workers SET stopped_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Workers seen since `since_ms` (stopped ones included).
    pub async fn workers(&self, since_ms: i64) -> Result<Vec<WorkerEntry>> {
        let rows = sqlx::query(
            "SELECT id, host, pid, started_at, heartbeat_at, devices, jobs_done, stopped_at FROM workers \
             WHERE heartbeat_at >= $1 ORDER BY started_at",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WorkerEntry {
                    id: r.try_get("id")?,
                    host: r.try_get("host")?,
                    pid: r.try_get("pid")?,
                    started_at: r.try_get("started_at")?,
                    heartbeat_at: r.try_get("heartbeat_at")?,
                    devices: r.try_get("devices")?,
                    jobs_done: r.try_get("jobs_done")?,
                    stopped_at: r.try_get("stopped_at")?,
                })
            })
            .collect()
    }
}

fn api_key(r: &AnyRow) -> std::result::Result<ApiKey, sqlx::Error> {
    Ok(ApiKey {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        role: r.try_get("role")?,
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

fn module_entry(r: &AnyRow) -> std::result::Result<ModuleEntry, sqlx::Error> {
    Ok(ModuleEntry {
        digest: r.try_get("digest")?,
        name: r.try_get("name")?,
        size: r.try_get("size")?,
        approved_at: r.try_get("approved_at")?,
        publisher_key: r.try_get("publisher_key")?,
        signature: r.try_get("signature")?,
    })
}
