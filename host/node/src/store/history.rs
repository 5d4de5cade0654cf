//! The node's recent history, aggregated in the database for the
//! dashboard's plots: finished jobs per time bucket and state, the
//! proving-time distribution, and each device's busy time per bucket.
//!
//! A job's proving time is counted in the bucket it finished in. Jobs prove
//! in milliseconds to seconds, so against one-minute buckets that shifts
//! little; a bucket's busy fraction is capped at 1.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use super::{Result, Store};

/// Upper bounds of the proving-time histogram's buckets, in milliseconds:
/// 1, 2, 4, … 65,536; a last bucket holds everything slower.
pub const PROVE_MS_BOUNDS: [u64; 17] = {
    let mut b = [0u64; 17];
    let mut i = 0;
    while i < 17 {
        b[i] = 1 << i;
        i += 1;
    }
    b
};

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct History {
    /// Start of the first bucket (Unix ms).
    pub start_ms: i64,
    pub bucket_ms: i64,
    pub buckets: usize,
    /// Finished jobs per bucket, by final state.
    pub jobs: BTreeMap<String, Vec<i64>>,
    /// `PROVE_MS_BOUNDS`, for reading `prove_counts`.
    pub prove_ms_bounds: Vec<u64>,
    /// Proved jobs whose proving time is below `prove_ms_bounds[i]` and at
    /// or above the bound before it; the last entry counts the rest.
    pub prove_counts: Vec<i64>,
    pub devices: Vec<DeviceHistory>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DeviceHistory {
    pub worker: String,
    /// The device label the prover recorded, e.g. `cuda:0 (NVIDIA H200)`.
    pub device: String,
    pub proofs: i64,
    /// Fraction of each bucket the device spent proving, 0 to 1.
    pub busy: Vec<f64>,
}

impl Store {
    /// The `buckets` buckets of `bucket_ms` that end at `now_ms`.
    pub async fn history(&self, now_ms: i64, bucket_ms: i64, buckets: usize) -> Result<History> {
        let bucket_ms = bucket_ms.max(1);
        let start_ms = now_ms - bucket_ms * buckets as i64;
        let slot = |b: i64| usize::try_from(b).ok().filter(|&b| b < buckets);

        let mut jobs: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        let rows = sqlx::query(
            "SELECT (finished_at - $1) / $2 AS b, state, COUNT(*) AS n FROM jobs \
             WHERE finished_at >= $1 GROUP BY b, state",
        )
        .bind(start_ms)
        .bind(bucket_ms)
        .fetch_all(self.pool())
        .await?;
        for r in rows {
            let (b, state, n): (i64, String, i64) = (r.try_get("b")?, r.try_get("state")?, r.try_get("n")?);
            if let Some(i) = slot(b) {
                jobs.entry(state).or_insert_with(|| vec![0; buckets])[i] += n;
            }
        }

        let mut case = String::from("CASE");
        for (i, ms) in PROVE_MS_BOUNDS.iter().enumerate() {
            case.push_str(&format!(" WHEN prove_us < {} THEN {i}", ms * 1000));
        }
        case.push_str(&format!(" ELSE {} END", PROVE_MS_BOUNDS.len()));
        // CAST: PostgreSQL types a CASE of literals as INTEGER, not BIGINT.
        let q = format!(
            "SELECT CAST({case} AS BIGINT) AS h, COUNT(*) AS n FROM jobs WHERE finished_at >= $1 AND prove_us IS NOT NULL GROUP BY h"
        );
        let mut prove_counts = vec![0i64; PROVE_MS_BOUNDS.len() + 1];
        for r in sqlx::query(&q).bind(start_ms).fetch_all(self.pool()).await? {
            let (h, n): (i64, i64) = (r.try_get("h")?, r.try_get("n")?);
            if let Some(c) = usize::try_from(h).ok().and_then(|h| prove_counts.get_mut(h)) {
                *c += n;
            }
        }

        let rows = sqlx::query(
            "SELECT (finished_at - $1) / $2 AS b, worker_id, backend, CAST(SUM(prove_us) AS BIGINT) AS busy, \
             COUNT(*) AS n FROM jobs WHERE finished_at >= $1 AND backend IS NOT NULL AND prove_us IS NOT NULL \
             GROUP BY b, worker_id, backend",
        )
        .bind(start_ms)
        .bind(bucket_ms)
        .fetch_all(self.pool())
        .await?;
        let mut devices: BTreeMap<(String, String), DeviceHistory> = BTreeMap::new();
        for r in rows {
            let b: i64 = r.try_get("b")?;
            let worker: Option<String> = r.try_get("worker_id")?;
            let device: String = r.try_get("backend")?;
            let (busy_us, n): (i64, i64) = (r.try_get("busy")?, r.try_get("n")?);
            let worker = worker.unwrap_or_default();
            let d = devices.entry((worker.clone(), device.clone())).or_insert_with(|| DeviceHistory {
                worker,
                device,
                proofs: 0,
                busy: vec![0.0; buckets],
            });
            d.proofs += n;
            if let Some(i) = slot(b) {
                d.busy[i] = (d.busy[i] + busy_us as f64 / (bucket_ms as f64 * 1000.0)).min(1.0);
            }
        }
        Ok(History {
            start_ms,
            bucket_ms,
            buckets,
            jobs,
            prove_ms_bounds: PROVE_MS_BOUNDS.to_vec(),
            prove_counts,
            devices: devices.into_values().collect(),
        })
    }
}
