//! `[chain]` and `[dex]`: where live trading sends transactions and how it prices them.
//!
//! Defaults are BNB Smart Chain mainnet and PancakeSwap V2; the tests point the same keys at a
//! local anvil chain with the Uniswap V2 contracts (pool fee 30 bps there, 25 on PancakeSwap).

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChainConfig {
    /// Live start refuses a node that reports another chain id (a transaction signed for the
    /// wrong chain is never mined and can hang a nonce).
    pub chain_id: u64,
    /// HTTP JSON-RPC endpoints, tried in order: the next one takes over when one fails.
    pub rpc_urls: Vec<String>,
    /// WebSocket JSON-RPC endpoints for subscriptions (pool `Sync` events), tried in turn; none:
    /// pool prices are polled only.
    pub ws_urls: Vec<String>,
    /// One RPC request may take this long before the next endpoint is tried (milliseconds).
    pub rpc_timeout_ms: u64,
    /// A request every endpoint failed is tried over all of them this many more times, with a
    /// pause of 0.2 s doubling up to 2 s between rounds.
    pub rpc_retries: u32,
    /// Gas price policy (BSC takes legacy-priced transactions): the node's price × multiplier,
    /// never below the floor nor above the cap (gwei).
    pub gas_price_floor_gwei: Decimal,
    pub gas_price_multiplier: Decimal,
    pub gas_price_cap_gwei: Decimal,
    /// Gas limit = the node's estimate × this margin (estimates run ~10 % low right after the
    /// pair was touched).
    pub gas_limit_margin: Decimal,
    /// A swap's gas limit is never below this: a pair's first swap in a new block also updates its
    /// price accumulators (two more storage writes), which an estimate made in the same block
    /// does not see. Only gas used is paid, so a generous floor costs nothing.
    pub swap_gas_floor: u64,
    /// Simulate every swap with `eth_call` before sending it (a swap that would revert is not
    /// sent, and costs no gas). Off by default: the call is a round trip to the node on every
    /// swap's path to the chain (tens of ms against a remote node, while the price moves), and
    /// what it guards against is cheap — a swap past its `amountOutMin` reverts and loses only
    /// its gas. The first swap of each path is always estimated, which catches a missing
    /// allowance, balance or a token that does not transfer as ERC-20s do.
    pub simulate_swaps: bool,
    /// How often a live market's pool reserves are read for its price (milliseconds).
    pub pool_poll_ms: u64,
    /// How often each live wallet's BNB (gas) balance is read for the metrics (seconds).
    pub balance_poll_secs: u64,
    /// A transaction without a receipt after this long is replaced or cancelled (seconds).
    pub receipt_timeout_secs: u64,
    /// Swaps carry a deadline this far ahead (seconds; a BSC block is ~0.45 s).
    pub swap_deadline_secs: u64,
    /// Private transaction endpoint for swaps; when set, a swap is never sent to a public RPC.
    pub private_tx_url: String,
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            chain_id: 56,
            rpc_urls: vec![
                "https://bsc-dataseed.bnbchain.org".into(),
                "https://bsc-dataseed1.defibit.io".into(),
                "https://bsc-dataseed1.ninicoin.io".into(),
            ],
            ws_urls: Vec::new(),
            rpc_timeout_ms: 3_000,
            rpc_retries: 2,
            gas_price_floor_gwei: Decimal::new(1, 1),
            gas_price_multiplier: Decimal::new(11, 1),
            gas_price_cap_gwei: Decimal::from(10),
            gas_limit_margin: Decimal::new(13, 1),
            swap_gas_floor: 250_000,
            simulate_swaps: false,
            pool_poll_ms: 500,
            balance_poll_secs: 30,
            receipt_timeout_secs: 30,
            swap_deadline_secs: 20,
            private_tx_url: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DexConfig {
    /// Uniswap-V2-style router and factory (PancakeSwap V2 on mainnet).
    pub router: String,
    pub factory: String,
    /// The V2 pair's swap fee in basis points: 25 on PancakeSwap V2, 30 on Uniswap V2. (A V3
    /// pool's fee is its tier.)
    pub fee_bps: u32,
    /// PancakeSwap V3: the factory that finds a market's pool per fee tier, the pool deployer
    /// (pools are created at addresses derived from it), the swap router that `exactInputSingle`
    /// goes through, and QuoterV2 (a cross-check only; quotes on the swap path are the bot's own).
    pub v3_factory: String,
    pub v3_pool_deployer: String,
    pub v3_router: String,
    pub v3_quoter: String,
    /// The pools a market may trade: `v2`, `v3:100`, `v3:500`, `v3:2500`, `v3:10000`, or `auto`
    /// (every one that exists with liquidity at the price).
    pub pools: Vec<String>,
    /// A swap fills no worse than its limit price after the pool fee, less this.
    pub slippage_bps: u32,
    /// Market symbol asset → its token contract (`BTC` trades as BTCB, `BNB` as WBNB, `USDT` as
    /// BSC-USD). Decimals are read from each token contract, never assumed. (Named `assets`, not
    /// `tokens`: key names with "token" are refused as secret-looking.)
    pub assets: BTreeMap<String, String>,
}

impl DexConfig {
    /// The pools `dex.pools` allows, in its order; `auto` is every kind (which of them exist with
    /// liquidity is the chain's to say, at start).
    pub fn pool_kinds(&self) -> Result<Vec<crate::amm::PoolKind>, ConfigError> {
        use crate::amm::PoolKind;
        if self.pools.is_empty() {
            return Err(invalid(
                "dex.pools",
                "[]",
                "at least one pool: \"v2\", \"v3:FEE\" or \"auto\"",
            ));
        }
        if self
            .pools
            .iter()
            .any(|p| p.trim().eq_ignore_ascii_case("auto"))
        {
            let mut all = vec![PoolKind::V2];
            all.extend(
                crate::amm::v3::FEE_TIERS
                    .iter()
                    .map(|(fee, _)| PoolKind::V3 { fee: *fee }),
            );
            return Ok(all);
        }
        let mut kinds: Vec<PoolKind> = Vec::new();
        for p in &self.pools {
            let kind = p.parse::<PoolKind>().map_err(|_| {
                invalid(
                    "dex.pools",
                    format!("{p:?}"),
                    "\"v2\", \"v3:FEE\" with FEE a PancakeSwap V3 fee tier (100, 500, 2500, 10000), or \"auto\"",
                )
            })?;
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        Ok(kinds)
    }

    /// The token contract `[dex.assets]` names for a market asset (`BTC` → BTCB's address).
    pub fn asset_address(&self, asset: &str) -> Option<alloy::primitives::Address> {
        self.assets.get(asset).and_then(|a| a.parse().ok())
    }

    /// The name a `[dex.assets]` token's balance is shown under: the market's asset name,
    /// except BNB, whose token is WBNB. "BNB" in a balance always means the chain's native coin
    /// (what pays gas), so the two never share a name.
    pub fn token_label(asset: &str) -> String {
        if asset.eq_ignore_ascii_case("BNB") {
            "WBNB".to_string()
        } else {
            asset.to_string()
        }
    }
}

impl Default for DexConfig {
    fn default() -> Self {
        let assets = [
            ("BTC", "0x7130d2A12B9BCbFAe4f2634d864A1Ee1Ce3Ead9c"),
            ("BNB", "0xbb4CdB9CBd36B01bD1cBaEBF2De08d9173bc095c"),
            ("ETH", "0x2170Ed0880ac9A755fd29B2688956BD959F933F8"),
            ("USDT", "0x55d398326f99059fF775485246999027B3197955"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        DexConfig {
            router: "0x10ED43C718714eb63d5aA57B78B54704E256024E".into(),
            factory: "0xcA143Ce32Fe78f1f7019d7d551a6402fC5350c73".into(),
            fee_bps: 25,
            // developer.pancakeswap.finance/contracts/v3/addresses (BSC mainnet).
            v3_factory: "0x0BFbCF9fa4f9C56B0F40a671Ad40E0805A091865".into(),
            v3_pool_deployer: "0x41ff9AA7e16B8B1a8a8dc4f0eFacd93D02d071c9".into(),
            v3_router: "0x1b81D678ffb9C0263b24A97847620C99d213eB14".into(),
            v3_quoter: "0xB048Bbc1Ee6b733FFfCFb9e9CeF7375518e25997".into(),
            pools: vec!["v2".into()],
            slippage_bps: 50,
            assets,
        }
    }
}

fn invalid(key: &str, value: impl std::fmt::Display, expected: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.to_string(),
        expected: expected.into(),
    }
}

/// `0x` and 40 hex digits.
pub fn is_address(s: &str) -> bool {
    s.strip_prefix("0x")
        .is_some_and(|h| h.len() == 40 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub(super) fn validate(chain: &ChainConfig, dex: &DexConfig) -> Result<(), ConfigError> {
    if chain.chain_id == 0 {
        return Err(invalid("chain.chain_id", 0, "a chain id (56 for BSC)"));
    }
    if chain.rpc_urls.is_empty() {
        return Err(invalid("chain.rpc_urls", "[]", "at least one RPC URL"));
    }
    for url in chain
        .rpc_urls
        .iter()
        .chain(Some(&chain.private_tx_url).filter(|u| !u.is_empty()))
    {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            // By host only: an RPC URL's path often carries an API key.
            return Err(invalid(
                "chain.rpc_urls",
                format!("{:?}", crate::config::host_of(url)),
                "http:// or https:// URLs",
            ));
        }
    }
    for url in &chain.ws_urls {
        if !(url.starts_with("ws://") || url.starts_with("wss://")) {
            return Err(invalid(
                "chain.ws_urls",
                format!("{:?}", crate::config::host_of(url)),
                "ws:// or wss:// URLs",
            ));
        }
    }
    if !(100..=60_000).contains(&chain.rpc_timeout_ms) {
        return Err(invalid(
            "chain.rpc_timeout_ms",
            chain.rpc_timeout_ms,
            "milliseconds in 100..=60000",
        ));
    }
    if chain.rpc_retries > 10 {
        return Err(invalid(
            "chain.rpc_retries",
            chain.rpc_retries,
            "rounds in 0..=10",
        ));
    }
    if chain.gas_price_floor_gwei < Decimal::ZERO
        || chain.gas_price_floor_gwei > chain.gas_price_cap_gwei
    {
        return Err(invalid(
            "chain.gas_price_floor_gwei",
            chain.gas_price_floor_gwei,
            "0 or more, and not above chain.gas_price_cap_gwei",
        ));
    }
    if chain.gas_price_multiplier < Decimal::ONE || chain.gas_price_multiplier > Decimal::from(5) {
        return Err(invalid(
            "chain.gas_price_multiplier",
            chain.gas_price_multiplier,
            "a factor in 1..=5",
        ));
    }
    if chain.gas_limit_margin < Decimal::ONE || chain.gas_limit_margin > Decimal::from(3) {
        return Err(invalid(
            "chain.gas_limit_margin",
            chain.gas_limit_margin,
            "a factor in 1..=3",
        ));
    }
    if !(21_000..=10_000_000).contains(&chain.swap_gas_floor) {
        return Err(invalid(
            "chain.swap_gas_floor",
            chain.swap_gas_floor,
            "gas in 21000..=10000000",
        ));
    }
    if !(50..=60_000).contains(&chain.pool_poll_ms) {
        return Err(invalid(
            "chain.pool_poll_ms",
            chain.pool_poll_ms,
            "milliseconds in 50..=60000",
        ));
    }
    if !(1..=600).contains(&chain.receipt_timeout_secs) {
        return Err(invalid(
            "chain.receipt_timeout_secs",
            chain.receipt_timeout_secs,
            "seconds in 1..=600",
        ));
    }
    if !(1..=3_600).contains(&chain.swap_deadline_secs) {
        return Err(invalid(
            "chain.swap_deadline_secs",
            chain.swap_deadline_secs,
            "seconds in 1..=3600",
        ));
    }
    dex.pool_kinds()?;
    for (key, addr) in [
        ("dex.router", &dex.router),
        ("dex.factory", &dex.factory),
        ("dex.v3_factory", &dex.v3_factory),
        ("dex.v3_pool_deployer", &dex.v3_pool_deployer),
        ("dex.v3_router", &dex.v3_router),
        ("dex.v3_quoter", &dex.v3_quoter),
    ] {
        if !is_address(addr) {
            return Err(invalid(
                key,
                format!("{addr:?}"),
                "a 0x-prefixed 20-byte address",
            ));
        }
    }
    for (asset, addr) in &dex.assets {
        if !is_address(addr) {
            return Err(invalid(
                &format!("dex.assets.{asset}"),
                format!("{addr:?}"),
                "a 0x-prefixed 20-byte address",
            ));
        }
    }
    // The pool fee is every live grid's fee: a value no grid accepts would fail every create.
    if i64::from(dex.fee_bps) > super::MAX_FEE_BPS {
        return Err(invalid(
            "dex.fee_bps",
            dex.fee_bps,
            &format!(
                "basis points in 0..={} (a grid's fee_bps limit)",
                super::MAX_FEE_BPS
            ),
        ));
    }
    if dex.slippage_bps > 5_000 {
        return Err(invalid(
            "dex.slippage_bps",
            dex.slippage_bps,
            "basis points in 0..=5000",
        ));
    }
    Ok(())
}
