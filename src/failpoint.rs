//! Crash-injection points (floor 0, uses nothing of the crate) for tests that prove atomicity.
//!
//! Crash-injection points for tests that prove atomicity (`BSC_BOT_FAILPOINTS=name=abort`).
//!
//! A failpoint costs one environment lookup and is only placed on operator commands, never on
//! the tick path. `abort` kills the process like `kill -9` would; `sleep:MS` holds it open so a
//! test can kill it from outside at a known point; `fail_once` makes the daemon's writer fail its
//! first attempt at a batch (one lookup per batch, off the tick path); `hang` stops an async task
//! there for good, so a test that drops it sees exactly what a crash at that point leaves.

/// The action `BSC_BOT_FAILPOINTS` sets for `name`, if any.
fn action(name: &str) -> Option<String> {
    let spec = std::env::var("BSC_BOT_FAILPOINTS").ok()?;
    action_in(&spec, name)
}

fn action_in(spec: &str, name: &str) -> Option<String> {
    spec.split(',').find_map(|entry| {
        let (point, action) = entry.split_once('=')?;
        (point.trim() == name).then(|| action.trim().to_string())
    })
}

/// The daemon's paper venue as a test injects it (`paper_venue=latency_ms:300/fail_ppm:300000`):
/// it answers late and fails some orders, so the canary's paper gate can be shown to catch a paper
/// run that does not match its backtest. Read once, when the daemon builds its venues.
pub fn paper_venue() -> Option<(i64, u32)> {
    let spec = action("paper_venue")?;
    let mut latency_ms = 0i64;
    let mut fail_ppm = 0u32;
    for part in spec.split('/') {
        match part.split_once(':') {
            Some(("latency_ms", v)) => latency_ms = v.parse().ok()?,
            Some(("fail_ppm", v)) => fail_ppm = v.parse().ok()?,
            _ => return None,
        }
    }
    Some((latency_ms, fail_ppm))
}

/// Trigger the named failpoint if `BSC_BOT_FAILPOINTS` lists it (`a=abort,b=sleep:500`).
pub fn hit(name: &str) {
    let Some(action) = action(name) else {
        return;
    };
    match action.as_str() {
        "abort" => std::process::abort(),
        other => {
            if let Some(ms) = other.strip_prefix("sleep:").and_then(|m| m.parse().ok()) {
                std::thread::sleep(std::time::Duration::from_millis(ms));
            }
        }
    }
}

/// True the first time `name` is reached when `BSC_BOT_FAILPOINTS` sets it to `fail_once`: the
/// caller fails as if its database call had, so a test can drive its retry path. Once per
/// distinct `BSC_BOT_FAILPOINTS` value, so a test can arm it again by changing the value.
pub fn fail_once(name: &str) -> bool {
    static FIRED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let Ok(spec) = std::env::var("BSC_BOT_FAILPOINTS") else {
        return false;
    };
    if action_in(&spec, name).as_deref() != Some("fail_once") {
        return false;
    }
    let key = format!("{name}|{spec}");
    let Ok(mut fired) = FIRED.lock() else {
        return false;
    };
    if fired.contains(&key) {
        return false;
    }
    fired.push(key);
    true
}

/// Never returns when `BSC_BOT_FAILPOINTS` sets `name` to `hang` (the caller's task is then dropped
/// by the test, as a crash would end it).
pub async fn hang_if(name: &str) {
    if action(name).as_deref() == Some("hang") {
        std::future::pending::<()>().await;
    }
}
