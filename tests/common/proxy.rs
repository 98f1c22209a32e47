//! A TCP proxy in front of a real node, to make an RPC endpoint fail the ways real ones do: stop
//! (connections refused, open ones cut) and come back on the same port, or answer slowly.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct RpcProxy {
    pub url: String,
    addr: SocketAddr,
    upstream: SocketAddr,
    /// Delay before each chunk of an answer (ms).
    delay_ms: Arc<AtomicU64>,
    /// `eth_sendRawTransaction` requests seen.
    sends: Arc<AtomicU64>,
    /// Bumped to cut every open connection.
    cut: watch::Sender<u64>,
    accept: Option<JoinHandle<()>>,
}

impl RpcProxy {
    /// A proxy on a free loopback port to `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> RpcProxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap();
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let (cut, _) = watch::channel(0);
        let mut p = RpcProxy {
            url: format!("http://{addr}"),
            addr,
            upstream,
            delay_ms: Arc::new(AtomicU64::new(0)),
            sends: Arc::new(AtomicU64::new(0)),
            cut,
            accept: None,
        };
        p.up().await;
        p
    }

    /// Accept connections again (on the same port).
    pub async fn up(&mut self) {
        if self.accept.is_some() {
            return;
        }
        let listener = loop {
            let socket = TcpSocket::new_v4().unwrap();
            socket.set_reuseaddr(true).unwrap();
            if socket.bind(self.addr).is_ok() {
                break socket.listen(1024).unwrap();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let upstream = self.upstream;
        let delay = self.delay_ms.clone();
        let sends = self.sends.clone();
        let cut = self.cut.subscribe();
        self.accept = Some(tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(
                    client,
                    upstream,
                    delay.clone(),
                    sends.clone(),
                    cut.clone(),
                ));
            }
        }));
    }

    /// Stop: new connections are refused and open ones are cut.
    pub fn down(&mut self) {
        if let Some(t) = self.accept.take() {
            t.abort();
        }
        self.cut.send_modify(|g| *g += 1);
    }

    /// How many `eth_sendRawTransaction` requests went through.
    pub fn raw_sends(&self) -> u64 {
        self.sends.load(Ordering::Relaxed)
    }

    /// Answer every chunk `ms` late (0: at once).
    pub fn slow(&self, ms: u64) {
        self.delay_ms.store(ms, Ordering::Relaxed);
    }
}

impl Drop for RpcProxy {
    fn drop(&mut self) {
        self.down();
    }
}

async fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    delay: Arc<AtomicU64>,
    sends: Arc<AtomicU64>,
    mut cut: watch::Receiver<u64>,
) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    let up = async {
        let mut buf = vec![0u8; 65536];
        loop {
            let n = cr.read(&mut buf).await.unwrap_or(0);
            let method = b"eth_sendRawTransaction";
            let seen = buf[..n]
                .windows(method.len())
                .filter(|w| w == method)
                .count();
            sends.fetch_add(seen as u64, Ordering::Relaxed);
            if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 65536];
        loop {
            let n = sr.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            let ms = delay.load(Ordering::Relaxed);
            if ms > 0 {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            if cw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = cut.changed() => {}
    }
}
