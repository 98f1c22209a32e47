//! The treasury and the trading wallets as `funds status` and the console's Funds page show
//! them: balances (native BNB and every token of `[dex.assets]`), gas runway, the drips and
//! sweeps on record, and the hour's outflow against its limits. One document, so the terminal
//! and the browser never disagree.

use std::collections::BTreeMap;

use alloy::primitives::Address;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::chain::ChainClient;
use crate::config::Config;
use crate::store::{Store, StoreError};
use crate::strategy::{StrategyMode, StrategyStatus};
use crate::wallet::Keystore;

/// Why balances could not be read (the node, or the keystore): shown in place of them.
#[derive(Debug, thiserror::Error)]
pub enum BalanceError {
    #[error("chain: {0}")]
    Chain(String),
    #[error("{0}")]
    Keystore(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The wallets the funds manager keeps: every non-stopped live strategy's, with its address.
pub async fn managed_wallets(
    config: &Config,
    store: &Store,
) -> Result<Vec<(String, Address)>, BalanceError> {
    let names: std::collections::BTreeSet<String> = store
        .list_strategies(None)
        .await?
        .into_iter()
        .filter(|s| s.mode == StrategyMode::Live && s.status != StrategyStatus::Stopped)
        .filter_map(|s| s.wallet)
        .collect();
    Ok(keystore_wallets(config)?
        .into_iter()
        .filter(|(name, _)| names.contains(name))
        .collect())
}

/// Every wallet the bot has keys for (its keystores), whatever its strategies' state.
pub fn keystore_wallets(config: &Config) -> Result<Vec<(String, Address)>, BalanceError> {
    Ok(Keystore::of_config(config)
        .list()
        .map_err(|e| BalanceError::Keystore(e.to_string()))?
        .into_iter()
        .map(|w| (w.name, w.address))
        .collect())
}

/// The treasury (when configured) and `wallets`, each once (by address).
pub fn with_treasury(config: &Config, wallets: Vec<(String, Address)>) -> Vec<(String, Address)> {
    let mut holders: Vec<(String, Address)> = Vec::new();
    if config.funds.enabled() {
        if let Ok(a) = config.funds.treasury.parse::<Address>() {
            holders.push(("treasury".to_string(), a));
        }
    }
    for (name, address) in wallets {
        if !holders.iter().any(|(_, a)| *a == address) {
            holders.push((name, address));
        }
    }
    holders
}

/// The tokens of `[dex.assets]` as the chain describes them, each with the name its balance is
/// shown under (BNB's token as WBNB).
pub async fn token_list(
    config: &Config,
    client: &ChainClient,
) -> Vec<(String, crate::chain::Token)> {
    let mut tokens = Vec::new();
    for (asset, address) in &config.dex.assets {
        if let Ok(a) = address.parse::<Address>() {
            if let Ok(t) = client.token(a).await {
                tokens.push((crate::config::DexConfig::token_label(asset), t));
            }
        }
    }
    tokens
}

/// One holder's native BNB (under "BNB") and token balances.
pub async fn balances_of(
    client: &ChainClient,
    tokens: &[(String, crate::chain::Token)],
    who: Address,
) -> Result<BTreeMap<String, Decimal>, BalanceError> {
    let chain = |e: crate::chain::ChainError| BalanceError::Chain(e.to_string());
    let mut b = BTreeMap::new();
    b.insert(
        "BNB".to_string(),
        client.native_balance(who).await.map_err(chain)?,
    );
    for (label, t) in tokens {
        b.insert(
            label.clone(),
            client.token_balance(t, who).await.map_err(chain)?,
        );
    }
    Ok(b)
}

/// `(name, address, {asset: balance})` of the treasury and every managed wallet.
pub async fn read_balances(
    config: &Config,
    store: &Store,
    client: &ChainClient,
) -> Result<Vec<(String, Address, BTreeMap<String, Decimal>)>, BalanceError> {
    let holders = with_treasury(config, managed_wallets(config, store).await?);
    let tokens = token_list(config, client).await;
    let mut out = Vec::new();
    for (name, who) in holders {
        let b = balances_of(client, &tokens, who).await?;
        out.push((name, who, b));
    }
    Ok(out)
}

/// The funds document at `now_ms`. `client` is the node connection, or why there is none: the
/// rest (operations, outflow) is read from the database either way. `manager` is what the
/// daemon's funds manager reports of itself.
pub async fn funds_status(
    config: &Config,
    store: &Store,
    client: Result<&ChainClient, String>,
    manager: String,
    history: i64,
    now_ms: i64,
) -> Result<Value, StoreError> {
    let balances = match client {
        Ok(c) => read_balances(config, store, c)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    // Gas runway: BNB over the gas its transactions cost in the last 24 hours.
    let mut wallets = Vec::new();
    if let Ok(rows) = &balances {
        for (name, address, b) in rows {
            let spent = store.gas_spent_since(*address, now_ms - 86_400_000).await?;
            let bnb = b.get("BNB").copied().unwrap_or_default();
            let runway_days = (spent > Decimal::ZERO).then(|| (bnb / spent).round_dp(1));
            wallets.push(json!({
                "holder": name, "address": address, "balances": b,
                "gas_spent_24h_bnb": spent.normalize(), "gas_runway_days": runway_days,
                "below_gas_min": bnb < config.funds.gas_min_bnb,
            }));
        }
    }
    let drips = store.funds_operations(Some("drip"), history.max(1)).await?;
    let sweeps = store
        .funds_operations(Some("sweep"), history.max(1))
        .await?;
    let mut outflow = Vec::new();
    for (asset, limit) in &config.funds.max_hourly_outflow {
        let used = store.funds_outflow_since(asset, now_ms - 3_600_000).await?;
        outflow.push(json!({"asset": asset, "used": used.normalize(), "limit": limit}));
    }
    let quote_used = store.outflow_quote_since(now_ms - 3_600_000).await?;
    Ok(json!({
        "hourly_outflow_quote": {
            "used": quote_used.round_dp(8).normalize(),
            "limit": config.risk.max_hourly_outflow,
        },
        "manager": manager,
        "treasury": config.funds.treasury,
        "gas_min_bnb": config.funds.gas_min_bnb,
        "wallets": wallets,
        "balances_error": balances.err(),
        "last_drip": drips.first(),
        "last_sweep": sweeps.first(),
        "drips": drips,
        "sweeps": sweeps,
        "hourly_outflow": outflow,
    }))
}
