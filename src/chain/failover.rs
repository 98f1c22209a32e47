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

use super::client::host_of;

/// After this long on a fallback endpoint, the first one is tried first again.
const FAILBACK_AFTER: Duration = Duration::from_secs(60);
/// The pause between two rounds over the endpoints starts here and doubles, up to 2 s.
const FIRST_PAUSE: Duration = Duration::from_millis(200);

struct Endpoint {
    url: reqwest::Url,
    host: String,
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
        let sent = tokio::time::timeout(
            self.timeout,
            self.client.post(endpoint.url.clone()).json(req).send(),
        )
        .await;
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

    fn answered_by(&self, ix: usize, first: usize) {
        if ix == self.current.load(Ordering::Relaxed) {
            return;
        }
        let previous = &self.endpoints[first].host;
        tracing::warn!(from = %previous, to = %self.endpoints[ix].host, "RPC endpoint failover");
        self.failovers.fetch_add(1, Ordering::Relaxed);
        self.current.store(ix, Ordering::Relaxed);
        let mut since = self
            .fallback_since
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *since = (ix != 0).then(Instant::now);
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
        Err(TransportErrorKind::custom_str(&format!(
            "every RPC endpoint failed: {}",
            errors.join("; ")
        )))
    }
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
