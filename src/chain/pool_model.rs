//! A live pool as the fill model sees it: the pair of a market at the configured factory, its
//! reserves now, and what one swap's gas costs in its quote at the node's gas price and BNB's
//! price. What `strategy create` checks a live grid's cells against, and what a canary's backtest
//! stage fills through.

use alloy::primitives::Address;
use rust_decimal::Decimal;

use super::{ChainClient, ChainError, Pool};
use crate::amm::AmmPool;
use crate::config::Config;
use crate::model::Symbol;

#[derive(Debug, thiserror::Error)]
pub enum PoolModelError {
    /// The market's asset has no token in `[dex.assets]`.
    #[error("no token for {0} in [dex.assets]")]
    NoToken(String),
    #[error("dex.factory is not an address")]
    Factory,
    #[error("{0}")]
    Wallet(String),
    #[error("{0}")]
    Chain(#[from] ChainError),
    #[error("{0}")]
    Pools(String),
}

#[derive(Debug, Clone)]
pub struct LivePoolModel {
    pub pool: Pool,
    pub reserves: (Decimal, Decimal),
    /// `None` for a pool without liquidity.
    pub model: Option<AmmPool>,
    /// How the gas was priced (`gas: 150000 units at 0.1 gwei, BNB at 600 USDT`).
    pub gas_note: String,
}

/// Read `symbol`'s pool from the configured node (a connection of its own): the market's deepest
/// pool among `dex.pools`, whose price its grids trigger on.
pub async fn live_pool_model(
    config: &Config,
    symbol: &Symbol,
) -> Result<LivePoolModel, PoolModelError> {
    live_pool_model_of(config, symbol, None).await
}

/// The pools of `dex.pools` that `base`/`quote` may trade, and the deepest of them (the most
/// quote in its current range): the one whose price the market's grids trigger on. With `auto`,
/// kinds the chain has no pool of (or a pool without liquidity at the price) are left out; a
/// pool listed by name that is missing or empty is an error, so nothing trades on a venue the
/// operator did not expect. The V2 pair alone (the default) is the pair, unread: nothing to
/// compare it with.
pub async fn market_pools(
    client: &ChainClient,
    config: &Config,
    base: &crate::chain::Token,
    quote: &crate::chain::Token,
) -> Result<(Pool, Vec<Pool>), PoolModelError> {
    let kinds = config
        .dex
        .pool_kinds()
        .map_err(|e| PoolModelError::Pools(e.to_string()))?;
    if kinds == [crate::amm::PoolKind::V2] {
        let pool = client
            .pool_of_kind(
                &config.dex,
                crate::amm::PoolKind::V2,
                base.clone(),
                quote.clone(),
            )
            .await?;
        return Ok((pool.clone(), vec![pool]));
    }
    let auto = config
        .dex
        .pools
        .iter()
        .any(|p| p.trim().eq_ignore_ascii_case("auto"));
    let market = format!("{}/{}", base.symbol, quote.symbol);
    let mut found: Vec<(Decimal, Pool)> = Vec::new();
    for kind in kinds {
        let pool = match client
            .pool_of_kind(&config.dex, kind, base.clone(), quote.clone())
            .await
        {
            Ok(p) => p,
            Err(_) if auto => continue,
            Err(e) => return Err(e.into()),
        };
        let (_, depth) = client.reserves(&pool).await?;
        if depth.is_zero() {
            if auto {
                continue;
            }
            return Err(PoolModelError::Pools(format!(
                "dex.pools names {kind}, but the {market} {kind} pool {} has no liquidity at the price",
                pool.pair
            )));
        }
        found.push((depth, pool));
    }
    let Some(deepest) = found
        .iter()
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, p)| p.clone())
    else {
        return Err(PoolModelError::Pools(format!(
            "no pool with liquidity for {market} among dex.pools {:?}",
            config.dex.pools
        )));
    };
    Ok((deepest, found.into_iter().map(|(_, p)| p).collect()))
}

/// `symbol`'s base and quote tokens, as `[dex.assets]` names them and the chain describes them.
pub async fn market_tokens(
    client: &ChainClient,
    config: &Config,
    symbol: &Symbol,
) -> Result<(crate::chain::Token, crate::chain::Token), PoolModelError> {
    let token = |asset: &str| {
        config
            .dex
            .asset_address(asset)
            .ok_or_else(|| PoolModelError::NoToken(asset.to_string()))
    };
    let (base, quote) = (token(symbol.base())?, token(symbol.quote())?);
    Ok((client.token(base).await?, client.token(quote).await?))
}

/// [`live_pool_model`] of the pool a grid pinned to `pin` trades (`None`: the market's deepest):
/// what `strategy create` prices a live grid's round trip in.
pub async fn live_pool_model_of(
    config: &Config,
    symbol: &Symbol,
    pin: Option<crate::amm::PoolKind>,
) -> Result<LivePoolModel, PoolModelError> {
    let factory: Address = config
        .dex
        .factory
        .parse()
        .map_err(|_| PoolModelError::Factory)?;
    let client = ChainClient::connect(&config.chain).await?;
    let (base, quote) = market_tokens(&client, config, symbol).await?;
    let pool = match pin {
        Some(kind) => client.pool_of_kind(&config.dex, kind, base, quote).await?,
        None => market_pools(&client, config, &base, &quote).await?.0,
    };
    let reserves = client.reserves(&pool).await?;
    let (gas_quote, gas_note) = swap_gas_in_quote(&client, config, factory, &pool, reserves).await;
    Ok(LivePoolModel {
        model: AmmPool::from_reserves(reserves.0, reserves.1, gas_quote),
        pool,
        reserves,
        gas_note,
    })
}

/// One swap's gas in the pool's quote at what a swap would pay now: the node's gas price as the
/// bot prices it (`chain.gas_price_*`), BNB at the WBNB/quote pool's price. Falls back to the
/// defaults (0.1 gwei, BNB at 600) for what cannot be read, and says which were used.
pub async fn swap_gas_in_quote(
    client: &ChainClient,
    config: &Config,
    factory: Address,
    pool: &Pool,
    (base_reserve, quote_reserve): (Decimal, Decimal),
) -> (Decimal, String) {
    use alloy::providers::Provider;
    let gwei = match client.provider().get_gas_price().await {
        Ok(node) => super::gas::gas_price_wei(node, &config.chain)
            .ok()
            .and_then(|wei| i128::try_from(wei).ok())
            .map(|wei| Decimal::from_i128_with_scale(wei, 9)),
        Err(_) => None,
    };
    let bnb_price = match config.dex.asset_address("BNB") {
        Some(wbnb) => match crate::amm::reserves_price(base_reserve, quote_reserve)
            .and_then(|p| ChainClient::bnb_price_within(pool, wbnb, p))
        {
            Some(p) => Some(p),
            None => client.bnb_price_in(factory, wbnb, &pool.quote).await,
        },
        None => None,
    };
    let quote = &pool.quote.symbol;
    let note = format!(
        "gas: {} units at {}, BNB at {}",
        SWAP_GAS_UNITS,
        gwei.map_or(
            "0.1 gwei (the node's price unread)".to_string(),
            |g| format!("{} gwei", g.normalize())
        ),
        bnb_price.map_or(
            format!("600 {quote} (no WBNB/{quote} pool read)"),
            |p| format!("{} {quote}", p.round_dp(2).normalize())
        ),
    );
    let gas = crate::amm::AmmPool::gas_quote_of(
        SWAP_GAS_UNITS,
        gwei.unwrap_or(Decimal::new(1, 1)),
        bnb_price.unwrap_or(Decimal::from(600)),
    );
    (gas, note)
}

/// Gas of one PancakeSwap V2 swap, as the cost warnings count it (the backtest's default).
pub const SWAP_GAS_UNITS: u64 = 150_000;

/// What wallet `wallet` (a keystore name) holds of `symbol`'s two tokens, valued in its quote at
/// the pool's price now: what a grid on it can be funded with.
pub async fn wallet_value_in_quote(
    config: &Config,
    symbol: &str,
    wallet: &str,
) -> Result<Decimal, PoolModelError> {
    let symbol: Symbol = symbol
        .parse()
        .map_err(|e: crate::model::SymbolError| PoolModelError::NoToken(e.to_string()))?;
    let address = crate::wallet::Keystore::of_config(config)
        .list()
        .map_err(|e| PoolModelError::Wallet(e.to_string()))?
        .into_iter()
        .find(|w| w.name == wallet)
        .map(|w| w.address)
        .ok_or_else(|| PoolModelError::Wallet(format!("no wallet named {wallet:?}")))?;
    let live = live_pool_model(config, &symbol).await?;
    let client = ChainClient::connect(&config.chain).await?;
    let base = client.token_balance(&live.pool.base, address).await?;
    let quote = client.token_balance(&live.pool.quote, address).await?;
    let price = crate::amm::reserves_price(live.reserves.0, live.reserves.1).unwrap_or_default();
    Ok(quote + base * price)
}
