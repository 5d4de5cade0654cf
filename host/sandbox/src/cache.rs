//! The on-disk compile cache.
//!
//! Key: the component's SHA-256 plus a hash of the engine's compatibility
//! settings (wasmtime version, target, compiler flags), so an upgraded or
//! reconfigured host never loads stale code. Each entry has a sidecar with
//! the SHA-256 of the compiled bytes, written after them; an entry whose
//! bytes do not match is recompiled. Only bytes this host serialised itself
//! are ever deserialised.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

use crate::SandboxError;

/// The engine half of the cache key.
pub fn engine_key(engine: &Engine) -> String {
    let mut h = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:016x}", h.finish())
}

fn entry(dir: &Path, engine: &Engine, digest: &[u8; 32]) -> (PathBuf, PathBuf) {
    let stem = format!("{}-{}", hex::encode(digest), engine_key(engine));
    (dir.join(format!("{stem}.cwasm")), dir.join(format!("{stem}.sha256")))
}

fn cached(engine: &Engine, code: &Path, sum: &Path) -> Option<Component> {
    let bytes = std::fs::read(code).ok()?;
    let expected = std::fs::read_to_string(sum).ok()?;
    if hex::encode(Sha256::digest(&bytes)) != expected.trim() {
        tracing::warn!(path = %code.display(), "compile cache entry does not match its checksum; recompiling");
        return None;
    }
    // SAFETY: these bytes were produced by `Component::serialize` in this
    // host (same engine compatibility key) and match the checksum written
    // beside them, so they are a valid serialised component for `engine`.
    unsafe { Component::deserialize(engine, &bytes) }.ok()
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Loads the compiled component from `dir`, or compiles and stores it.
/// Returns whether it came from the cache. A cache that cannot be written
/// only costs the next run a compile.
pub fn load_or_compile(
    engine: &Engine,
    dir: &Path,
    digest: &[u8; 32],
    bytes: &[u8],
) -> Result<(Component, bool), SandboxError> {
    let (code, sum) = entry(dir, engine, digest);
    if let Some(c) = cached(engine, &code, &sum) {
        return Ok((c, true));
    }
    let component = Component::new(engine, bytes).map_err(|e| SandboxError::Compile(format!("{e:#}")))?;
    let stored = component.serialize().map_err(std::io::Error::other).and_then(|compiled| {
        std::fs::create_dir_all(dir)?;
        write_atomic(&code, &compiled)?;
        write_atomic(&sum, hex::encode(Sha256::digest(&compiled)).as_bytes())
    });
    if let Err(e) = stored {
        tracing::warn!(dir = %dir.display(), error = %e, "could not write the compile cache");
    }
    Ok((component, false))
}
