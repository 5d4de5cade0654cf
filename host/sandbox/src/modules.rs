//! Approved modules: the operator's allowlist of workload digests.
//!
//! The list is a JSON file (by default `<data dir>/modules.json`). Each entry
//! is a component's SHA-256 and a name, optionally with a publisher's
//! ed25519 signature over [`signing_message`]. A signature is checked when
//! the module is approved and again every time it is looked up, so an edited
//! file cannot attach a bad signature to a digest.

use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

pub const LIST_VERSION: u32 = 1;

/// What a publisher signs: a domain tag and the component's SHA-256.
pub fn signing_message(digest: &[u8; 32]) -> Vec<u8> {
    [b"bitsage-module-v1:".as_slice(), digest].concat()
}

#[derive(Debug, thiserror::Error)]
pub enum ModulesError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path} is not a valid module list: {reason}")]
    Parse { path: String, reason: String },
    #[error("module list version {0} is not supported (this build reads version {LIST_VERSION})")]
    Version(u32),
    #[error("bad publisher key: {0}")]
    BadKey(String),
    #[error("bad signature: {0}")]
    BadSignature(String),
    #[error("the publisher signature does not verify for module {digest}")]
    SignatureMismatch { digest: String },
    #[error("no approved module is named or has digest `{0}`")]
    NotFound(String),
    #[error("module {digest} is not on the approved list")]
    NotApproved { digest: String },
}

/// A publisher's signature over a module digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublisherSignature {
    /// ed25519 public key, hex.
    pub key: String,
    /// ed25519 signature over [`signing_message`], hex.
    pub signature: String,
}

impl PublisherSignature {
    pub fn verify(&self, digest: &[u8; 32]) -> Result<(), ModulesError> {
        let key = parse_key(&self.key)?;
        let sig = parse_signature(&self.signature)?;
        key.verify(&signing_message(digest), &sig)
            .map_err(|_| ModulesError::SignatureMismatch { digest: hex::encode(digest) })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approved {
    pub name: String,
    /// SHA-256 of the component bytes, hex.
    pub sha256: String,
    /// Seconds since the Unix epoch.
    pub approved_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<PublisherSignature>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Allowlist {
    pub version: u32,
    pub modules: Vec<Approved>,
}

fn parse_hex<const N: usize>(s: &str, what: &str) -> Result<[u8; N], String> {
    let bytes = hex::decode(s.trim()).map_err(|e| format!("{what} is not hex: {e}"))?;
    bytes.try_into().map_err(|b: Vec<u8>| format!("{what} must be {N} bytes, got {}", b.len()))
}

pub fn parse_key(s: &str) -> Result<VerifyingKey, ModulesError> {
    let bytes = parse_hex::<32>(s, "public key").map_err(ModulesError::BadKey)?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| ModulesError::BadKey(e.to_string()))
}

pub fn parse_signature(s: &str) -> Result<Signature, ModulesError> {
    let bytes = parse_hex::<64>(s, "signature").map_err(ModulesError::BadSignature)?;
    Ok(Signature::from_bytes(&bytes))
}

/// Reads a publisher secret key file (32 bytes, hex).
pub fn read_signing_key(path: &Path) -> Result<SigningKey, ModulesError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ModulesError::Io { path: path.display().to_string(), source })?;
    let bytes = parse_hex::<32>(&text, "secret key").map_err(ModulesError::BadKey)?;
    Ok(SigningKey::from_bytes(&bytes))
}

/// A fresh publisher key from the operating system's randomness.
pub fn generate_key() -> Result<SigningKey, ModulesError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| ModulesError::BadKey(format!("no system randomness: {e}")))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Signs a module digest as a publisher.
pub fn sign(key: &SigningKey, digest: &[u8; 32]) -> PublisherSignature {
    PublisherSignature {
        key: hex::encode(key.verifying_key().to_bytes()),
        signature: hex::encode(key.sign(&signing_message(digest)).to_bytes()),
    }
}

impl Allowlist {
    /// Reads the list; a missing file is an empty list.
    pub fn load(path: &Path) -> Result<Self, ModulesError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Allowlist { version: LIST_VERSION, modules: Vec::new() })
            }
            Err(source) => return Err(ModulesError::Io { path: path.display().to_string(), source }),
        };
        let list: Allowlist = serde_json::from_str(&text)
            .map_err(|e| ModulesError::Parse { path: path.display().to_string(), reason: e.to_string() })?;
        if list.version != LIST_VERSION {
            return Err(ModulesError::Version(list.version));
        }
        Ok(list)
    }

    /// Writes the list atomically (temp file, then rename).
    pub fn save(&self, path: &Path) -> Result<(), ModulesError> {
        let io = |source| ModulesError::Io { path: path.display().to_string(), source };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = serde_json::to_string_pretty(self).map_err(|e| io(std::io::Error::other(e)))?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Adds (or renames) a module. A publisher signature must verify.
    pub fn approve(
        &mut self,
        digest: &[u8; 32],
        name: &str,
        publisher: Option<PublisherSignature>,
        now: u64,
    ) -> Result<&Approved, ModulesError> {
        if let Some(p) = &publisher {
            p.verify(digest)?;
        }
        let sha256 = hex::encode(digest);
        self.modules.retain(|m| m.sha256 != sha256);
        self.modules.push(Approved { name: name.to_string(), sha256, approved_at: now, publisher });
        Ok(self.modules.last().expect("just pushed"))
    }

    /// Removes the module with this name or hex digest.
    pub fn revoke(&mut self, name_or_digest: &str) -> Result<Approved, ModulesError> {
        let pos = self
            .modules
            .iter()
            .position(|m| m.name == name_or_digest || m.sha256 == name_or_digest)
            .ok_or_else(|| ModulesError::NotFound(name_or_digest.to_string()))?;
        Ok(self.modules.remove(pos))
    }

    /// The entry for `digest`, if approved and its signature (if any) holds.
    pub fn check(&self, digest: &[u8; 32]) -> Result<&Approved, ModulesError> {
        let hex_digest = hex::encode(digest);
        let entry = self
            .modules
            .iter()
            .find(|m| m.sha256 == hex_digest)
            .ok_or(ModulesError::NotApproved { digest: hex_digest })?;
        if let Some(p) = &entry.publisher {
            p.verify(digest)?;
        }
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approve_check_revoke_round_trip() {
        let dir = std::env::temp_dir().join(format!("bitsage-modules-{}", std::process::id()));
        let path = dir.join("modules.json");
        let digest = [7u8; 32];
        let key = SigningKey::from_bytes(&[9u8; 32]);

        let mut list = Allowlist::load(&path).unwrap();
        assert!(matches!(list.check(&digest), Err(ModulesError::NotApproved { .. })));
        list.approve(&digest, "demo", Some(sign(&key, &digest)), 1).unwrap();
        list.save(&path).unwrap();

        let mut again = Allowlist::load(&path).unwrap();
        assert_eq!(again.check(&digest).unwrap().name, "demo");
        // A signature over another digest is refused at approval.
        let other = [8u8; 32];
        assert!(matches!(
            again.approve(&other, "x", Some(sign(&key, &digest)), 2),
            Err(ModulesError::SignatureMismatch { .. })
        ));
        // An edited file that swaps the digest fails the lookup.
        again.modules[0].sha256 = hex::encode(other);
        assert!(matches!(again.check(&other), Err(ModulesError::SignatureMismatch { .. })));
        again.modules[0].sha256 = hex::encode(digest);
        assert_eq!(again.revoke("demo").unwrap().sha256, hex::encode(digest));
        assert!(matches!(again.check(&digest), Err(ModulesError::NotApproved { .. })));
        std::fs::remove_dir_all(dir).ok();
    }
}
