//! The live side of a running daemon, kept after start so a strategy created while it runs joins
//! it instead of waiting for a restart: the chain client, each wallet's one swapper and DEX venue
//! (one executor per wallet, so its nonces stay the bot's own), the pools every executor reads,
//! the engine-index → database-id map orders are named by, and the pool feeds that run.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::live::LiveMarkets;
use super::writer;
use crate::config::Config;
use crate::engine::live::MarketTick;
use crate::venue::dex::{dex_venue_shared, DexVenue, SharedPools};
use crate::venue::VenueReport;

pub struct LiveRuntime {
    /// Client, reconciled wallets and pools (`None` until a node answered).
    pub markets: Option<LiveMarkets>,
    /// Wallet name → its DEX venue's slot in the engine's routed venue.
    slots: BTreeMap<String, usize>,
    pools: SharedPools,
    db_ids: Arc<RwLock<HashMap<usize, i64>>>,
    /// Markets whose pool feeds run.
    fed: BTreeSet<String>,
    ticks: mpsc::Sender<MarketTick>,
    reports: mpsc::Sender<VenueReport>,
    shutdown: watch::Receiver<bool>,
    run_id: i64,
    config: Arc<Config>,
    /// Where each wallet's BNB (gas) balance is shown.
    pub metrics: Option<Arc<crate::api::metrics::Metrics>>,
}

impl LiveRuntime {
    pub fn new(
        markets: Option<LiveMarkets>,
        config: Arc<Config>,
        ticks: mpsc::Sender<MarketTick>,
        reports: mpsc::Sender<VenueReport>,
        shutdown: watch::Receiver<bool>,
        run_id: i64,
    ) -> Self {
        LiveRuntime {
            markets,
            slots: BTreeMap::new(),
            pools: Arc::new(RwLock::new(HashMap::new())),
            db_ids: Arc::new(RwLock::new(HashMap::new())),
            fed: BTreeSet::new(),
            ticks,
            reports,
            shutdown,
            run_id,
            config,
            metrics: None,
        }
    }

    /// The slot of `wallet`'s DEX venue, if it has one.
    pub fn slot(&self, wallet: &str) -> Option<usize> {
        self.slots.get(wallet).copied()
    }

    pub fn set_slot(&mut self, wallet: &str, slot: usize) {
        self.slots.insert(wallet.to_string(), slot);
    }

    /// A DEX venue for `wallet`, its executor started (`None`: it has one, or is not ready).
    pub fn new_venue(&mut self, wallet: &str) -> Option<DexVenue> {
        if self.slots.contains_key(wallet) {
            return None;
        }
        let swapper = self.markets.as_ref()?.wallets.get(wallet)?.clone();
        let address = swapper.address();
        let db_ids = self.db_ids.clone();
        let run_id = self.run_id;
        tracing::info!(wallet = %wallet, address = %swapper.address(), "live wallet ready");
        let (venue, executor) = dex_venue_shared(
            swapper,
            self.pools.clone(),
            self.config.dex.fee_bps,
            self.reports.clone(),
            Box::new(move |o| {
                let strategy = db_ids
                    .read()
                    .ok()
                    .and_then(|m| m.get(&o.strategy).copied())
                    .unwrap_or(-1);
                (
                    writer::client_order_id(strategy, run_id, o.order_id),
                    strategy,
                )
            }),
        );
        tokio::spawn(executor.run());
        self.watch_gas(wallet, address);
        Some(venue)
    }

    /// Read `wallet`'s BNB every `chain.balance_poll_secs` into the metrics (gas runway; the
    /// `LowGasBalance` alert reads it). A failed read keeps the last figure and logs.
    fn watch_gas(&self, wallet: &str, address: alloy::primitives::Address) {
        let (Some(metrics), Some(m)) = (self.metrics.clone(), self.markets.as_ref()) else {
            return;
        };
        let client = m.client.clone();
        let every = Duration::from_secs(self.config.chain.balance_poll_secs.max(1));
        let mut shutdown = self.shutdown.clone();
        let key = (wallet.to_string(), address.to_string());
        tokio::spawn(async move {
            loop {
                match client.native_balance(address).await {
                    Ok(bnb) => {
                        if let Ok(mut w) = metrics.wallet_bnb.lock() {
                            w.insert(key.clone(), bnb);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(wallet = %key.0, error = %e, "cannot read the wallet's BNB")
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = shutdown.changed() => return,
                }
            }
        });
    }

    /// What the engine-thread side needs to register a strategy: the shared maps.
    pub fn maps(&self) -> (SharedPools, Arc<RwLock<HashMap<usize, i64>>>) {
        (self.pools.clone(), self.db_ids.clone())
    }

    /// Start `symbol`'s pool feeds (engine symbol `ix`) unless they run: polling, and the `Sync`
    /// subscription when `chain.ws_urls` is set.
    pub fn feed(&mut self, symbol: &str, ix: usize) {
        if self.fed.contains(symbol) {
            return;
        }
        let Some(m) = &self.markets else {
            return;
        };
        let Some(pool) = m.pools.get(symbol) else {
            return;
        };
        if let Ok(mut p) = self.pools.write() {
            p.insert(ix, pool.clone());
        }
        self.fed.insert(symbol.to_string());
        let state = Arc::new(crate::market::pool::PoolFeedState::default());
        tokio::spawn(crate::market::pool::run_pool_feed(
            m.client.clone(),
            pool.clone(),
            ix,
            Duration::from_millis(self.config.chain.pool_poll_ms),
            self.ticks.clone(),
            state.clone(),
            self.shutdown.clone(),
        ));
        if !self.config.chain.ws_urls.is_empty() {
            tokio::spawn(crate::market::pool_sync::run_pool_sync_feed(
                self.config.chain.ws_urls.clone(),
                m.client.clone(),
                pool.clone(),
                ix,
                self.ticks.clone(),
                state,
                Arc::new(crate::market::pool_sync::SyncFeedState::default()),
                self.shutdown.clone(),
            ));
        }
        tracing::info!(%symbol, pair = %pool.pair, "pool price feed started");
    }
}
