//! The API's accept loop. `axum::serve` has no request-head timeout (hyper's needs a timer it
//! does not give it) and no connection limits, so a local process sending half a request, or a
//! header line every few seconds, could hold connections forever and take every file descriptor
//! the daemon has. Here each connection must send a whole request head within
//! `api.request_head_timeout_ms` of opening and of each answer (keep-alive included), and open
//! connections are capped per client address and in all; beyond a cap a connection is closed at
//! once, without an answer.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use dashmap::DashMap;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::watch;
use tower::Service as _;

/// What the server allows each connection.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    pub head_timeout: Duration,
    pub per_client: usize,
    pub total: usize,
}

/// Open connections per client address and in all; a slot is given back when its connection
/// ends.
struct Connections {
    limits: ServeLimits,
    open: DashMap<IpAddr, usize>,
    total: AtomicUsize,
}

struct Slot {
    connections: Arc<Connections>,
    ip: IpAddr,
}

impl Connections {
    fn try_open(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        if self.total.fetch_add(1, Ordering::AcqRel) >= self.limits.total {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let mut n = self.open.entry(ip).or_insert(0);
        if *n >= self.limits.per_client {
            drop(n);
            self.total.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        *n += 1;
        Some(Slot {
            connections: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let dashmap::mapref::entry::Entry::Occupied(mut e) = self.connections.open.entry(self.ip)
        {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
        self.connections.total.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serve `app` on `listener` until `shutdown` turns true; then open connections finish their
/// request (graceful) and the loop returns once they are gone.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ServeLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let connections = Arc::new(Connections {
        limits,
        open: DashMap::new(),
        total: AtomicUsize::new(0),
    });
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        // From the first byte to the whole head, and every idle keep-alive gap.
        .header_read_timeout(limits.head_timeout)
        .keep_alive(true)
        // A request head larger than this is refused (431) instead of buffered.
        .max_buf_size(64 * 1024);
    // Every connection task holds a receiver: when all are gone, the server is done.
    let (done_tx, done_rx) = watch::channel(());
    loop {
        let (stream, remote): (_, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
                    if !matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset) {
                        // Out of descriptors (EMFILE) and the like: back off, do not spin.
                        tracing::warn!(error = %e, "api accept failed");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => break,
        };
        let Some(slot) = connections.try_open(remote.ip()) else {
            tracing::debug!(%remote, "api: too many open connections; closed");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            // What the rate limiter and handlers read as the client's address.
            req.extensions_mut().insert(ConnectInfo(remote));
            let mut app = app.clone();
            app.call(req)
        });
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let mut stop = shutdown.clone();
        let done = done_rx.clone();
        tokio::spawn(async move {
            let _held = (slot, done);
            tokio::pin!(conn);
            tokio::select! {
                ended = conn.as_mut() => {
                    if let Err(e) = ended {
                        tracing::debug!(error = %e, %remote, "api connection ended");
                    }
                    return;
                }
                _ = stopped(&mut stop) => conn.as_mut().graceful_shutdown(),
            }
            let _ = conn.await;
        });
    }
    drop(done_rx);
    drop(listener);
    done_tx.closed().await;
}

/// Until `shutdown` turns true (holding no borrow of it across an await).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}
