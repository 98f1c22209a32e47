//! The live market feed: one Binance combined-stream connection for every subscribed symbol,
//! kept alive through pings, silence, drops, garbage and the 24-hour disconnect.
//!
//! Reconnects back off exponentially with jitter and rotate through the configured URLs. Every
//! trade becomes a [`MarketTick`] for the engine; book tickers only update bid/ask for status.
//! A trade that arrives later than `stale_after` behind its exchange time is not traded on.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use super::binance::{combined_stream_url, parse_frame, FeedMessage};
use crate::clock::wall_clock_ms;
use crate::config::MarketConfig;
use crate::model::MarketTick;
use crate::model::PriceKey;

/// Live view of one symbol, shared with the API and status.
#[derive(Debug, Default)]
pub struct SymbolFeed {
    pub engine_symbol: usize,
    pub last_tick_ms: AtomicI64,
    pub last_exchange_ms: AtomicI64,
    /// When a trade last reached the engine (not dropped for lag).
    pub last_traded_ms: AtomicI64,
    pub ticks: AtomicU64,
    pub stale_dropped: AtomicU64,
    pub bid_ask: Mutex<Option<(PriceKey, PriceKey)>>,
    /// The last trade's price: what the console shows and pushes (the engine has its own copy
    /// on its thread; this one is for readers elsewhere).
    pub last_price: Mutex<Option<PriceKey>>,
}

/// Counters and state of the feed, for health, status and metrics.
#[derive(Debug, Default)]
pub struct FeedState {
    pub connected: AtomicBool,
    pub connections: AtomicU64,
    pub reconnects: AtomicU64,
    pub frames: AtomicU64,
    pub malformed_frames: AtomicU64,
    pub current_url: Mutex<String>,
    pub last_error: Mutex<String>,
    /// Binance stream name (`btcusdt`) → its live view.
    pub symbols: Mutex<BTreeMap<String, Arc<SymbolFeed>>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SymbolStatus {
    pub stream: String,
    pub ticks: u64,
    pub last_tick_age_ms: Option<i64>,
    pub stale: bool,
    pub bid: Option<String>,
    pub ask: Option<String>,
    /// The last trade's price.
    pub last: Option<String>,
    /// Trades dropped because they arrived more than `stale_after` behind their exchange time.
    pub stale_dropped: u64,
    /// Receive time minus exchange time of the last trade: link delay plus the host clock's
    /// offset from the exchange's.
    pub clock_offset_ms: Option<i64>,
    /// Trades arrive, but too late to trade on: the last one traded on is older than
    /// `stale_after` (or none was) while the last one received is not.
    pub lagging: bool,
}

impl FeedState {
    /// The URL the feed is connected (or connecting) to.
    pub fn url(&self) -> String {
        self.current_url
            .lock()
            .map(|u| u.clone())
            .unwrap_or_default()
    }

    /// Each symbol's last traded price and when it was received (ms), by stream name.
    pub fn last_prices(&self) -> Vec<(String, rust_decimal::Decimal, i64)> {
        let Ok(map) = self.symbols.lock() else {
            return Vec::new();
        };
        map.iter()
            .filter_map(|(stream, s)| {
                let price = s.last_price.lock().ok().and_then(|g| *g)?.to_decimal()?;
                Some((
                    stream.clone(),
                    price,
                    s.last_traded_ms.load(Ordering::Relaxed),
                ))
            })
            .collect()
    }

    /// Per-symbol age of the last trade; stale when older than `stale_after_ms` (or never seen).
    pub fn symbol_status(&self, now_ms: i64, stale_after_ms: i64) -> Vec<SymbolStatus> {
        let Ok(map) = self.symbols.lock() else {
            return Vec::new();
        };
        map.iter()
            .map(|(stream, s)| {
                let last = s.last_tick_ms.load(Ordering::Relaxed);
                let age = (last > 0).then(|| now_ms - last);
                let traded = s.last_traded_ms.load(Ordering::Relaxed);
                let traded_age = (traded > 0).then(|| now_ms - traded);
                let exchange = s.last_exchange_ms.load(Ordering::Relaxed);
                let fresh = |a: Option<i64>| a.is_some_and(|a| a <= stale_after_ms);
                let ba = s.bid_ask.lock().ok().and_then(|g| *g);
                SymbolStatus {
                    stream: stream.clone(),
                    ticks: s.ticks.load(Ordering::Relaxed),
                    last_tick_age_ms: age,
                    // Stale: nothing traded on recently, whatever arrived.
                    stale: !fresh(traded_age),
                    bid: ba.and_then(|(b, _)| b.to_decimal()).map(|d| d.to_string()),
                    ask: ba.and_then(|(_, a)| a.to_decimal()).map(|d| d.to_string()),
                    last: s
                        .last_price
                        .lock()
                        .ok()
                        .and_then(|g| *g)
                        .and_then(|p| p.to_decimal())
                        .map(|d| d.to_string()),
                    stale_dropped: s.stale_dropped.load(Ordering::Relaxed),
                    clock_offset_ms: (last > 0 && exchange > 0).then(|| last - exchange),
                    lagging: fresh(age) && !fresh(traded_age),
                }
            })
            .collect()
    }
}

/// Run the feed until `shutdown`. `subscriptions` carries the stream names to subscribe to;
/// a change reconnects with the new set.
pub async fn run_feed(
    config: MarketConfig,
    state: Arc<FeedState>,
    ticks: mpsc::Sender<MarketTick>,
    mut subscriptions: watch::Receiver<Vec<String>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut url_ix = 0usize;
    let mut backoff = Duration::from_millis(config.reconnect_min_ms);
    let mut seed = (wall_clock_ms() as u64) ^ u64::from(std::process::id());
    loop {
        if *shutdown.borrow() {
            return;
        }
        let streams = subscriptions.borrow_and_update().clone();
        if streams.is_empty() {
            state.connected.store(false, Ordering::Relaxed);
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = subscriptions.changed() => continue,
            }
        }
        let base = &config.ws_urls[url_ix % config.ws_urls.len()];
        let url = combined_stream_url(base, &streams);
        let outcome = connection(
            &config,
            &url,
            &state,
            &ticks,
            &mut subscriptions,
            &mut shutdown,
        )
        .await;
        state.connected.store(false, Ordering::Relaxed);
        match outcome {
            Ended::Shutdown => return,
            Ended::Resubscribe => {
                backoff = Duration::from_millis(config.reconnect_min_ms);
                continue;
            }
            Ended::Healthy(reason) => {
                // It had been working: reconnect at once, same URL.
                tracing::info!(%reason, "feed reconnecting");
                backoff = Duration::from_millis(config.reconnect_min_ms);
            }
            Ended::Failed(reason) => {
                tracing::warn!(%reason, url = %base, "feed connection failed");
                if let Ok(mut e) = state.last_error.lock() {
                    *e = reason;
                }
                url_ix += 1;
                // Exponential backoff with full jitter.
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let cap = backoff.as_millis() as u64;
                let wait =
                    Duration::from_millis(config.reconnect_min_ms.min(cap) + seed % cap.max(1));
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                backoff = (backoff * 2).min(Duration::from_millis(config.reconnect_max_ms));
            }
        }
        state.reconnects.fetch_add(1, Ordering::Relaxed);
    }
}

/// Why a connection could not be made, in the words an operator acts on: the name did not
/// resolve, the port refused, TLS failed, or the server answered the handshake with a status.
fn connect_failure(e: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error as WsError;
    match e {
        WsError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("connection refused ({io})")
        }
        WsError::Io(io)
            if io.to_string().contains("lookup")
                || io.to_string().contains("resolve")
                || io.to_string().contains("Name or service not known") =>
        {
            format!("DNS lookup failed ({io})")
        }
        WsError::Io(io) => format!("network: {io}"),
        WsError::Tls(t) => format!("TLS: {t}"),
        WsError::Http(r) => format!("HTTP {} at the WebSocket handshake", r.status()),
        WsError::Url(u) => format!("bad URL: {u}"),
        other => other.to_string(),
    }
}

enum Ended {
    Shutdown,
    Resubscribe,
    /// The connection worked and was closed or replaced (drop, silence, 24-hour limit).
    Healthy(String),
    /// It never worked or died with an error.
    Failed(String),
}

async fn connection(
    config: &MarketConfig,
    url: &str,
    state: &Arc<FeedState>,
    ticks: &mpsc::Sender<MarketTick>,
    subscriptions: &mut watch::Receiver<Vec<String>>,
    shutdown: &mut watch::Receiver<bool>,
) -> Ended {
    let connect = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async_with_config(url, Some(socket_config()), true),
    );
    let mut ws = match connect.await {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(e)) => return Ended::Failed(format!("connect: {}", connect_failure(&e))),
        Err(_) => return Ended::Failed("connect: timed out".into()),
    };
    state.connected.store(true, Ordering::Relaxed);
    state.connections.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut u) = state.current_url.lock() {
        *u = url.to_string();
    }
    // The symbols of this connection's subscription, looked up per frame without a lock: a new
    // symbol changes the subscription, which replaces the connection (and this list).
    let symbols: Vec<(String, Arc<SymbolFeed>)> = state
        .symbols
        .lock()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let symbol = |stream: &str| {
        symbols
            .iter()
            .find(|(name, _)| name == stream)
            .map(|(_, feed)| feed)
    };
    let opened = Instant::now();
    let silent = Duration::from_secs(config.silent_after_secs);
    let max_age = Duration::from_secs(config.max_connection_secs);
    let stale_ms = (config.stale_after_secs * 1000) as i64;
    let mut got_data = false;
    let mut last_data = tokio::time::Instant::now();
    loop {
        let remaining = max_age.saturating_sub(opened.elapsed());
        let frame = tokio::select! {
            biased;
            _ = shutdown.changed() => {
                let _ = ws.close(None).await;
                return Ended::Shutdown;
            }
            _ = subscriptions.changed() => {
                let _ = ws.close(None).await;
                return Ended::Resubscribe;
            }
            _ = tokio::time::sleep(remaining) => {
                let _ = ws.close(None).await;
                return Ended::Healthy("24-hour limit: replacing the connection".into());
            }
            // Silence means no data: pings and pongs keep a connection open, not alive.
            f = tokio::time::timeout_at(last_data + silent, ws.next()) => f,
        };
        let msg = match frame {
            Err(_) => {
                return end(
                    got_data,
                    format!("no market data for {} s", silent.as_secs()),
                )
            }
            Ok(None) => return end(got_data, "closed by the server".into()),
            Ok(Some(Err(e))) => return end(got_data, format!("read: {e}")),
            Ok(Some(Ok(m))) => m,
        };
        state.frames.fetch_add(1, Ordering::Relaxed);
        let received = Instant::now();
        match msg {
            Message::Text(text) => match parse_frame(text.as_str()) {
                Ok(FeedMessage::Trade {
                    stream_symbol,
                    price,
                    trade_time_ms,
                    ..
                }) => {
                    got_data = true;
                    last_data = tokio::time::Instant::now();
                    let Some(sym) = symbol(stream_symbol) else {
                        continue;
                    };
                    let now_us = crate::clock::wall_clock_us();
                    let now = crate::clock::ms_of_us(now_us);
                    sym.ticks.fetch_add(1, Ordering::Relaxed);
                    sym.last_tick_ms.store(now, Ordering::Relaxed);
                    sym.last_exchange_ms.store(trade_time_ms, Ordering::Relaxed);
                    if now - trade_time_ms > stale_ms {
                        // Too old to act on: the price it reports is no longer the market.
                        sym.stale_dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let tick = MarketTick {
                        symbol: sym.engine_symbol,
                        exchange_ts_us: trade_time_ms * 1000,
                        received_ts_us: now_us,
                        price,
                        received_at: Some(received),
                    };
                    sym.last_traded_ms.store(now, Ordering::Relaxed);
                    if let Ok(mut g) = sym.last_price.lock() {
                        *g = Some(price);
                    }
                    if ticks.send(tick).await.is_err() {
                        return Ended::Shutdown;
                    }
                    // The engine shares this thread: let it decide on this tick before the next
                    // frame of a burst is parsed.
                    tokio::task::yield_now().await;
                }
                Ok(FeedMessage::BookTicker {
                    stream_symbol,
                    bid,
                    ask,
                }) => {
                    got_data = true;
                    last_data = tokio::time::Instant::now();
                    if let Some(sym) = symbol(stream_symbol) {
                        if let Ok(mut g) = sym.bid_ask.lock() {
                            *g = Some((bid, ask));
                        }
                    }
                }
                Ok(FeedMessage::Ignored) => {}
                Err(e) => {
                    state.malformed_frames.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(error = %e, "skipping malformed frame");
                }
            },
            Message::Ping(_) => {
                // tungstenite queued the pong; flush it now rather than with the next write.
                if let Err(e) = ws.flush().await {
                    return end(got_data, format!("pong: {e}"));
                }
            }
            Message::Close(_) => return end(got_data, "server sent close".into()),
            Message::Binary(_) => {
                state.malformed_frames.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

/// Read buffer of the feed's socket. tungstenite zero-fills the whole buffer on every read poll
/// (snapview/tungstenite-rs#547): its 128 KiB default cost two 128 KiB `memset`s per trade and
/// pushed the engine's data out of cache. A few KiB holds a burst of Binance frames (~250 B each).
const READ_BUFFER_BYTES: usize = 8 * 1024;
/// Binance's largest messages are a few KiB; anything near this is a broken or hostile server.
const MAX_MESSAGE_BYTES: usize = 1 << 20;

fn socket_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES))
}

fn end(got_data: bool, reason: String) -> Ended {
    if got_data {
        Ended::Healthy(reason)
    } else {
        Ended::Failed(reason)
    }
}
