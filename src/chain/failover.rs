//! The JSON-RPC transport under every chain call: the configured HTTP endpoints, one at a time.
//!
//! A request goes to the endpoint in use; when it fails (no connection, an HTTP error, no answer
//! within `rpc_timeout_ms`) the next endpoint takes it, round the list, for `rpc_retries` more
//! rounds with a doubling pause between rounds. The endpoint that answered stays in use; after a
//! minute on a fallback the first endpoint is tried first again.
//!
//! Sending a transaction is the exception that keeps "never twice" simple: a signed transaction
//! goes to one endpoint at a time (never raced), and it moves on to the next only when the first
//! surely did not get it (the connection was refused, or it answered "too many requests"). After
//! anything ambiguous (a timeout, a dropped connection) the error goes back to the swapper, which
//! treats the transaction as sent and settles it by its hash — re-sending the same bytes, which
//! cannot be mined twice.
//!
//! An endpoint is used only once it has said it is on the configured chain: one that reports
//! another chain id is never used (a transaction signed for one chain hangs on another).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use alloy::rpc::json_rpc::{RequestPacket, ResponsePacket};
use alloy::transports::{TransportError, TransportErrorKind, TransportFut};

use crate::config::host_of;

/// After this long on a fallback endpoint, the first one is tried first again.
const FAILBACK_AFTER: Duration = Duration::from_secs(60);
/// The pause between two rounds over the endpoints starts here and doubles, up to 2 s.
const FIRST_PAUSE: Duration = Duration::from_millis(200);

/// Edges (seconds) of the per-endpoint request-duration histogram.
pub const RPC_LATENCY_EDGES: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// How long an endpoint took to answer (or fail), as a Prometheus histogram: a count per edge
/// (not cumulative), the overflow, and the sum in microseconds.
#[derive(Default)]
struct Latency {
    buckets: [AtomicU64; 10],
    overflow: AtomicU64,
    sum_us: AtomicU64,
}

impl Latency {
    fn record(&self, took: Duration) {
        let secs = took.as_secs_f64();
        match RPC_LATENCY_EDGES.iter().position(|e| secs <= *e) {
            Some(i) => self.buckets[i].fetch_add(1, Ordering::Relaxed),
            None => self.overflow.fetch_add(1, Ordering::Relaxed),
        };
        self.sum_us.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

/// One endpoint's request durations: cumulative counts per [`RPC_LATENCY_EDGES`] edge, the
/// total count and the sum in seconds.
#[derive(Debug, Clone)]
pub struct EndpointLatency {
    pub host: String,
    pub cumulative: Vec<u64>,
    pub count: u64,
    pub sum_secs: f64,
}

struct Endpoint {
    url: reqwest::Url,
    host: String,
    latency: Latency,
    /// It answered `eth_chainId` with the configured chain.
    verified: AtomicBool,
    /// It answered with another chain: never used.
    wrong_chain: AtomicBool,
}

struct Inner {
    endpoints: Vec<Endpoint>,
    client: reqwest::Client,
    chain_id: u64,
    timeout: Duration,
    retries: u32,
    /// Index of the endpoint in use.
    current: AtomicUsize,
    /// When the current endpoint became a fallback.
    fallback_since: Mutex<Option<Instant>>,
    failovers: AtomicU64,
}

/// The failover transport (cheap to clone: one shared state).
#[derive(Clone)]
pub struct FailoverTransport {
    inner: Arc<Inner>,
}

/// A change of the endpoint in use.
#[derive(Debug, PartialEq)]
struct EndpointMove {
    from: String,
    to: String,
    failback: bool,
}

/// Why one attempt at one endpoint failed, and whether the endpoint surely did not get it.
struct Attempt {
    error: String,
    not_delivered: bool,
}

impl FailoverTransport {
    pub fn new(urls: &[reqwest::Url], chain_id: u64, timeout: Duration, retries: u32) -> Self {
        FailoverTransport {
            inner: Arc::new(Inner {
                endpoints: urls
                    .iter()
                    .map(|u| Endpoint {
                        host: host_of(u.as_str()),
                        url: u.clone(),
                        latency: Latency::default(),
                        verified: AtomicBool::new(false),
                        wrong_chain: AtomicBool::new(false),
                    })
                    .collect(),
                client: reqwest::Client::new(),
                chain_id,
                timeout,
                retries,
                current: AtomicUsize::new(0),
                fallback_since: Mutex::new(None),
                failovers: AtomicU64::new(0),
            }),
        }
    }

    /// Ask every endpoint for its chain id at once: `(host, Ok(chain id) | Err(why))` in config
    /// order. Endpoints on the configured chain are marked verified; others are never used.
    pub async fn probe(&self) -> Vec<(String, Result<u64, String>)> {
        let inner = &self.inner;
        let answers = futures_util::future::join_all(
            (0..inner.endpoints.len()).map(|ix| inner.chain_id_of(ix)),
        )
        .await;
        answers
            .into_iter()
            .enumerate()
            .map(|(ix, a)| (inner.endpoints[ix].host.clone(), a))
            .collect()
    }

    /// How many times a request moved to another endpoint.
    pub fn failovers(&self) -> u64 {
        self.inner.failovers.load(Ordering::Relaxed)
    }

    /// Each endpoint's request durations so far (every attempt, answered or not).
    pub fn latency(&self) -> Vec<EndpointLatency> {
        self.inner
            .endpoints
            .iter()
            .map(|e| {
                let mut running = 0;
                let cumulative = e
                    .latency
                    .buckets
                    .iter()
                    .map(|b| {
                        running += b.load(Ordering::Relaxed);
                        running
                    })
                    .collect();
                EndpointLatency {
                    host: e.host.clone(),
                    cumulative,
                    count: running + e.latency.overflow.load(Ordering::Relaxed),
                    sum_secs: e.latency.sum_us.load(Ordering::Relaxed) as f64 / 1e6,
                }
            })
            .collect()
    }

    /// The endpoint in use, by host.
    pub fn current_host(&self) -> String {
        let ix = self.inner.current.load(Ordering::Relaxed);
        self.inner
            .endpoints
            .get(ix)
            .map(|e| e.host.clone())
            .unwrap_or_default()
    }
}

fn is_send(req: &RequestPacket) -> bool {
    req.method_names()
        .any(|m| m == "eth_sendRawTransaction" || m == "eth_sendTransaction")
}

impl Inner {
    /// The chain id an endpoint reports; marks it verified or wrong.
    async fn chain_id_of(&self, ix: usize) -> Result<u64, String> {
        let endpoint = &self.endpoints[ix];
        let body =
            serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "eth_chainId", "params": []});
        let ask = async {
            let answer = self
                .client
                .post(endpoint.url.clone())
                .json(&body)
                .send()
                .await
                .map_err(|e| describe(&e))?;
            let doc: serde_json::Value = answer.json().await.map_err(|e| describe(&e))?;
            let hex = doc["result"]
                .as_str()
                .ok_or_else(|| format!("eth_chainId answered {doc}"))?
                .to_string();
            u64::from_str_radix(hex.trim_start_matches("0x"), 16)
                .map_err(|_| format!("eth_chainId answered {hex:?}"))
        };
        let id = tokio::time::timeout(self.timeout, ask)
            .await
            .map_err(|_| format!("no answer in {} ms", self.timeout.as_millis()))??;
        if id == self.chain_id {
            endpoint.verified.store(true, Ordering::Relaxed);
        } else {
            endpoint.wrong_chain.store(true, Ordering::Relaxed);
        }
        Ok(id)
    }

    /// One attempt at one endpoint.
    async fn attempt(&self, ix: usize, req: &RequestPacket) -> Result<ResponsePacket, Attempt> {
        let endpoint = &self.endpoints[ix];
        if endpoint.wrong_chain.load(Ordering::Relaxed) {
            return Err(Attempt {
                error: format!("{} is on another chain", endpoint.host),
                not_delivered: true,
            });
        }
        if !endpoint.verified.load(Ordering::Relaxed) {
            match self.chain_id_of(ix).await {
                Ok(id) if id == self.chain_id => {}
                Ok(id) => {
                    tracing::error!(host = %endpoint.host, chain_id = id, expected = self.chain_id, "RPC endpoint is on another chain; never used");
                    return Err(Attempt {
                        error: format!("{} is on chain {id}", endpoint.host),
                        not_delivered: true,
                    });
                }
                Err(error) => {
                    return Err(Attempt {
                        error: format!("{}: {error}", endpoint.host),
                        not_delivered: true,
                    })
                }
            }
        }
        let started = Instant::now();
        let sent = tokio::time::timeout(
            self.timeout,
            self.client.post(endpoint.url.clone()).json(req).send(),
        )
        .await;
        endpoint.latency.record(started.elapsed());
        let response = match sent {
            Err(_) => {
                return Err(Attempt {
                    error: format!(
                        "{}: no answer in {} ms",
                        endpoint.host,
                        self.timeout.as_millis()
                    ),
                    not_delivered: false,
                })
            }
            Ok(Err(e)) => {
                return Err(Attempt {
                    error: format!("{}: {}", endpoint.host, describe(&e)),
                    not_delivered: e.is_connect(),
                })
            }
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        if !status.is_success() {
            return Err(Attempt {
                error: format!("{}: HTTP {status}", endpoint.host),
                not_delivered: status.as_u16() == 429,
            });
        }
        let body = match tokio::time::timeout(self.timeout, response.bytes()).await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                return Err(Attempt {
                    error: format!("{}: {}", endpoint.host, describe(&e)),
                    not_delivered: false,
                })
            }
            Err(_) => {
                return Err(Attempt {
                    error: format!("{}: answer cut short", endpoint.host),
                    not_delivered: false,
                })
            }
        };
        serde_json::from_slice(&body).map_err(|e| Attempt {
            error: format!("{}: not a JSON-RPC answer ({e})", endpoint.host),
            not_delivered: false,
        })
    }

    /// The endpoint to start with: the one in use, or the first again after a while on a fallback.
    fn first_choice(&self) -> usize {
        let current = self.current.load(Ordering::Relaxed);
        if current == 0 {
            return 0;
        }
        let mut since = self
            .fallback_since
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if since.is_some_and(|t| t.elapsed() >= FAILBACK_AFTER) {
            *since = None;
            return 0;
        }
        current
    }

    /// Note which endpoint answered. Moving to another endpoint because the one tried first
    /// failed is a failover; the first choice answering after a while elsewhere is a failback
    /// (planned, not counted). Says what moved, for the log and the tests.
    fn answered_by(&self, ix: usize, first: usize) -> Option<EndpointMove> {
        let previous = self.current.swap(ix, Ordering::Relaxed);
        let mut since = self
            .fallback_since
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if previous == ix {
            // The first endpoint was tried again and the fallback answered: wait again.
            if ix != 0 && since.is_none() {
                *since = Some(Instant::now());
            }
            return None;
        }
        *since = (ix != 0).then(Instant::now);
        let from = self.endpoints[previous].host.clone();
        let to = self.endpoints[ix].host.clone();
        let failback = ix == first;
        if failback {
            tracing::info!(%from, %to, "RPC endpoint failback: the first endpoint answers again");
        } else {
            tracing::warn!(%from, %to, "RPC endpoint failover");
            self.failovers.fetch_add(1, Ordering::Relaxed);
        }
        Some(EndpointMove { from, to, failback })
    }

    async fn request(
        self: Arc<Self>,
        req: RequestPacket,
    ) -> Result<ResponsePacket, TransportError> {
        let n = self.endpoints.len();
        if n == 0 {
            return Err(TransportErrorKind::custom_str("no RPC endpoint configured"));
        }
        let sending = is_send(&req);
        let first = self.first_choice();
        let mut errors = Vec::new();
        let mut pause = FIRST_PAUSE;
        for round in 0..=self.retries {
            if round > 0 {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            for k in 0..n {
                let ix = (first + k) % n;
                match self.attempt(ix, &req).await {
                    Ok(answer) => {
                        self.answered_by(ix, first);
                        return Ok(answer);
                    }
                    Err(a) => {
                        if sending && !a.not_delivered {
                            // It may be out there: the caller settles it by its hash.
                            return Err(TransportErrorKind::custom_str(&a.error));
                        }
                        errors.push(a.error);
                    }
                }
            }
        }
        errors.dedup();
        let message = format!("every RPC endpoint failed: {}", errors.join("; "));
        if sending {
            // Only attempts surely not received get here: the transaction was not sent.
            return Err(TransportErrorKind::custom(NotDelivered(message)));
        }
        Err(TransportErrorKind::custom_str(&message))
    }
}

/// A transaction no endpoint received (every attempt was refused before it was sent).
#[derive(Debug)]
pub struct NotDelivered(pub String);

impl std::fmt::Display for NotDelivered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotDelivered {}

/// The request surely did not reach a node: the connection was refused (or failed before the
/// request went out: DNS, TLS), or the endpoint answered 429. Anything else may have been
/// received, and a transaction in that state is settled by its hash, never signed anew.
pub fn surely_not_delivered(e: &TransportError) -> bool {
    match e {
        alloy::transports::RpcError::Transport(TransportErrorKind::Custom(b)) => {
            b.downcast_ref::<NotDelivered>().is_some() || connection_refused(b.as_ref())
        }
        alloy::transports::RpcError::Transport(TransportErrorKind::HttpError(h)) => h.status == 429,
        _ => false,
    }
}

/// Somewhere in `e`'s chain of causes, the connection was refused (nothing was sent). Read from
/// the causes rather than from one HTTP client's error type, so it holds whatever client (and
/// version) made the request.
fn connection_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(err) = cause {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        if err
            .downcast_ref::<reqwest::Error>()
            .is_some_and(|r| r.is_connect())
        {
            return true;
        }
        cause = err.source();
    }
    false
}

/// A reqwest error without its URL (which may carry an API key).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_connect() {
        "connection failed"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_decode() {
        "answer not readable"
    } else {
        "request failed"
    };
    match std::error::Error::source(e) {
        Some(source) => format!("{kind}: {source}"),
        None => kind.to_string(),
    }
}

impl tower::Service<RequestPacket> for FailoverTransport {
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: RequestPacket) -> Self::Future {
        Box::pin(self.inner.clone().request(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_endpoints() -> FailoverTransport {
        let urls = ["http://first.example:8545", "http://second.example:8545"]
            .map(|u| reqwest::Url::parse(u).unwrap());
        FailoverTransport::new(&urls, 56, Duration::from_secs(1), 0)
    }

    #[test]
    fn returning_to_the_first_endpoint_is_a_failback_between_two_endpoints() {
        let t = two_endpoints();
        let inner = &t.inner;
        let moved = inner.answered_by(1, 0).unwrap();
        assert!(!moved.failback);
        assert_ne!(moved.from, moved.to);
        assert_eq!(t.failovers(), 1);
        // A while later the first endpoint is tried first again and answers.
        *inner.fallback_since.lock().unwrap() = Instant::now().checked_sub(FAILBACK_AFTER);
        let first = inner.first_choice();
        assert_eq!(first, 0);
        let back = inner.answered_by(0, first).unwrap();
        assert!(back.failback, "{back:?}");
        assert_eq!(back.from, "second.example:8545");
        assert_eq!(back.to, "first.example:8545");
        assert_eq!(t.failovers(), 1, "a failback is not a failover");
        assert_eq!(t.current_host(), "first.example:8545");
    }

    #[test]
    fn a_failed_failback_waits_again_before_the_next_try() {
        let t = two_endpoints();
        let inner = &t.inner;
        inner.answered_by(1, 0);
        *inner.fallback_since.lock().unwrap() = Instant::now().checked_sub(FAILBACK_AFTER);
        assert_eq!(inner.first_choice(), 0);
        // The first endpoint failed again; the fallback answered.
        assert_eq!(inner.answered_by(1, 0), None);
        assert_eq!(t.failovers(), 1);
        assert_eq!(inner.first_choice(), 1, "not before another while");
        assert!(
            inner.fallback_since.lock().unwrap().is_some(),
            "the first is tried again later"
        );
    }
}
