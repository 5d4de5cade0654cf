//! Content-addressed blobs: modules, job inputs and receipts, named by their
//! SHA-256. A single node keeps them on disk under the data dir
//! (`blobs/ab/cdef…`). A cluster keeps them in its PostgreSQL database,
//! because workers on other machines share only the database. Every read
//! re-hashes the bytes, so a corrupted blob is an error, never a wrong
//! answer.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use sqlx::{AnyPool, Row};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob store I/O at {path}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("blob {0} is corrupt (its bytes no longer hash to its name)")]
    Corrupt(String),
    #[error("`{0}` is not a SHA-256 digest")]
    BadDigest(String),
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn valid(digest: &str) -> Result<(), BlobError> {
    if digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(BlobError::BadDigest(digest.to_string()))
    }
}

#[derive(Clone)]
pub enum Blobs {
    Disk(PathBuf),
    Db(AnyPool),
}

impl Blobs {
    pub fn disk(data_dir: &Path) -> Blobs {
        Blobs::Disk(data_dir.join("blobs"))
    }

    fn path(root: &Path, digest: &str) -> PathBuf {
        root.join(&digest[..2]).join(&digest[2..])
    }

    /// Stores `bytes`; returns their digest. Idempotent.
    pub async fn put(&self, bytes: &[u8]) -> Result<String, BlobError> {
        let digest = sha256_hex(bytes);
        match self {
            Blobs::Disk(root) => {
                let path = Self::path(root, &digest);
                if tokio::fs::try_exists(&path).await.unwrap_or(false) {
                    return Ok(digest);
                }
                let io = |source| BlobError::Io { path: path.clone(), source };
                if let Some(dir) = path.parent() {
                    tokio::fs::create_dir_all(dir).await.map_err(io)?;
                }
                // Write then rename, so a crash never leaves a torn blob under its name.
                let tmp = path.with_extension(format!("tmp{}", uuid::Uuid::new_v4().simple()));
                tokio::fs::write(&tmp, bytes).await.map_err(io)?;
                let f = tokio::fs::File::open(&tmp).await.map_err(io)?;
                f.sync_all().await.map_err(io)?;
                tokio::fs::rename(&tmp, &path).await.map_err(io)?;
            }
            Blobs::Db(pool) => {
                sqlx::query(
                    "INSERT INTO blobs (digest, bytes, created_at) VALUES ($1, $2, $3) ON CONFLICT (digest) DO NOTHING",
                )
                .bind(&digest)
                .bind(bytes)
                .bind(crate::store::now_ms())
                .execute(pool)
                .await?;
            }
        }
        Ok(digest)
    }

    /// Whether a blob named `digest` is stored (without reading it).
    pub async fn contains(&self, digest: &str) -> Result<bool, BlobError> {
        valid(digest)?;
        match self {
            Blobs::Disk(root) => Ok(tokio::fs::try_exists(Self::path(root, digest)).await.unwrap_or(false)),
            Blobs::Db(pool) => {
                let row = sqlx::query("SELECT 1 AS one FROM blobs WHERE digest = $1")
                    .bind(digest)
                    .fetch_optional(pool)
                    .await?;
                Ok(row.is_some())
            }
        }
    }

    /// The bytes named `digest`, or `None` when there is no such blob.
    pub async fn get(&self, digest: &str) -> Result<Option<Vec<u8>>, BlobError> {
        valid(digest)?;
        let bytes = match self {
            Blobs::Disk(root) => {
                let path = Self::path(root, digest);
                match tokio::fs::read(&path).await {
                    Ok(b) => b,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(source) => return Err(BlobError::Io { path, source }),
                }
            }
            Blobs::Db(pool) => {
                let row =
                    sqlx::query("SELECT bytes FROM blobs WHERE digest = $1").bind(digest).fetch_optional(pool).await?;
                match row {
                    Some(r) => r.try_get::<Vec<u8>, _>("bytes")?,
                    None => return Ok(None),
                }
            }
        };
        if sha256_hex(&bytes) != digest {
            return Err(BlobError::Corrupt(digest.to_string()));
        }
        Ok(Some(bytes))
    }
}

impl Blobs {
    /// Deletes the blobs that no job (module, input, receipt) and no approved
    /// module references and that are at least `min_age` old; returns how
    /// many went. A refused or abandoned upload leaves nothing behind for
    /// longer than that.
    pub async fn collect(&self, store: &crate::store::Store, min_age: std::time::Duration) -> Result<usize, BlobError> {
        let now = std::time::SystemTime::now();
        let mut removed = 0;
        match self {
            Blobs::Disk(root) => {
                let io = |path: &Path| {
                    let path = path.to_path_buf();
                    move |source| BlobError::Io { path, source }
                };
                let Ok(mut dirs) = tokio::fs::read_dir(root).await else { return Ok(0) };
                while let Some(dir) = dirs.next_entry().await.map_err(io(root))? {
                    let prefix = dir.file_name().to_string_lossy().into_owned();
                    let Ok(mut files) = tokio::fs::read_dir(dir.path()).await else { continue };
                    while let Some(f) = files.next_entry().await.map_err(io(&dir.path()))? {
                        let digest = format!("{prefix}{}", f.file_name().to_string_lossy());
                        let meta = f.metadata().await.map_err(io(&f.path()))?;
                        let age = meta.modified().ok().and_then(|m| now.duration_since(m).ok()).unwrap_or_default();
                        if age < min_age || store.blob_referenced(&digest).await.map_err(store_error)? {
                            continue;
                        }
                        // Names that are not digests are torn writes (`.tmp…`): old ones go too.
                        tokio::fs::remove_file(f.path()).await.map_err(io(&f.path()))?;
                        removed += 1;
                    }
                }
            }
            Blobs::Db(pool) => {
                let before = now.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().saturating_sub(min_age);
                let r = sqlx::query(
                    "DELETE FROM blobs b WHERE b.created_at < $1 \
                     AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.module_digest = b.digest OR j.input_digest = b.digest \
                                     OR j.receipt_digest = b.digest) \
                     AND NOT EXISTS (SELECT 1 FROM modules m WHERE m.digest = b.digest)",
                )
                .bind(before.as_millis() as i64)
                .execute(pool)
                .await?;
                removed = r.rows_affected() as usize;
            }
        }
        Ok(removed)
    }
}

fn store_error(e: crate::store::StoreError) -> BlobError {
    match e {
        crate::store::StoreError::Db(e) => BlobError::Db(e),
        other => BlobError::Db(sqlx::Error::Protocol(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_io_error_is_named_once_in_the_chain() {
        let e = BlobError::Io { path: "/blobs/ab".into(), source: std::io::Error::other("disk full") };
        let chain = bitsage_air::verify::error_chain(&e);
        assert_eq!(chain, "blob store I/O at /blobs/ab: disk full");
        assert_eq!(e.to_string(), "blob store I/O at /blobs/ab", "the message leaves the cause to the chain");
    }

    #[tokio::test]
    async fn disk_blobs_round_trip_and_detect_corruption() {
        let dir = std::env::temp_dir().join(format!("bitsage-blobs-{}", uuid::Uuid::new_v4()));
        let blobs = Blobs::disk(&dir);
        let d = blobs.put(b"hello").await.expect("put");
        assert_eq!(d, sha256_hex(b"hello"));
        assert_eq!(blobs.put(b"hello").await.expect("idempotent"), d);
        assert_eq!(blobs.get(&d).await.expect("get").as_deref(), Some(&b"hello"[..]));
        assert!(blobs.get(&sha256_hex(b"other")).await.expect("get").is_none());
        assert!(blobs.contains(&d).await.expect("contains"));
        assert!(!blobs.contains(&sha256_hex(b"other")).await.expect("contains"));
        assert!(matches!(blobs.get("../../etc/passwd").await, Err(BlobError::BadDigest(_))));
        std::fs::write(Blobs::path(&dir.join("blobs"), &d), b"jello").expect("corrupt it");
        assert!(matches!(blobs.get(&d).await, Err(BlobError::Corrupt(_))));
        let _ = std::fs::remove_dir_all(dir);
    }
}
