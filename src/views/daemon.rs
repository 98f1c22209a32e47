//! The daemon as the operator sees it: is one running on this database, and where.

use crate::clock::wall_clock_ms;
use crate::store::daemon::DaemonInfo;
use crate::store::{DaemonInfoExt, Store};

/// Whether the daemon's core is up: strategies restored, orders the last run left in flight
/// settled, the engine, funds manager and feed started. The API serves before that (and through a
/// cluster member's core restarts), so it must say what it cannot know yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoreState {
    /// Since when (epoch ms).
    Starting {
        since_ms: i64,
    },
    Running {
        since_ms: i64,
    },
}

impl Default for CoreState {
    fn default() -> Self {
        CoreState::Starting { since_ms: 0 }
    }
}

impl CoreState {
    /// Seconds since the core began starting; `None` once it runs.
    pub fn starting_secs(&self, now_ms: i64) -> Option<f64> {
        match self {
            CoreState::Running { .. } => None,
            CoreState::Starting { since_ms } => Some((now_ms - since_ms).max(0) as f64 / 1000.0),
        }
    }

    /// `services.engine` in the health report.
    pub fn shown(&self, now_ms: i64) -> String {
        match self.starting_secs(now_ms) {
            None => "running".into(),
            Some(secs) => format!("starting for {secs:.1} s"),
        }
    }
}

/// This host's name, as the daemon records it (the CLI compares it to tell a local daemon).
pub fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// The running daemon, if its heartbeat is recent and, when it runs on this host, its process
/// lives (a daemon killed a second ago is not "running" for the heartbeat's remaining seconds).
pub async fn running_daemon(store: &Store) -> Option<DaemonInfo> {
    let d = store.daemon_info().await.ok()??;
    if !d.is_alive(wall_clock_ms()) {
        return None;
    }
    if d.host == hostname() && !process_lives(d.pid) {
        return None;
    }
    Some(d)
}

/// Signal 0 to `pid`: only "no such process" says it is gone (a process of another user answers
/// "not permitted" and lives).
pub fn process_lives(pid: i64) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}
