//! Pool prices: a Uniswap-V2-style pair's reserves as a price (quote per base), the price a live
//! grid triggers on — it is what its swaps will get, where Binance's is only a reference.
//!
//! This is the polling source: the reserves are read every `every`, and a tick goes to the engine
//! whenever they changed. An RPC failure is counted and retried with a doubling pause (up to
//! [`MAX_BACKOFF`]); the feed never stops on its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rust_decimal::Decimal;
use tokio::sync::{mpsc, watch};

use crate::chain::{ChainClient, Pool};
use crate::clock::wall_clock_us;
use crate::engine::live::MarketTick;
use crate::engine::PriceKey;

/// Longest pause between two reads after failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Price of `base` in `quote` from a pair's reserves (`None` for an empty pool).
pub fn reserves_price(base_reserve: Decimal, quote_reserve: Decimal) -> Option<Decimal> {
    (base_reserve > Decimal::ZERO).then(|| quote_reserve / base_reserve)
}

/// What the feed has seen, for status and metrics.
#[derive(Debug, Default)]
pub struct PoolFeedState {
    pub polls: AtomicU64,
    pub errors: AtomicU64,
    pub ticks: AtomicU64,
    pub last_price: Mutex<Option<Decimal>>,
    pub last_error: Mutex<String>,
}

impl PoolFeedState {
    /// Send the price of `reserves` (base, quote) as a tick of engine symbol `symbol`; both pool
    /// feeds (polling and the `Sync` subscription) go through here. `false`: the engine is gone.
    pub async fn publish(
        &self,
        symbol: usize,
        reserves: (Decimal, Decimal),
        ticks: &mpsc::Sender<MarketTick>,
    ) -> bool {
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
        match client.reserves(&pool).await {
            Ok(reserves) => {
                pause = every;
                if last != Some(reserves) {
                    last = Some(reserves);
                    if !state.publish(symbol, reserves, &ticks).await {
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
