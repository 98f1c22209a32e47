//! A local stand-in for Binance's combined-stream WebSocket and for alert receivers.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::zombie_processes,
    clippy::result_large_err
)]

use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Clone)]
pub enum Cmd {
    Text(String),
    Ping,
    /// Close the TCP connection without a close frame.
    Drop,
    /// Write the first bytes of a frame header and vanish (a half frame).
    HalfFrame,
}

pub struct FakeBinance {
    pub url: String,
    tx: broadcast::Sender<Cmd>,
    pub connections: Arc<AtomicUsize>,
    pub pongs: Arc<AtomicUsize>,
    pub paths: Arc<Mutex<Vec<String>>>,
}

impl FakeBinance {
    pub async fn start() -> FakeBinance {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}", listener.local_addr().unwrap());
        let (tx, _) = broadcast::channel(65_536);
        let connections = Arc::new(AtomicUsize::new(0));
        let pongs = Arc::new(AtomicUsize::new(0));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let (tx2, c2, p2, paths2) = (
            tx.clone(),
            connections.clone(),
            pongs.clone(),
            paths.clone(),
        );
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let mut rx = tx2.subscribe();
                let (c, p, paths) = (c2.clone(), p2.clone(), paths2.clone());
                tokio::spawn(async move {
                    let path_seen = paths.clone();
                    let cb = move |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
                                   resp: tokio_tungstenite::tungstenite::handshake::server::Response| {
                        path_seen.lock().unwrap().push(req.uri().to_string());
                        Ok(resp)
                    };
                    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(sock, cb).await else {
                        return;
                    };
                    c.fetch_add(1, Ordering::SeqCst);
                    loop {
                        tokio::select! {
                            cmd = rx.recv() => match cmd {
                                Ok(Cmd::Text(t)) => { if ws.send(Message::text(t)).await.is_err() { return; } }
                                Ok(Cmd::Ping) => { if ws.send(Message::Ping(b"hi".to_vec().into())).await.is_err() { return; } }
                                Ok(Cmd::Drop) => return,
                                Ok(Cmd::HalfFrame) => {
                                    let _ = ws.get_mut().write_all(&[0x81, 0x7e, 0x01]).await;
                                    return;
                                }
                                Err(broadcast::error::RecvError::Lagged(_)) => {}
                                Err(_) => return,
                            },
                            msg = ws.next() => match msg {
                                Some(Ok(Message::Pong(_))) => { p.fetch_add(1, Ordering::SeqCst); }
                                Some(Ok(_)) => {}
                                _ => return,
                            },
                        }
                    }
                });
            }
        });
        FakeBinance {
            url,
            tx,
            connections,
            pongs,
            paths,
        }
    }

    pub fn send(&self, cmd: Cmd) {
        let _ = self.tx.send(cmd);
    }

    /// A handle to send frames from another task.
    pub fn sender(&self) -> broadcast::Sender<Cmd> {
        self.tx.clone()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Wait (up to `within`) until more than `seen` connections were made: the daemon's feed
    /// connected, or reconnected after a drop.
    pub async fn wait_connections(&self, seen: usize, within: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if self.connections() > seen {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        self.connections() > seen
    }
}

/// The real 2023-04-05 capture's trade and bookTicker frames, restamped to now so they are fresh.
pub fn capture_frames(limit: usize) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/BTCUSDT-spot-ws-capture-2023-04-05.txt.gz");
    let file = std::fs::File::open(&path)
        .unwrap_or_else(|e| panic!("real capture missing: {} ({e})", path.display()));
    let reader = BufReader::new(flate2::read::GzDecoder::new(file));
    let mut out = Vec::new();
    for line in reader.lines() {
        let line = line.unwrap();
        let Some((_, json)) = line.split_once(' ') else {
            continue;
        };
        if !(json.contains("@trade\"") || json.contains("@bookTicker\"")) {
            continue;
        }
        out.push(json.to_string());
        if out.len() >= limit {
            break;
        }
    }
    out
}

/// Replace the frame's trade/event times with now (ms), keeping everything else verbatim.
pub fn restamp(frame: &str, now_ms: i64) -> String {
    let mut v: serde_json::Value = serde_json::from_str(frame).unwrap();
    if let Some(d) = v.get_mut("data").and_then(|d| d.as_object_mut()) {
        for k in ["T", "E"] {
            if d.contains_key(k) {
                d.insert(k.into(), serde_json::json!(now_ms));
            }
        }
    }
    v.to_string()
}

pub fn trade_frame(id: i64, price: &str, time_ms: i64) -> String {
    format!(
        r#"{{"stream":"btcusdt@trade","data":{{"e":"trade","E":{time_ms},"s":"BTCUSDT","t":{id},"p":"{price}","q":"0.01000000","T":{time_ms},"m":true,"M":true}}}}"#
    )
}

/// An HTTP receiver that records POST bodies; can fail the first N requests and delay answers.
pub struct Receiver {
    pub url: String,
    pub bodies: Arc<Mutex<Vec<String>>>,
    pub attempts: Arc<AtomicUsize>,
}

impl Receiver {
    pub async fn start(fail_first: usize, delay: Duration) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let attempts = Arc::new(AtomicUsize::new(0));
        let (b2, a2) = (bodies.clone(), attempts.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (bodies, attempts) = (b2.clone(), a2.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let n = match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(h) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..h]).to_ascii_lowercase();
                            let len: usize = head
                                .lines()
                                .find_map(|l| {
                                    l.strip_prefix("content-length:")
                                        .map(|v| v.trim().parse().unwrap_or(0))
                                })
                                .unwrap_or(0);
                            if buf.len() >= h + 4 + len {
                                let body =
                                    String::from_utf8_lossy(&buf[h + 4..h + 4 + len]).to_string();
                                let n = attempts.fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(delay).await;
                                let status = if n < fail_first {
                                    "500 Internal Server Error"
                                } else {
                                    bodies.lock().unwrap().push(body);
                                    "200 OK"
                                };
                                let _ = sock.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes()).await;
                                return;
                            }
                        }
                    }
                });
            }
        });
        Receiver {
            url,
            bodies,
            attempts,
        }
    }

    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .filter_map(|b| serde_json::from_str(b).ok())
            .collect()
    }
}
