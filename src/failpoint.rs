//! Crash-injection points for tests that prove atomicity (`BSC_BOT_FAILPOINTS=name=abort`).
//!
//! A failpoint costs one environment lookup and is only placed on operator commands, never on
//! the tick path. `abort` kills the process like `kill -9` would; `sleep:MS` holds it open so a
//! test can kill it from outside at a known point.

/// Trigger the named failpoint if `BSC_BOT_FAILPOINTS` lists it (`a=abort,b=sleep:500`).
pub fn hit(name: &str) {
    let Ok(spec) = std::env::var("BSC_BOT_FAILPOINTS") else {
        return;
    };
    for entry in spec.split(',') {
        let Some((point, action)) = entry.split_once('=') else {
            continue;
        };
        if point.trim() != name {
            continue;
        }
        match action.trim() {
            "abort" => std::process::abort(),
            other => {
                if let Some(ms) = other.strip_prefix("sleep:").and_then(|m| m.parse().ok()) {
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                }
            }
        }
    }
}
