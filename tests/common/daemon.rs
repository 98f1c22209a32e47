//! Running the real daemon binary against a test database, a fake exchange and receivers.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::zombie_processes,
    clippy::result_large_err
)]

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::TestDb;

pub const TOKEN: &str = "test-token-0123456789abcdef";

pub struct RunningDaemon {
    pub child: Child,
    pub api: String,
}

/// A config file for the daemon in the test's folder.
pub fn write_config(db: &TestDb, ws_url: &str, extra: &str) -> String {
    let path = db.dir.path().join("bsc-bot.toml");
    let text = format!(
        "[market]\nws_urls = [\"{ws_url}\"]\nstale_after_secs = 2\nsilent_after_secs = 2\nreconnect_min_ms = 50\nreconnect_max_ms = 200\n\n\
         [api]\nlisten = \"127.0.0.1:0\"\nrate_limit_per_sec = 1000\nrate_limit_burst = 1000\n\n[daemon]\ncontrol_poll_ms = 100\nsnapshot_every_ms = 200\n\n{extra}\n"
    );
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

impl RunningDaemon {
    pub async fn start(db: &TestDb, config: &str, args: &[&str]) -> RunningDaemon {
        Self::start_with_env(db, config, args, &[]).await
    }

    pub async fn start_with_env(
        db: &TestDb,
        config: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> RunningDaemon {
        Self::spawn(db, config, args, env, None, true).await
    }

    /// Returned as soon as its API answers, before its core is up (to see what the API says
    /// meanwhile); every other start waits for the core, as an operator who reads `bot health`.
    pub async fn start_serving_with_env(
        db: &TestDb,
        config: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> RunningDaemon {
        Self::spawn(db, config, args, env, None, false).await
    }

    /// Started with info-level JSON logs written to `log` (to assert on what operators read).
    pub async fn start_logged(db: &TestDb, config: &str, log: &std::path::Path) -> RunningDaemon {
        Self::spawn(db, config, &[], &[], Some(log), true).await
    }

    /// With arguments, environment and JSON logs to `log`.
    pub async fn start_logged_with_env(
        db: &TestDb,
        config: &str,
        args: &[&str],
        env: &[(&str, &str)],
        log: &std::path::Path,
    ) -> RunningDaemon {
        Self::spawn(db, config, args, env, Some(log), true).await
    }

    async fn spawn(
        db: &TestDb,
        config: &str,
        args: &[&str],
        env: &[(&str, &str)],
        log: Option<&std::path::Path>,
        until_core: bool,
    ) -> RunningDaemon {
        let level = if log.is_some() { "info" } else { "warn" };
        let mut argv = vec![
            "--config",
            config,
            "--log-level",
            level,
            "--log-format",
            if log.is_some() { "json" } else { "text" },
            "bot",
            "start",
        ];
        argv.extend_from_slice(args);
        let stderr = match log {
            Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
            None => Stdio::inherit(),
        };
        let child = db
            .cmd(&argv)
            .env("BSC_BOT_API_TOKEN", TOKEN)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        // Until it is handed over, a panic below (the store cannot open, the daemon never comes
        // up) must not leave the daemon running after the test: it would poll a dropped database
        // and write into whatever output it inherited for as long as the machine runs.
        let mut started = Started(Some(child));
        let store = db.store().await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(
                Instant::now() < deadline,
                "daemon did not come up (its API, and its core unless asked not to wait)"
            );
            let pid = started.0.as_ref().map_or(0, |c| c.id());
            // Its own row (a cluster's members each have one).
            let own = store
                .daemons()
                .await
                .ok()
                .and_then(|all| all.into_iter().find(|d| d.pid == i64::from(pid)));
            if let Some(d) = own {
                if d.stopped_at.is_none() {
                    let url = format!("http://{}/api/health", d.api_addr);
                    let serving = match reqwest::get(&url).await {
                        Ok(r) if until_core => r
                            .json::<serde_json::Value>()
                            .await
                            .is_ok_and(|h| h["services"]["engine"] == "running"),
                        Ok(_) => true,
                        Err(_) => false,
                    };
                    if serving {
                        store.close().await;
                        if let Some(child) = started.0.take() {
                            return RunningDaemon {
                                child,
                                api: d.api_addr,
                            };
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = reqwest::Client::new()
            .get(format!("http://{}{path}", self.api))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn text(&self, path: &str) -> (u16, String) {
        let r = reqwest::Client::new()
            .get(format!("http://{}{path}", self.api))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Wait (up to `within`) for `check` to hold, returning how long it took.
    pub async fn until<F, Fut>(&self, within: Duration, mut check: F) -> Option<Duration>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let start = Instant::now();
        while start.elapsed() < within {
            if check().await {
                return Some(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// The strategy statuses the engine has applied, by database id.
    pub async fn engine_status(&self, id: i64) -> Option<String> {
        let (_, v) = self.get("/api/v1/status").await;
        v["engine_strategies"]
            .as_array()?
            .iter()
            .find(|s| s["id"] == id)
            .and_then(|s| s["status"].as_str().map(str::to_string))
    }

    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

/// A daemon spawned but not yet handed to the test: killed if the start panics.
struct Started(Option<std::process::Child>);

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RunningDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
