//! Trading wallets (floor 3, may use floors 0–2): keys in encrypted keystores.
//!
//! Trading wallets: keys in encrypted keystores (Web3 Secret Storage v3, scrypt) under the data
//! folder, one file per wallet named after it, mode 0600 in a 0700 folder.
//!
//! A key exists in memory only while a signer is built from it; it is never printed, logged,
//! returned in an error or written anywhere but its keystore. The password comes from
//! `BSC_BOT_KEYSTORE_PASSWORD` or the operator's terminal (see the CLI).

use std::path::{Path, PathBuf};

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use serde::Serialize;

/// Shorter passwords are refused when a keystore is written: scrypt cannot save a weak one.
pub const MIN_PASSWORD_LEN: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("wallet name {0:?} is invalid: use 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'")]
    InvalidName(String),
    #[error("a wallet named {0:?} exists already")]
    Exists(String),
    #[error("no wallet named {0:?} (see `bsc-bot wallet list`)")]
    NotFound(String),
    #[error("wrong password for wallet {0:?}")]
    WrongPassword(String),
    #[error("the keystore password must be at least {MIN_PASSWORD_LEN} characters")]
    WeakPassword,
    #[error("the private key is not 32 bytes of hex (0x-prefixed or not)")]
    BadKey,
    #[error("keystore {path}: {message}")]
    Io { path: String, message: String },
}

/// What `wallet list` shows of a wallet without unlocking it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WalletInfo {
    pub name: String,
    pub address: Address,
}

/// The folder of keystore files.
#[derive(Debug, Clone)]
pub struct Keystore {
    dir: PathBuf,
}

fn io(path: &Path, e: impl std::fmt::Display) -> WalletError {
    WalletError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Private key text (hex, `0x` optional, surrounding blanks ignored) → its 32 bytes.
fn parse_key(text: &str) -> Result<[u8; 32], WalletError> {
    let hex = text.trim();
    let hex = hex.strip_prefix("0x").unwrap_or(hex);
    if hex.len() != 64 {
        return Err(WalletError::BadKey);
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        let digits = std::str::from_utf8(pair).map_err(|_| WalletError::BadKey)?;
        out[i] = u8::from_str_radix(digits, 16).map_err(|_| WalletError::BadKey)?;
    }
    Ok(out)
}

impl Keystore {
    pub fn new(dir: impl Into<PathBuf>) -> Keystore {
        Keystore { dir: dir.into() }
    }

    /// `<config folder>/data/keystore`.
    pub fn of_config(config: &crate::config::Config) -> Keystore {
        Keystore::new(config.base_dir.join("data").join("keystore"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, name: &str) -> Result<PathBuf, WalletError> {
        if !valid_name(name) {
            return Err(WalletError::InvalidName(name.to_string()));
        }
        Ok(self.dir.join(format!("{name}.json")))
    }

    /// A new random key, encrypted under `password`; returns its address.
    pub fn generate(&self, name: &str, password: &str) -> Result<Address, WalletError> {
        let signer = PrivateKeySigner::random();
        self.store(name, &signer, password)
    }

    /// Encrypt an existing key (hex) as wallet `name`.
    pub fn import(
        &self,
        name: &str,
        key_hex: &str,
        password: &str,
    ) -> Result<Address, WalletError> {
        let bytes = parse_key(key_hex)?;
        let signer = PrivateKeySigner::from_slice(&bytes).map_err(|_| WalletError::BadKey)?;
        self.store(name, &signer, password)
    }

    fn store(
        &self,
        name: &str,
        signer: &PrivateKeySigner,
        password: &str,
    ) -> Result<Address, WalletError> {
        let path = self.path_of(name)?;
        if password.chars().count() < MIN_PASSWORD_LEN {
            return Err(WalletError::WeakPassword);
        }
        if std::fs::symlink_metadata(&path).is_ok() {
            crate::private_files::refuse_link(&path).map_err(|e| io(&path, e))?;
            return Err(WalletError::Exists(name.to_string()));
        }
        self.create_dir()?;
        // Written in a private scratch folder (a fresh random name, made 0700 by the one call
        // that creates it: nothing planted there beforehand can be used), then moved into place
        // without replacing anything: the file is never readable by others, not even for a
        // moment, and never half-written under its name.
        let scratch = tempfile::Builder::new()
            .prefix(".new-")
            .tempdir_in(&self.dir)
            .map_err(|e| io(&self.dir, e))?;
        let file_name = format!("{name}.json");
        eth_keystore::encrypt_key(
            scratch.path(),
            &mut rand::thread_rng(),
            signer.to_bytes(),
            password,
            Some(&file_name),
        )
        .map_err(|e| io(scratch.path(), e))?;
        let tmp = scratch.path().join(&file_name);
        set_mode(&tmp, 0o600)?;
        // Refuses to replace a wallet created meanwhile, or a link planted at its name.
        crate::private_files::rename_new(&tmp, &path).map_err(|e| match e {
            crate::private_files::PrivateFileError::Exists { .. } => {
                WalletError::Exists(name.to_string())
            }
            other => io(&path, other),
        })?;
        Ok(signer.address())
    }

    /// The keystore folder: created 0700; refused when it is a link or another user's; its mode
    /// made 0700 (and said so) when it was open to others.
    fn create_dir(&self) -> Result<(), WalletError> {
        match crate::private_files::private_dir(&self.dir) {
            Ok(Some(t)) => {
                tracing::warn!(folder = %t.path, was = format!("{:o}", t.was), "the keystore folder was open to others; made 0700");
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => Err(io(&self.dir, e)),
        }
    }

    /// Every wallet, by name, with the address its keystore records (no password needed).
    pub fn list(&self) -> Result<Vec<WalletInfo>, WalletError> {
        if std::fs::symlink_metadata(&self.dir).is_ok() {
            self.create_dir()?;
        }
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&self.dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| io(&self.dir, e))?.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
                .filter(|n| valid_name(n))
            else {
                continue;
            };
            out.push(WalletInfo {
                name: name.to_string(),
                address: recorded_address(&path)?,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The signer of wallet `name`; its address is checked against the keystore's record.
    pub fn unlock(&self, name: &str, password: &str) -> Result<PrivateKeySigner, WalletError> {
        let path = self.path_of(name)?;
        if !path.exists() {
            return Err(WalletError::NotFound(name.to_string()));
        }
        // Keys come only from the operator's own folder and files, never through a link.
        self.create_dir()?;
        crate::private_files::refuse_link(&path).map_err(|e| io(&path, e))?;
        let secret = eth_keystore::decrypt_key(&path, password).map_err(|e| match e {
            eth_keystore::KeystoreError::MacMismatch => {
                WalletError::WrongPassword(name.to_string())
            }
            other => io(&path, other),
        })?;
        let signer = PrivateKeySigner::from_slice(&secret).map_err(|_| WalletError::BadKey)?;
        if signer.address() != recorded_address(&path)? {
            return Err(io(&path, "the key does not match the recorded address"));
        }
        Ok(signer)
    }
}

/// The `address` field a keystore file records (hex without `0x`, as geth writes it).
fn recorded_address(path: &Path) -> Result<Address, WalletError> {
    let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| io(path, e))?;
    let hex = doc["address"]
        .as_str()
        .ok_or_else(|| io(path, "no address recorded"))?;
    let hex = hex.strip_prefix("0x").unwrap_or(hex);
    format!("0x{hex}")
        .parse()
        .map_err(|_| io(path, "the recorded address is not an address"))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), WalletError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_list_unlock_and_refusals() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let ks = Keystore::new(dir.path().join("keystore"));
        let addr = ks.generate("hot-1", "correct horse").unwrap_or_default();
        let list = ks.list().unwrap_or_default();
        assert_eq!(
            list,
            vec![WalletInfo {
                name: "hot-1".into(),
                address: addr
            }]
        );
        let signer = ks.unlock("hot-1", "correct horse");
        assert_eq!(signer.map(|s| s.address()).ok(), Some(addr));
        assert!(matches!(
            ks.unlock("hot-1", "wrong horse"),
            Err(WalletError::WrongPassword(_))
        ));
        assert!(matches!(
            ks.generate("hot-1", "correct horse"),
            Err(WalletError::Exists(_))
        ));
        assert!(matches!(
            ks.generate("../x", "correct horse"),
            Err(WalletError::InvalidName(_))
        ));
        assert!(matches!(
            ks.generate("short", "1234567"),
            Err(WalletError::WeakPassword)
        ));
        assert!(matches!(
            ks.unlock("nope", "correct horse"),
            Err(WalletError::NotFound(_))
        ));
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| {
            std::fs::metadata(p)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0)
        };
        assert_eq!(mode(&dir.path().join("keystore/hot-1.json")), 0o600);
        assert_eq!(mode(&dir.path().join("keystore")), 0o700);
    }

    #[test]
    fn keystore_folders_and_files_never_follow_links_and_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| {
            std::fs::symlink_metadata(p)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0)
        };
        // A folder that is there already, open to everyone: made 0700 before a key goes in.
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        Keystore::new(&open).generate("a", "password1").unwrap();
        assert_eq!(mode(&open), 0o700);
        // A keystore folder that is a link: refused, nothing written where it points.
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let linked = dir.path().join("linked");
        std::os::unix::fs::symlink(&elsewhere, &linked).unwrap();
        let e = Keystore::new(&linked)
            .generate("b", "password1")
            .unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        // The old predictable scratch name planted as a link: never used.
        let trap = dir.path().join("trap");
        std::fs::create_dir(&trap).unwrap();
        std::os::unix::fs::symlink(&trap, open.join(format!(".new-{}", std::process::id())))
            .unwrap();
        Keystore::new(&open).generate("c", "password1").unwrap();
        assert_eq!(
            std::fs::read_dir(&trap).unwrap().count(),
            0,
            "nothing in the trap"
        );
        // A link planted at a wallet's file name: refused, its target untouched.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "theirs").unwrap();
        std::os::unix::fs::symlink(&victim, open.join("d.json")).unwrap();
        let e = Keystore::new(&open).generate("d", "password1").unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "theirs");
    }

    #[test]
    fn import_keeps_the_keys_address() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let ks = Keystore::new(dir.path());
        // anvil's well-known first account.
        let key = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
        let addr = ks.import("dev", key, "password1").unwrap_or_default();
        assert_eq!(
            addr.to_string(),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        );
        assert!(matches!(
            ks.import("x", "0x1234", "password1"),
            Err(WalletError::BadKey)
        ));
        let text = std::fs::read_to_string(dir.path().join("dev.json")).unwrap_or_default();
        assert!(
            !text.contains(&key[2..]),
            "the key is not in the file in the clear"
        );
    }
}
