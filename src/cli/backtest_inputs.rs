//! What every backtest command reads from its flags: the data window, the fill model (with a pool's
//! reserves read from the chain when asked), the simulated venue's delays and failures.

use clap::Args;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::{CliError, Context};
use crate::backtest::data::ReadOptions;
use crate::model::params::parse_decimal;
use crate::model::Symbol;
use crate::venue::sim::{SimDelays, PPM};

#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Start of the window: 2025-06-01, 2025-06-01T12:00:00Z or epoch milliseconds.
    #[arg(long)]
    pub from: Option<String>,
    /// End of the window (exclusive), same forms.
    #[arg(long)]
    pub to: Option<String>,
    /// Count and report malformed rows instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// Market orders fill this many basis points worse than the price seen.
    #[arg(long, default_value_t = 0)]
    pub slippage_bps: u32,
    #[command(flatten)]
    pub venue: VenueArgs,
    #[command(flatten)]
    pub fill: FillArgs,
}

/// How fills are priced: at the limit (the pinned model), or as a constant-product pool swap.
#[derive(Debug, Args, Default)]
pub struct FillArgs {
    /// `limit`: at the order's limit price with a flat fee; `amm`: what a Uniswap-V2-style pool
    /// whose price is the trigger price returns for the order's size, after the pool fee
    /// (`fee_bps`), less gas.
    #[arg(long, default_value = "limit", value_parser = ["limit", "amm"])]
    pub fill_model: String,
    /// The pool for `--fill-model amm`, by its reserves at any one price: `BASE:QUOTE`
    /// (e.g. `250:25000000` for 250 BTC against 25 M USDT). Its depth holds at every price.
    #[arg(long, conflicts_with = "pool_pair")]
    pub pool_reserves: Option<String>,
    /// The pool for `--fill-model amm` by its address, read once from the configured node
    /// (`chain.rpc_urls`): a V2 pair's reserves, or a PancakeSwap V3 pool's liquidity profile
    /// (its initialized ticks around the price, swapped through with V3's exact math); which
    /// token is the base comes from `[dex.assets]`, else from the tokens' symbols.
    #[arg(long, conflicts_with = "pool_profile")]
    pub pool_pair: Option<String>,
    /// The block to read `--pool-pair` at (default: the latest).
    #[arg(long, requires = "pool_pair")]
    pub pool_block: Option<u64>,
    /// A V3 pool's liquidity profile from a JSON file (as `--save-pool-profile` writes it).
    #[arg(long, conflicts_with = "pool_reserves")]
    pub pool_profile: Option<std::path::PathBuf>,
    /// Write the V3 profile read by `--pool-pair` to this file, to run again without the node.
    #[arg(long, requires = "pool_pair")]
    pub save_pool_profile: Option<std::path::PathBuf>,
    /// Gas of one swap (units; PancakeSwap V2 swaps use ~110,000-150,000).
    #[arg(long, default_value_t = 150_000)]
    pub gas_units: u64,
    /// Gas price in gwei (BSC: ~0.1).
    #[arg(long, default_value = "0.1")]
    pub gas_price_gwei: String,
    /// BNB's price in the quote asset, to turn gas into quote.
    #[arg(long, default_value = "600")]
    pub bnb_price: String,
}

/// The pool `--fill-model amm` fills through: a constant-product pool, or a V3 pool's profile.
#[derive(Debug, Default)]
pub struct FillPool {
    pub amm: Option<crate::amm::AmmPool>,
    pub v3: Option<crate::amm::v3::V3FillModel>,
}

impl FillArgs {
    fn gas_quote(&self) -> Result<Decimal, CliError> {
        let decimal = |flag: &str, text: &str| {
            parse_decimal(text)
                .filter(|d| *d >= Decimal::ZERO)
                .ok_or_else(|| {
                    CliError::invalid(format!("--{flag} {text:?}: expected a decimal >= 0"))
                })
        };
        let gwei = decimal("gas-price-gwei", &self.gas_price_gwei)?;
        let bnb = decimal("bnb-price", &self.bnb_price)?;
        Ok(crate::amm::AmmPool::gas_quote_of(self.gas_units, gwei, bnb))
    }

    pub async fn pool(&self, ctx: &Context, symbol: &Symbol) -> Result<FillPool, CliError> {
        if self.fill_model != "amm" {
            if self.pool_reserves.is_some()
                || self.pool_pair.is_some()
                || self.pool_profile.is_some()
            {
                return Err(CliError::invalid(
                    "--pool-reserves, --pool-pair and --pool-profile are for --fill-model amm",
                ));
            }
            return Ok(FillPool::default());
        }
        if let Some(path) = &self.pool_profile {
            let text = std::fs::read_to_string(path).map_err(|e| {
                CliError::invalid(format!("--pool-profile {}: {e}", path.display()))
            })?;
            let profile: crate::amm::v3::V3Profile = serde_json::from_str(&text).map_err(|e| {
                CliError::invalid(format!(
                    "--pool-profile {}: not a V3 profile: {e}",
                    path.display()
                ))
            })?;
            return self.v3_model(
                profile,
                &format!("--pool-profile {}", path.display()),
                ctx.config.dex.slippage_bps,
            );
        }
        if let Some(pair) = &self.pool_pair {
            let shown = format!("--pool-pair {pair}");
            let (client, pool) = pool_at(ctx, symbol, pair).await?;
            if let crate::amm::PoolKind::V3 { .. } = pool.kind {
                // Eight tick-bitmap words on each side of the price.
                let state = client
                    .v3_state(&pool, 8, self.pool_block)
                    .await
                    .map_err(|e| read_failed(pair, e))?;
                let profile = crate::amm::v3::V3Profile::of(
                    &state,
                    pool.base_is_token0,
                    pool.base.decimals,
                    pool.quote.decimals,
                );
                if let Some(path) = &self.save_pool_profile {
                    let text = serde_json::to_string_pretty(&profile)
                        .map_err(|e| CliError::runtime(e.to_string()))?;
                    crate::private_files::replace(path, text.as_bytes()).map_err(|e| {
                        CliError::runtime(format!("--save-pool-profile {}: {e}", path.display()))
                    })?;
                }
                return self.v3_model(profile, &shown, ctx.config.dex.slippage_bps);
            }
            if self.save_pool_profile.is_some() {
                return Err(CliError::invalid(format!(
                    "--save-pool-profile: {shown} is a V2 pair, which has no tick profile"
                )));
            }
            let (b, q) = client
                .reserves(&pool)
                .await
                .map_err(|e| read_failed(pair, e))?;
            return self.constant_product(b, q, &shown);
        }
        let Some(reserves) = &self.pool_reserves else {
            return Err(CliError::invalid(
                "--fill-model amm needs the pool: --pool-reserves BASE:QUOTE, --pool-pair ADDRESS or --pool-profile FILE",
            ));
        };
        let bad = || {
            CliError::invalid(format!(
                "--pool-reserves {reserves:?}: expected BASE:QUOTE, two decimals > 0"
            ))
        };
        let (b, q) = reserves.split_once(':').ok_or_else(bad)?;
        self.constant_product(
            parse_decimal(b.trim()).ok_or_else(bad)?,
            parse_decimal(q.trim()).ok_or_else(bad)?,
            &format!("--pool-reserves {reserves:?}"),
        )
    }

    /// The constant-product pool of reserves `(b, q)`, gas as the flags give it.
    fn constant_product(&self, b: Decimal, q: Decimal, shown: &str) -> Result<FillPool, CliError> {
        let amm = crate::amm::AmmPool::from_reserves(b, q, self.gas_quote()?)
            .ok_or_else(|| CliError::invalid(format!("{shown}: the pool has no liquidity")))?;
        Ok(FillPool {
            amm: Some(amm),
            v3: None,
        })
    }

    /// The V3 model of `profile`; its swaps carry the live bound (`dex.slippage_bps`).
    fn v3_model(
        &self,
        profile: crate::amm::v3::V3Profile,
        shown: &str,
        slippage_bps: u32,
    ) -> Result<FillPool, CliError> {
        let model = crate::amm::v3::V3FillModel::new(profile, self.gas_quote()?)
            .map_err(|e| CliError::invalid(format!("{shown}: {e}")))?
            .with_bound(slippage_bps);
        if model.profile.liquidity == "0" {
            return Err(CliError::invalid(format!(
                "{shown}: the pool has no liquidity at its price"
            )));
        }
        Ok(FillPool {
            amm: None,
            v3: Some(model),
        })
    }
}

fn read_failed(pair: &str, e: crate::chain::ChainError) -> CliError {
    CliError::runtime(format!(
        "--pool-pair {pair}: cannot read the pool from chain.rpc_urls: {e}"
    ))
}

/// The pool at `pair` as `symbol`'s, read once from the configured node with the client that
/// read it: a V3 pool when it answers `fee()` with one of PancakeSwap V3's tiers, else a V2 pair.
async fn pool_at(
    ctx: &Context,
    symbol: &Symbol,
    pair: &str,
) -> Result<(crate::chain::ChainClient, crate::chain::Pool), CliError> {
    let address: alloy::primitives::Address = pair
        .trim()
        .parse()
        .map_err(|_| CliError::invalid(format!("--pool-pair {pair:?}: not an address")))?;
    let failed = |e: crate::chain::ChainError| read_failed(pair, e);
    let client = crate::chain::ChainClient::connect(&ctx.config.chain)
        .await
        .map_err(failed)?;
    let kind = match client.v3_fee_of(address).await {
        None => crate::amm::PoolKind::V2,
        Some(fee) if crate::amm::v3::tick_spacing_of(fee).is_some() => {
            crate::amm::PoolKind::V3 { fee }
        }
        Some(fee) => {
            return Err(CliError::invalid(format!(
                "--pool-pair {pair}: fee tier {fee} is not one of PancakeSwap V3's (100, 500, 2500, 10000)"
            )))
        }
    };
    let (t0, t1) = client.pair_tokens(address).await.map_err(failed)?;
    // The configured token address decides; without one, the token's own symbol.
    let is_base = |t: &crate::chain::Token| match ctx.config.dex.asset_address(symbol.base()) {
        Some(a) => t.address == a,
        None => t.symbol.eq_ignore_ascii_case(symbol.base()),
    };
    let (base, quote) = match (is_base(&t0), is_base(&t1)) {
        (true, false) => (t0, t1),
        (false, true) => (t1, t0),
        _ => {
            return Err(CliError::invalid(format!(
                "--pool-pair {pair}: cannot tell which of its tokens ({}, {}) is {}; set \
                 [dex.assets] {} = \"ADDRESS\"",
                t0.symbol,
                t1.symbol,
                symbol.base(),
                symbol.base()
            )))
        }
    };
    let pool = crate::chain::Pool {
        pair: address,
        kind,
        base_is_token0: base.address < quote.address,
        base,
        quote,
    };
    Ok((client, pool))
}

/// A venue that answers late and sometimes fails, to see a strategy with orders in flight.
#[derive(Debug, Args, Default)]
pub struct VenueArgs {
    /// The venue answers each order this many milliseconds (of data time) after it was sent;
    /// a market order fills at the price of that moment. 0: at once.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Share of orders (0 to 1) that fail retryably, as a swap that times out.
    #[arg(long, default_value = "0")]
    pub fail_rate: String,
    /// Share of orders (0 to 1) that fail for good, as a reverted swap.
    #[arg(long, default_value = "0")]
    pub reject_rate: String,
    /// Seed of the failure draws (same seed, same data: same result to the byte).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl VenueArgs {
    pub(crate) fn delays(&self) -> Result<SimDelays, CliError> {
        let rate = |flag: &str, text: &str| -> Result<u32, CliError> {
            let d: Decimal = text.trim().parse().map_err(|_| {
                CliError::invalid(format!("--{flag} {text:?}: not a decimal number"))
            })?;
            if d < Decimal::ZERO || d > Decimal::ONE {
                return Err(CliError::invalid(format!(
                    "--{flag} {text}: must be between 0 and 1"
                )));
            }
            (d * Decimal::from(PPM))
                .round()
                .to_u32()
                .ok_or_else(|| CliError::invalid(format!("--{flag} {text}: out of range")))
        };
        let fail_ppm = rate("fail-rate", &self.fail_rate)?;
        let reject_ppm = rate("reject-rate", &self.reject_rate)?;
        if u64::from(fail_ppm) + u64::from(reject_ppm) > u64::from(PPM) {
            return Err(CliError::invalid(
                "--fail-rate plus --reject-rate must not exceed 1",
            ));
        }
        let latency_us = i64::try_from(self.latency_ms)
            .ok()
            .and_then(|ms| ms.checked_mul(1000))
            .ok_or_else(|| CliError::invalid("--latency-ms: out of range"))?;
        Ok(SimDelays {
            latency_us,
            fail_ppm,
            reject_ppm,
            seed: self.seed,
        })
    }
}

/// `2025-06-01`, an RFC 3339 time, or epoch milliseconds → epoch microseconds.
pub fn parse_time_us(flag: &str, text: &str) -> Result<i64, CliError> {
    use chrono::{DateTime, NaiveDate};
    let t = text.trim();
    if let Ok(ms) = t.parse::<i64>() {
        return Ok(ms * 1000);
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        if let Some(dt) = d.and_hms_opt(0, 0, 0) {
            return Ok(dt.and_utc().timestamp_micros());
        }
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.timestamp_micros());
    }
    Err(CliError::invalid(format!(
        "--{flag} {text:?}: expected YYYY-MM-DD, an RFC 3339 time or epoch milliseconds"
    )))
}

pub(crate) fn read_options(common: &CommonArgs) -> Result<ReadOptions, CliError> {
    let from_us = common
        .from
        .as_deref()
        .map(|t| parse_time_us("from", t))
        .transpose()?;
    let to_us = common
        .to
        .as_deref()
        .map(|t| parse_time_us("to", t))
        .transpose()?;
    if let (Some(f), Some(t)) = (from_us, to_us) {
        if f >= t {
            return Err(CliError::invalid("--from must be before --to"));
        }
    }
    Ok(ReadOptions {
        from_us,
        to_us,
        skip_bad_rows: common.skip_bad_rows,
    })
}
