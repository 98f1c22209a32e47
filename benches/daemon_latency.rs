//! Daemon benchmark: tick-to-decision latency (frame read off the socket → engine done with the
//! tick) at 1,000 and 10,000 trades/s, and idle RSS with 100 paper grid strategies.
//! Run: `cargo bench --bench daemon_latency`. It starts the real `bsc-bot` binary against a local
//! WebSocket server that speaks Binance's combined-stream format, replaying the real 2023-04-05
//! capture's trade prices with fresh timestamps. `BENCH_STRATEGIES=N` changes the strategy count,
//! `BENCH_BIN=PATH` benchmarks another build of the binary with the same harness, and
//! `BENCH_DATABASE_URL=postgres://…` (an empty database) runs it on PostgreSQL, as a cluster member
//! with leases unless `BSC_BOT_CLUSTER_ENABLED=false`. `BENCH_CONSOLE=1` keeps an operator console's
//! push stream (`/api/v1/events`) open and read through each round, as an open console does.

#![allow(clippy::zombie_processes)] // the daemon is stopped with `bot stop` and reaped with wait()

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_bsc-bot");
const TOKEN: &str = "bench-token-0123456789abcdef";

fn capture_prices() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/BTCUSDT-trades-2023-04-05.from-ws.csv");
    let file = std::fs::File::open(&path).expect("real trades in tests/data");
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| l.split(',').nth(1).map(str::to_string))
        .collect()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_string)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn bot(dir: &Path, args: &[&str]) -> Command {
    // BENCH_BIN runs another build of the daemon (A/B comparisons) with this harness.
    let bin = std::env::var("BENCH_BIN").unwrap_or_else(|_| BIN.to_string());
    let mut c = Command::new(bin);
    c.args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env("BSC_BOT_API_TOKEN", TOKEN);
    // BENCH_DATABASE_URL (an empty PostgreSQL database): the daemon runs as a cluster member,
    // with leases (BSC_BOT_CLUSTER_ENABLED=false: the same database without them).
    if let Ok(url) = std::env::var("BENCH_DATABASE_URL") {
        c.env("DATABASE_URL", url);
    }
    c
}

async fn api_status(api: &str) -> serde_json::Value {
    reqwest::Client::new()
        .get(format!("http://{api}/api/v1/status"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("json")
}

async fn start_daemon(dir: &Path) -> (Child, String) {
    let child = bot(dir, &["bot", "start"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn daemon");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "daemon did not start");
        let out = bot(dir, &["--json", "bot", "status"])
            .output()
            .expect("status");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if v["running"] == true && v["feed"]["connected"] == true {
            let api = v["daemon"]["api_addr"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            return (child, api);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let ws_url = format!("ws://{}", listener.local_addr().expect("addr"));
    let (tx, _) = broadcast::channel::<String>(1 << 16);
    let tx2 = tx.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let mut rx = tx2.subscribe();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(sock).await else {
                    return;
                };
                while let Ok(text) = rx.recv().await {
                    if ws.send(Message::text(text)).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    std::fs::write(
        dir.path().join("bsc-bot.toml"),
        format!("[market]\nws_urls = [\"{ws_url}\"]\nstale_after_secs = 5\n\n[api]\nlisten = \"127.0.0.1:0\"\n"),
    )
    .expect("config");
    // 100 paper grids of 21 levels (BENCH_STRATEGIES overrides), ranges staggered over the capture's prices.
    let count: usize = std::env::var("BENCH_STRATEGIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    for i in 0..count {
        let lower = 28_100 + (i % 10) * 2;
        let params = format!(
            r#"{{"lower_price":"{lower}","upper_price":"{}","grid_count":21,"base_order_size":"10","fee_bps":0}}"#,
            lower + 60
        );
        let out = bot(
            dir.path(),
            &[
                "strategy",
                "create",
                "-t",
                "grid",
                "-s",
                "BTC/USDT",
                "-n",
                &format!("g{i}"),
                "-p",
                &params,
            ],
        )
        .output()
        .expect("create");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let prices = capture_prices();
    println!("| rate | ticks | p50 | p99 | fills | RSS | DB backlog at end → drained |\n|---|---|---|---|---|---|---|");
    let mut idle_rss = 0;
    for rate in [1_000u64, 10_000] {
        let (mut child, api) = start_daemon(dir.path()).await;
        if idle_rss == 0 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            idle_rss = rss_kib(child.id());
        }
        // An open console: the push stream read to the end of the round (events counted).
        let console = std::env::var("BENCH_CONSOLE")
            .is_ok_and(|v| v == "1")
            .then(|| {
                let url = format!("http://{api}/api/v1/events");
                tokio::spawn(async move {
                    let mut events = 0u64;
                    let Ok(mut r) = reqwest::Client::new()
                        .get(url)
                        .bearer_auth(TOKEN)
                        .send()
                        .await
                    else {
                        return 0;
                    };
                    while let Ok(Some(chunk)) = r.chunk().await {
                        events += chunk.windows(7).filter(|w| w == b"event: ").count() as u64;
                    }
                    events
                })
            });
        let seconds = 5;
        let total = rate * seconds;
        let per_ms = (rate / 1000).max(1);
        let start = Instant::now();
        for n in 0..total {
            let now = bsc_bot::clock::wall_clock_ms();
            let p = &prices[(n as usize) % prices.len()];
            let _ = tx.send(format!(
                r#"{{"stream":"btcusdt@trade","data":{{"e":"trade","E":{now},"s":"BTCUSDT","t":{n},"p":"{p}","q":"0.001","T":{now},"m":true,"M":true}}}}"#
            ));
            if (n + 1) % per_ms == 0 {
                let due = Duration::from_micros((n + 1) * 1_000_000 / rate);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
        }
        // How far the database trails the engine when the burst ends, and how long it takes to
        // catch up (the fills column is read once it has).
        let sent = Instant::now();
        let backlog_at_end = api_status(&api).await["persist_backlog"].clone();
        let mut drained_ms = None;
        while sent.elapsed() < Duration::from_secs(30) {
            if api_status(&api).await["persist_backlog"] == 0 {
                drained_ms = Some(sent.elapsed().as_millis());
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let s = api_status(&api).await;
        let busy_rss = rss_kib(child.id());
        let fills: i64 = {
            let out = bot(dir.path(), &["--json", "strategy", "status", "g0"])
                .output()
                .expect("status");
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            v["fills"].as_i64().unwrap_or(0)
        };
        println!(
            "| {rate}/s | {} | {:.1} µs | {:.1} µs | {fills} (strategy g0) | {:.1} MB | {backlog_at_end} events → {} |",
            s["tick_to_decision_us"]["count"],
            s["tick_to_decision_us"]["p50"].as_f64().unwrap_or(-1.0),
            s["tick_to_decision_us"]["p99"].as_f64().unwrap_or(-1.0),
            busy_rss as f64 / 1024.0,
            drained_ms.map_or("not within 30 s".to_string(), |ms| format!("{ms} ms")),
        );
        let _ = bot(dir.path(), &["bot", "stop"]).output();
        let _ = child.wait();
        if let Some(task) = console {
            println!(
                "  (console push stream open: {} events received)",
                task.await.unwrap_or(0)
            );
        }
    }
    println!(
        "\nidle RSS with {count} paper strategies: {:.1} MB",
        idle_rss as f64 / 1024.0
    );
}
