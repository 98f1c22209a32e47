//! A throwaway PostgreSQL server of a test's own, on a free loopback port, that the test may
//! stop and start (the server binaries `scripts/test.sh` installs).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

/// A throwaway PostgreSQL cluster on a free loopback port.
pub struct PgCluster {
    bin: PathBuf,
    data: tempfile::TempDir,
    port: u16,
}

impl PgCluster {
    pub fn start() -> Option<PgCluster> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .max()?;
        let data = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = PgCluster { bin, data, port };
        if is_root() {
            assert!(Command::new("chown")
                .args(["-R", "postgres"])
                .arg(c.data.path())
                .status()
                .unwrap()
                .success());
        }
        let pgdata = c.data.path().join("pg");
        let ok = c
            .pg("initdb")
            .arg("-D")
            .arg(&pgdata)
            .args(["-A", "trust", "-U", "postgres", "--no-sync"])
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
        c.ctl("start");
        Some(c)
    }

    pub fn pg(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    pub fn ctl(&self, action: &str) {
        let pgdata = self.data.path().join("pg");
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.data.path().display()
        );
        let mut c = self.pg("pg_ctl");
        c.arg("-D").arg(&pgdata).args(["-w", "-t", "60"]);
        match action {
            "start" => c
                .args(["-l"])
                .arg(self.data.path().join("server.log"))
                .args(["-o", &opts, "start"]),
            _ => c.args(["-m", "fast", "stop"]),
        };
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "pg_ctl {action}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let pgdata = self.data.path().join("pg");
        let _ = self
            .pg("pg_ctl")
            .arg("-D")
            .arg(&pgdata)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}
