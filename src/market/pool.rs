//! Pool prices: a Uniswap-V2-style pair's reserves read as a price (quote per base, by
//! `amm::reserves_price`), the price a live grid triggers on — it is what its swaps will get, where Binance's is only a reference.
//!
//! This is the polling source: the reserves are read every `every`, and a tick goes to the engine
//! whenever they changed. An RPC failure is counted and retried with a doubling pause (up to
//! [`MAX_BACKOFF`]); the feed never stops on its own.

use crate::amm::reserves_price;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rust_decimal::Decimal;
use tokio::sync::{mpsc, watch};

use crate::chain::{ChainClient, Pool};
use crate::clock::wall_clock_us;
use crate::model::MarketTick;
use crate::model::PriceKey;

/// Longest pause between two reads after failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the feed has seen, for status and metrics.
#[derive(Debug, Default)]
pub struct PoolFeedState {
    pub polls: AtomicU64,
    pub errors: AtomicU64,
    pub ticks: AtomicU64,
    pub last_price: Mutex<Option<Decimal>>,
    pub last_error: Mutex<String>,
    /// The `Sync` subscription also feeds this market: polls then read at a known block.
    pub subscribed: std::sync::atomic::AtomicBool,
    /// Reserves last sent to the engine, with the block they are of (0: not known).
    published: Mutex<Option<(u64, (Decimal, Decimal))>>,
    /// Readings not sent: the same reserves again (a `Sync` push and a poll of one block), or
    /// reserves of a block older than those already sent.
    pub skipped: AtomicU64,
}

impl PoolFeedState {
    /// Send the price of `reserves` (base, quote) as a tick of engine symbol `symbol`; both pool
    /// feeds (polling and the `Sync` subscription) go through here, so one block's reserves reach
    /// the engine once, and never after a newer block's. `false`: the engine is gone.
    pub async fn publish(
        &self,
        symbol: usize,
        block: Option<u64>,
        reserves: (Decimal, Decimal),
        ticks: &mpsc::Sender<MarketTick>,
    ) -> bool {
        if let Ok(mut last) = self.published.lock() {
            let (last_block, last_reserves) = last.unwrap_or((0, (Decimal::ZERO, Decimal::ZERO)));
            let older = block.is_some_and(|b| b < last_block);
            if last.is_some() && (last_reserves == reserves || older) {
                self.skipped.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            *last = Some((block.unwrap_or(last_block), reserves));
        }
        let Some(price) = reserves_price(reserves.0, reserves.1) else {
            return true;
        };
        if let Ok(mut p) = self.last_price.lock() {
            *p = Some(price);
        }
        let now = wall_clock_us();
        let tick = MarketTick {
            symbol,
            exchange_ts_us: now,
            received_ts_us: now,
            // 18 decimals: the price key's precision.
            price: PriceKey::floor_of(price.round_dp(18)),
            received_at: Some(std::time::Instant::now()),
        };
        if ticks.send(tick).await.is_err() {
            return false;
        }
        self.ticks.fetch_add(1, Ordering::Relaxed);
        true
    }
}

/// Poll `pool` and send its price as ticks of engine symbol `symbol` until shutdown.
pub async fn run_pool_feed(
    client: ChainClient,
    pool: Pool,
    symbol: usize,
    every: Duration,
    ticks: mpsc::Sender<MarketTick>,
    state: Arc<PoolFeedState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last: Option<(Decimal, Decimal)> = None;
    let mut pause = every;
    loop {
        state.polls.fetch_add(1, Ordering::Relaxed);
        // Beside a subscription, a poll reads at a known block, so it never sends reserves older
        // than a `Sync` already sent.
        let read = if state.subscribed.load(Ordering::Relaxed) {
            match client.block_number().await {
                Ok(b) => client.reserves_at(&pool, b).await.map(|r| (Some(b), r)),
                Err(e) => Err(e),
            }
        } else {
            client.reserves(&pool).await.map(|r| (None, r))
        };
        match read {
            Ok((block, reserves)) => {
                pause = every;
                if last != Some(reserves) {
                    last = Some(reserves);
                    if !state.publish(symbol, block, reserves, &ticks).await {
                        return;
                    }
                }
            }
            Err(e) => {
                state.errors.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut l) = state.last_error.lock() {
                    *l = e.to_string();
                }
                tracing::warn!(pair = %pool.pair, error = %e, "pool price read failed; retrying");
                pause = (pause * 2).min(MAX_BACKOFF.max(every));
            }
        }
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn one_tick_per_block_and_never_an_older_block() {
        let state = PoolFeedState::default();
        let (tx, mut rx) = mpsc::channel(8);
        let at_7 = (d("10"), d("1000000"));
        let at_8 = (d("11"), d("909091"));
        // A `Sync` of block 7, then a poll of the same block.
        assert!(state.publish(0, Some(7), at_7, &tx).await);
        assert!(state.publish(0, Some(7), at_7, &tx).await);
        // Block 8's Sync, then a slow poll that read block 7.
        assert!(state.publish(0, Some(8), at_8, &tx).await);
        assert!(state.publish(0, Some(7), at_7, &tx).await);
        drop(tx);
        let mut prices = Vec::new();
        while let Some(t) = rx.recv().await {
            prices.push(t.price);
        }
        assert_eq!(prices.len(), 2, "{prices:?}");
        assert_eq!(state.skipped.load(Ordering::Relaxed), 2);
        assert_eq!(state.ticks.load(Ordering::Relaxed), 2);
    }
}
