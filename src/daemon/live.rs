//! Live strategies in the daemon: the keystore password from the environment unlocks each
//! strategy's wallet, every wallet's transactions left by an earlier run are reconciled with the
//! chain before it may send anything new, each live market gets its pool (and later its pool price
//! feed), and each wallet one DEX venue. A strategy that cannot get all of that is not run, and
//! the reason goes on record for `strategy list/status` and health.

use std::collections::BTreeMap;
use std::sync::Arc;

use alloy::primitives::Address;

use crate::chain::{ChainClient, Pool, Swapper};
use crate::config::Config;
use crate::store::{Store, StrategyRecord};
use crate::wallet::Keystore;

/// What the daemon needs to run its live strategies.
pub struct LiveMarkets {
    pub client: ChainClient,
    /// Wallet name → its swapper, reconciled.
    pub wallets: BTreeMap<String, Arc<Swapper>>,
    /// Market symbol (`BTC/USDT`) → the pool its price is read from: the deepest of its routes.
    pub pools: BTreeMap<String, Pool>,
    /// Market symbol → every pool of `dex.pools` it may trade (best execution's candidates).
    pub routes: BTreeMap<String, Vec<Pool>>,
    /// Wallets that could not be unlocked or reconciled, with why.
    broken_wallets: BTreeMap<String, String>,
}

fn address(text: &str, what: &str) -> Result<Address, String> {
    text.parse()
        .map_err(|_| format!("{what} {text:?} is not an address"))
}

/// Prepare the chain side for `records`: strategies priced by their pool (every live one, and
/// paper ones with `market.paper_price_source = "pool"`); live ones also need their wallet.
/// Returns it (when a node answered) and, for each strategy that cannot run, why.
pub async fn prepare(
    config: &Config,
    store: &Store,
    records: &[&StrategyRecord],
) -> (Option<LiveMarkets>, BTreeMap<i64, String>) {
    let mut refused = BTreeMap::new();
    let refuse_all = |why: &str, refused: &mut BTreeMap<i64, String>| {
        for r in records {
            refused.insert(r.id, why.to_string());
        }
    };
    if records.is_empty() {
        return (None, refused);
    }
    let password = std::env::var("BSC_BOT_KEYSTORE_PASSWORD").unwrap_or_default();
    let client = match ChainClient::connect(&config.chain).await {
        Ok(c) => c,
        Err(e) => {
            refuse_all(&format!("chain: {e}"), &mut refused);
            return (None, refused);
        }
    };
    if let Err(e) = address(&config.dex.factory, "dex.factory") {
        refuse_all(&e, &mut refused);
        return (None, refused);
    }
    let mut markets = LiveMarkets {
        client,
        wallets: BTreeMap::new(),
        pools: BTreeMap::new(),
        routes: BTreeMap::new(),
        broken_wallets: BTreeMap::new(),
    };
    for r in records {
        if let Err(why) = markets.extend(config, store, r, &password).await {
            refused.insert(r.id, why);
        }
    }
    (Some(markets), refused)
}

impl LiveMarkets {
    /// What `record` needs, added to what is ready: its pool, and for a live strategy its wallet
    /// (unlocked, and reconciled with the chain before it may send anything new). A wallet or pool
    /// already here is reused — one swapper per wallet, so its nonces stay the bot's own.
    pub async fn extend(
        &mut self,
        config: &Config,
        store: &Store,
        r: &StrategyRecord,
        password: &str,
    ) -> Result<(), String> {
        if r.mode == crate::strategy::StrategyMode::Live {
            if password.is_empty() {
                return Err(
                    "BSC_BOT_KEYSTORE_PASSWORD is not set, so its wallet stays locked".into(),
                );
            }
            let name = r.wallet.clone().ok_or("no wallet on record")?;
            if let Some(why) = self.broken_wallets.get(&name) {
                return Err(why.clone());
            }
            if !self.wallets.contains_key(&name) {
                match self.unlock(config, store, &name, password).await {
                    Ok(swapper) => {
                        self.wallets.insert(name.clone(), Arc::new(swapper));
                    }
                    Err(why) => {
                        self.broken_wallets.insert(name, why.clone());
                        return Err(why);
                    }
                }
            }
        }
        if !self.pools.contains_key(&r.symbol) {
            let (pool, routes) = routes_of(&self.client, config, &r.symbol).await?;
            self.pools.insert(r.symbol.clone(), pool);
            self.routes.insert(r.symbol.clone(), routes);
        }
        if let Some(pin) = pinned_pool(r) {
            let routes = self
                .routes
                .get(&r.symbol)
                .map(Vec::as_slice)
                .unwrap_or_default();
            if !routes.iter().any(|p| p.kind == pin) {
                let have: Vec<String> = routes.iter().map(|p| p.kind.to_string()).collect();
                return Err(format!(
                    "the strategy is pinned to pool {pin}, which is not among {}'s pools on chain ({}; dex.pools = {:?})",
                    r.symbol,
                    have.join(", "),
                    config.dex.pools
                ));
            }
        }
        Ok(())
    }

    async fn unlock(
        &self,
        config: &Config,
        store: &Store,
        name: &str,
        password: &str,
    ) -> Result<Swapper, String> {
        let signer = Keystore::of_config(config)
            .unlock(name, password)
            .map_err(|e| format!("wallet {name:?}: {e}"))?;
        let swapper = Swapper::new(
            self.client.clone(),
            signer,
            store.clone(),
            config.chain.clone(),
            config.dex.clone(),
        )
        .map_err(|e| format!("wallet {name:?}: {e}"))?;
        // Nothing new leaves a wallet before what an earlier run left is settled.
        let settled = swapper
            .reconcile()
            .await
            .map_err(|e| format!("wallet {name:?}: reconciling its transactions failed: {e}"))?;
        for s in &settled {
            tracing::warn!(wallet = %name, tx_hash = %s.tx_hash, status = s.status, purpose = %s.purpose, "transaction from an earlier run reconciled");
        }
        Ok(swapper)
    }
}

/// The pool a strategy's parameters pin it to (`"pool": "v3:500"`), if any.
pub fn pinned_pool(r: &StrategyRecord) -> Option<crate::amm::PoolKind> {
    crate::strategy::StrategyParams::parse(&r.kind, &r.params)
        .ok()
        .and_then(|p| p.pinned_pool())
}

/// The pools of `dex.pools` that `symbol` may trade and the deepest of them (see
/// [`crate::chain::pool_model::market_pools`]).
async fn routes_of(
    client: &ChainClient,
    config: &Config,
    symbol: &str,
) -> Result<(Pool, Vec<Pool>), String> {
    use crate::chain::pool_model::{market_pools, market_tokens};
    let symbol: crate::model::Symbol = symbol
        .parse()
        .map_err(|e: crate::model::SymbolError| e.to_string())?;
    let (base, quote) = market_tokens(client, config, &symbol)
        .await
        .map_err(|e| e.to_string())?;
    market_pools(client, config, &base, &quote)
        .await
        .map_err(|e| e.to_string())
}
