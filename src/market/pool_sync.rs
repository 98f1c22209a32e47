//! Pool prices pushed by the node: the pair's `Sync` events over a WebSocket subscription
//! (`eth_subscribe` to its logs), one tick per block that moved the reserves, instead of a read
//! every `pool_poll_ms`.
//!
//! A subscription only delivers what happens while it is open. After every (re)connect the gap is
//! refilled first: the `Sync` logs since the last block seen are read with `eth_getLogs` over the
//! HTTP endpoints (the first time, the reserves themselves), so the price after a drop is the
//! chain's, not the last one heard. A dropped or silent connection is replaced with a doubling
//! pause (up to 5 s), going round the configured `chain.ws_urls`. The polling feed keeps running
//! beside it as the fallback, at its own pace.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::U256;
use futures_util::{SinkExt, StreamExt};
use rust_decimal::Decimal;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use super::pool::PoolFeedState;
use crate::chain::{ChainClient, Pool};
use crate::model::MarketTick;

/// A connection that brings nothing for this long is replaced (blocks come every ~0.45 s on BSC;
/// a quiet pair still sends the subscription nothing, so this only bounds a dead socket).
const SILENT_FOR: Duration = Duration::from_secs(120);

/// What the subscription feed has seen, beside [`PoolFeedState`].
#[derive(Debug, Default)]
pub struct SyncFeedState {
    pub connections: AtomicU64,
    pub drops: AtomicU64,
    /// `Sync` events received on the subscription.
    pub events: AtomicU64,
    /// `Sync` events read back with `eth_getLogs` after a (re)connect.
    pub refilled: AtomicU64,
    /// Last block whose `Sync` was applied.
    pub last_block: AtomicU64,
}

struct Feed<'a> {
    client: &'a ChainClient,
    pool: &'a Pool,
    symbol: usize,
    ticks: &'a mpsc::Sender<MarketTick>,
    state: &'a PoolFeedState,
    sync: &'a SyncFeedState,
    last: Option<(Decimal, Decimal)>,
}

impl Feed<'_> {
    /// Send the price of the pair's raw reserves at `block` if they changed. `false`: the engine
    /// is gone.
    async fn reserves(&mut self, block: u64, r0: U256, r1: U256) -> bool {
        match self.pool.reserves_of(r0, r1) {
            Ok(reserves) => self.apply(block, reserves).await,
            Err(_) => true,
        }
    }

    /// Send the price of these (base, quote) reserves if they changed.
    async fn apply(&mut self, block: u64, reserves: (Decimal, Decimal)) -> bool {
        if self.last == Some(reserves) {
            return true;
        }
        self.last = Some(reserves);
        self.state
            .publish(self.symbol, Some(block), reserves, self.ticks)
            .await
    }

    /// Catch up with the chain: the `Sync` logs since the last block seen (or, the first time, the
    /// reserves). `false`: the engine is gone.
    async fn refill(&mut self) -> Result<bool, String> {
        let seen = self.sync.last_block.load(Ordering::Relaxed);
        if seen == 0 {
            let block = self
                .client
                .block_number()
                .await
                .map_err(|e| e.to_string())?;
            let reserves = self
                .client
                .reserves_at(self.pool, block)
                .await
                .map_err(|e| e.to_string())?;
            self.sync.last_block.store(block, Ordering::Relaxed);
            return Ok(self.apply(block, reserves).await);
        }
        let logs = self
            .client
            .sync_logs(self.pool, seen + 1)
            .await
            .map_err(|e| e.to_string())?;
        if let Some((block, r0, r1)) = logs.last().copied() {
            self.sync
                .refilled
                .fetch_add(logs.len() as u64, Ordering::Relaxed);
            self.sync.last_block.fetch_max(block, Ordering::Relaxed);
            return Ok(self.reserves(block, r0, r1).await);
        }
        Ok(true)
    }
}

/// The reserves and block of a state log (`Sync`, or a V3 `Swap`'s virtual reserves) in a
/// subscription notification.
fn sync_of(pool: &Pool, notification: &serde_json::Value) -> Option<(u64, U256, U256)> {
    let log = &notification["params"]["result"];
    let data = alloy::hex::decode(log["data"].as_str()?.trim_start_matches("0x")).ok()?;
    let (r0, r1) = pool.raw_reserves_of_event(&data)?;
    let block =
        u64::from_str_radix(log["blockNumber"].as_str()?.trim_start_matches("0x"), 16).ok()?;
    Some((block, r0, r1))
}

/// Follow `pool`'s `Sync` events over `ws_urls` (in turn) until shutdown.
#[allow(clippy::too_many_arguments)]
pub async fn run_pool_sync_feed(
    ws_urls: Vec<String>,
    client: ChainClient,
    pool: Pool,
    symbol: usize,
    ticks: mpsc::Sender<MarketTick>,
    state: Arc<PoolFeedState>,
    sync: Arc<SyncFeedState>,
    mut shutdown: watch::Receiver<bool>,
) {
    if ws_urls.is_empty() {
        return;
    }
    state.subscribed.store(true, Ordering::Relaxed);
    let mut feed = Feed {
        client: &client,
        pool: &pool,
        symbol,
        ticks: &ticks,
        state: &state,
        sync: &sync,
        last: None,
    };
    let mut pause = Duration::from_millis(100);
    let mut turn = 0usize;
    loop {
        let url = &ws_urls[turn % ws_urls.len()];
        turn += 1;
        let host = crate::config::host_of(url);
        let outcome = tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            r = follow(url, &mut feed) => r,
        };
        match outcome {
            Ok(false) => return,
            Ok(true) => {}
            Err(e) => {
                sync.drops.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(endpoint = %host, pair = %pool.pair, error = %e, "pool subscription lost; reconnecting");
            }
        }
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// One connection: subscribe, refill the gap, then apply events until it ends. `Ok(false)`: the
/// engine is gone.
async fn follow(url: &str, feed: &mut Feed<'_>) -> Result<bool, String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    feed.sync.connections.fetch_add(1, Ordering::Relaxed);
    let subscribe = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "eth_subscribe",
        "params": ["logs", {
            "address": feed.pool.pair.to_string(),
            "topics": [alloy::hex::encode_prefixed(feed.pool.state_topic())],
        }],
    });
    ws.send(Message::Text(subscribe.to_string().into()))
        .await
        .map_err(|e| format!("subscribe: {e}"))?;
    // Events may arrive before the refill is done: they are held and applied after it, in order.
    let mut subscribed = false;
    let mut held: Vec<(u64, U256, U256)> = Vec::new();
    loop {
        let msg = tokio::time::timeout(SILENT_FOR, ws.next())
            .await
            .map_err(|_| format!("silent for {} s", SILENT_FOR.as_secs()))?;
        let text = match msg {
            None => return Err("closed".into()),
            Some(Err(e)) => return Err(e.to_string()),
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Ping(p))) => {
                let _ = ws.send(Message::Pong(p)).await;
                continue;
            }
            Some(Ok(Message::Close(_))) => return Err("closed by the node".into()),
            Some(Ok(_)) => continue,
        };
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        if !subscribed && doc["id"] == 1 {
            if doc.get("error").is_some() {
                return Err(format!("eth_subscribe refused: {}", doc["error"]));
            }
            subscribed = true;
            if !feed.refill().await? {
                return Ok(false);
            }
            for (block, r0, r1) in held.drain(..) {
                if block > feed.sync.last_block.load(Ordering::Relaxed) {
                    feed.sync.last_block.store(block, Ordering::Relaxed);
                    if !feed.reserves(block, r0, r1).await {
                        return Ok(false);
                    }
                }
            }
            continue;
        }
        if doc["method"] != "eth_subscription" {
            continue;
        }
        let Some(event) = sync_of(feed.pool, &doc) else {
            continue;
        };
        feed.sync.events.fetch_add(1, Ordering::Relaxed);
        if !subscribed {
            held.push(event);
            continue;
        }
        let (block, r0, r1) = event;
        feed.sync.last_block.fetch_max(block, Ordering::Relaxed);
        if !feed.reserves(block, r0, r1).await {
            return Ok(false);
        }
    }
}
