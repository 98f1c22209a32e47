//! The API bearer token: `BSC_BOT_API_TOKEN`, else a file created on first start with mode 0600.
//! A token is a password to every control endpoint: the daemon refuses a short one, a token file
//! others can read, and a token file that is a link (what it would read is someone else's).

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::config::Config;

/// Fewer characters than this are guessable; a generated token has 64 (32 random bytes in hex).
pub const MIN_TOKEN_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("BSC_BOT_API_TOKEN has {0} characters: a token needs at least {MIN_TOKEN_LEN} (e.g. `openssl rand -hex 32`)")]
    ShortEnv(usize),
    #[error("the API token file {0} is a symbolic link: refused (the daemon reads and writes its own file only)")]
    Link(String),
    #[error("the API token file {path} can be read by others (mode {mode:o}): `chmod 600 {path}`")]
    Readable { path: String, mode: u32 },
    #[error("the API token in {path} has {len} characters: a token needs at least {MIN_TOKEN_LEN}; delete the file and a new one is made at the next start")]
    ShortFile { path: String, len: usize },
    #[error("the API token file {path}: {message}")]
    Io { path: String, message: String },
}

pub fn token_path(config: &Config) -> PathBuf {
    config.base_dir.join(&config.api.token_file)
}

fn env_token() -> Option<String> {
    std::env::var("BSC_BOT_API_TOKEN")
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// The token file's text, read without following a link (`None`: no file).
fn read_file(path: &Path) -> Result<Option<String>, TokenError> {
    let shown = path.display().to_string();
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(TokenError::Io {
                path: shown,
                message: e.to_string(),
            })
        }
    };
    if meta.file_type().is_symlink() {
        return Err(TokenError::Link(shown));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(TokenError::Readable { path: shown, mode });
    }
    let mut text = String::new();
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|e| TokenError::Io {
            path: shown.clone(),
            message: e.to_string(),
        })?;
    let token = text.trim().to_string();
    if token.chars().count() < MIN_TOKEN_LEN {
        return Err(TokenError::ShortFile {
            path: shown,
            len: token.chars().count(),
        });
    }
    Ok(Some(token))
}

/// The token the CLI presents, if it can find one (a token the daemon would refuse is none).
pub fn read_token(config: &Config) -> Option<String> {
    if let Some(t) = env_token() {
        return Some(t);
    }
    read_file(&token_path(config)).ok().flatten()
}

/// The daemon's token: from the environment, the token file, or newly generated into it.
pub fn load_or_create_token(config: &Config) -> Result<String, TokenError> {
    if let Some(t) = env_token() {
        let len = t.chars().count();
        if len < MIN_TOKEN_LEN {
            return Err(TokenError::ShortEnv(len));
        }
        return Ok(t);
    }
    let path = token_path(config);
    if let Some(t) = read_file(&path)? {
        return Ok(t);
    }
    let io = |e: &dyn std::fmt::Display| TokenError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    if let Some(dir) = path.parent() {
        crate::private_files::create_private_dirs(dir).map_err(|e| io(&e))?;
    }
    let token = random_hex(32).map_err(|e| io(&e))?;
    crate::private_files::write_new(&path, format!("{token}\n").as_bytes()).map_err(
        |e| match e {
            crate::private_files::PrivateFileError::Link { path } => TokenError::Link(path),
            other => io(&other),
        },
    )?;
    Ok(token)
}

fn random_hex(bytes: usize) -> std::io::Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
