//! The worker's key in an encrypted keystore (Web3 Secret Storage v3: scrypt
//! KDF, AES-128-CTR, Keccak-256 MAC), the format starkli uses for its
//! keystores: the 32-byte big-endian private scalar is the encrypted secret.

use std::path::{Path, PathBuf};

use starknet_crypto::{get_public_key, rfc6979_generate_k, sign, Felt};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the keystore password is wrong (the keystore's MAC does not match)")]
    WrongPassword,
    #[error("{path} already exists; refusing to overwrite a key")]
    Exists { path: PathBuf },
    #[error("keystore {path}: {why}")]
    Keystore { path: PathBuf, why: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the keystore holds {0} bytes, not a 32-byte Stark private key")]
    BadSecret(usize),
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("an empty password would leave the key unprotected")]
    EmptyPassword,
}

/// A Stark-curve private key. Its `Debug` never shows the scalar.
pub struct WorkerKey {
    secret: Felt,
}

impl std::fmt::Debug for WorkerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WorkerKey {{ public: {:#x} }}", self.public_key())
    }
}

/// The Stark curve's order; private keys are in [1, n).
const CURVE_ORDER_HEX: &str = "0800000000000010ffffffffffffffffb781126dcae7b2321e66a241adc64d2f";

impl WorkerKey {
    /// A fresh key from the OS's randomness.
    pub fn generate() -> WorkerKey {
        use rand::RngCore;
        let order = Felt::from_hex_unchecked(CURVE_ORDER_HEX);
        loop {
            let mut b = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut b);
            b[0] &= 0x07; // below 2^251, then rejection-sample below the order
            let secret = Felt::from_bytes_be(&b);
            if secret != Felt::ZERO && secret < order {
                return WorkerKey { secret };
            }
        }
    }

    /// A key from its scalar (tests, imports).
    pub fn from_secret(secret: Felt) -> WorkerKey {
        WorkerKey { secret }
    }

    /// The private scalar, for the account signer that sends this worker's
    /// transactions. Never logged or written out in the clear.
    pub fn secret_scalar(&self) -> Felt {
        self.secret
    }

    pub fn public_key(&self) -> Felt {
        get_public_key(&self.secret)
    }

    /// Stark-ECDSA over `message` with an RFC 6979 nonce.
    pub fn sign(&self, message: &Felt) -> Result<(Felt, Felt), KeyError> {
        let k = rfc6979_generate_k(message, &self.secret, None);
        let sig = sign(&self.secret, message, &k).map_err(|e| KeyError::Sign(e.to_string()))?;
        Ok((sig.r, sig.s))
    }

    /// Writes the key to a new keystore file at `path` (mode 0600, in a
    /// directory created 0700 if missing). Never overwrites.
    pub fn save(&self, path: &Path, password: &str) -> Result<(), KeyError> {
        if password.is_empty() {
            return Err(KeyError::EmptyPassword);
        }
        if path.exists() {
            return Err(KeyError::Exists { path: path.to_path_buf() });
        }
        let io = |source| KeyError::Io { path: path.to_path_buf(), source };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.exists() {
            create_private_dir(&dir).map_err(io)?;
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| KeyError::Keystore { path: path.to_path_buf(), why: "the file name is not UTF-8".into() })?;
        eth_keystore::encrypt_key(&dir, &mut rand::rngs::OsRng, self.secret.to_bytes_be(), password, Some(name))
            .map_err(|e| KeyError::Keystore { path: path.to_path_buf(), why: e.to_string() })?;
        set_private(path).map_err(io)
    }

    /// Reads a keystore file (ours or starkli's).
    pub fn load(path: &Path, password: &str) -> Result<WorkerKey, KeyError> {
        if !path.exists() {
            return Err(KeyError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no keystore here (run `bitsage-host setup`)",
                ),
            });
        }
        let bytes = eth_keystore::decrypt_key(path, password).map_err(|e| match e {
            eth_keystore::KeystoreError::MacMismatch => KeyError::WrongPassword,
            other => KeyError::Keystore { path: path.to_path_buf(), why: other.to_string() },
        })?;
        let b: [u8; 32] = bytes.as_slice().try_into().map_err(|_| KeyError::BadSecret(bytes.len()))?;
        Ok(WorkerKey { secret: Felt::from_bytes_be(&b) })
    }

    /// Copies the (still encrypted) keystore to `out` as a backup, after
    /// checking that `password` opens it. Mode 0600; never overwrites.
    pub fn export(path: &Path, password: &str, out: &Path) -> Result<Felt, KeyError> {
        let key = WorkerKey::load(path, password)?;
        if out.exists() {
            return Err(KeyError::Exists { path: out.to_path_buf() });
        }
        let io = |source| KeyError::Io { path: out.to_path_buf(), source };
        std::fs::copy(path, out).map_err(io)?;
        set_private(out).map_err(io)?;
        Ok(key.public_key())
    }
}

#[cfg(unix)]
fn set_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn set_private(_: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("bitsage-keys-{tag}-{}-{}", std::process::id(), rand::random::<u64>()));
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    #[test]
    fn keystore_round_trip_wrong_password_mode_and_no_plaintext() {
        let dir = temp("rt");
        let path = dir.join("keys").join("worker.json");
        let key = WorkerKey::generate();
        key.save(&path, "correct horse").expect("save");
        let text = std::fs::read_to_string(&path).expect("read");
        let v: serde_json::Value = serde_json::from_str(&text).expect("keystore JSON");
        assert_eq!(v["version"], 3);
        assert_eq!(v["crypto"]["kdf"], "scrypt");
        assert_eq!(v["crypto"]["cipher"], "aes-128-ctr");
        // The secret appears nowhere in the file, in any usual encoding.
        let secret_hex = hex::encode(key.secret.to_bytes_be());
        assert!(!text.contains(&secret_hex) && !text.contains(secret_hex.trim_start_matches('0')));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
        }
        let back = WorkerKey::load(&path, "correct horse").expect("load");
        assert_eq!(back.public_key(), key.public_key());
        assert!(matches!(WorkerKey::load(&path, "wrong"), Err(KeyError::WrongPassword)));
        assert!(matches!(key.save(&path, "x"), Err(KeyError::Exists { .. })));
        assert!(matches!(key.save(&dir.join("k2.json"), ""), Err(KeyError::EmptyPassword)));
        // A backup opens with the same password and keeps the mode.
        let backup = dir.join("backup.json");
        assert_eq!(WorkerKey::export(&path, "correct horse", &backup).expect("export"), key.public_key());
        assert!(matches!(WorkerKey::export(&path, "wrong", &dir.join("b2.json")), Err(KeyError::WrongPassword)));
        assert_eq!(WorkerKey::load(&backup, "correct horse").expect("backup loads").public_key(), key.public_key());
        assert!(!format!("{key:?}").contains(&secret_hex));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn signatures_verify_under_the_public_key_only() {
        let key = WorkerKey::from_secret(Felt::from(0x1234_5678_9abc_u64));
        let other = WorkerKey::generate();
        let msg = Felt::from(42u32);
        let (r, s) = key.sign(&msg).expect("sign");
        assert!(starknet_crypto::verify(&key.public_key(), &msg, &r, &s).expect("verify"));
        assert!(!starknet_crypto::verify(&other.public_key(), &msg, &r, &s).expect("verify"));
        assert!(!starknet_crypto::verify(&key.public_key(), &Felt::from(43u32), &r, &s).expect("verify"));
        // RFC 6979: the same message signs the same way.
        assert_eq!(key.sign(&msg).expect("sign"), (r, s));
    }
}
