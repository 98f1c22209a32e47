//! The API bearer token: `BSC_BOT_API_TOKEN`, else a file created on first start with mode 0600.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::config::Config;

pub fn token_path(config: &Config) -> PathBuf {
    config.base_dir.join(&config.api.token_file)
}

/// The token the CLI presents, if it can find one.
pub fn read_token(config: &Config) -> Option<String> {
    if let Ok(t) = std::env::var("BSC_BOT_API_TOKEN") {
        if !t.trim().is_empty() {
            return Some(t.trim().to_string());
        }
    }
    std::fs::read_to_string(token_path(config))
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// The daemon's token: from the environment, the token file, or newly generated into it.
pub fn load_or_create_token(config: &Config) -> std::io::Result<String> {
    if let Some(t) = read_token(config) {
        return Ok(t);
    }
    let path = token_path(config);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let token = random_hex(32)?;
    write_private(&path, &token)?;
    Ok(token)
}

fn random_hex(bytes: usize) -> std::io::Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")
}
