//! A read-mostly client over the configured JSON-RPC endpoints.
//!
//! It connects to the first endpoint that answers in time and refuses one whose chain id is not
//! the configured one. Errors name an endpoint by its host only: RPC URLs often carry an API key.

use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use rust_decimal::Decimal;
use serde::Serialize;

use super::contracts::{
    IPancakeV3Factory, IPancakeV3Pool, IUniswapV2Factory, IUniswapV2Pair, IERC20,
};
use super::failover::FailoverTransport;
use super::units::{from_units, UnitsError};
use crate::amm::PoolKind;
use crate::config::host_of;
use crate::config::ChainConfig;

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("no RPC endpoint answered ({0})")]
    Unreachable(String),
    #[error("RPC endpoint {host} is on chain {actual}, not the configured chain {expected}")]
    WrongChain {
        host: String,
        expected: u64,
        actual: u64,
    },
    #[error("RPC call {call} failed: {message}")]
    Rpc { call: String, message: String },
    #[error("{0}")]
    Units(#[from] UnitsError),
    #[error("no pool for {base}/{quote} at the configured factory")]
    NoPool { base: String, quote: String },
    #[error("no PancakeSwap V3 pool for {base}/{quote} with fee tier {fee} at dex.v3_factory")]
    NoV3Pool {
        base: String,
        quote: String,
        fee: u32,
    },
    #[error("{0}")]
    V3(#[from] crate::amm::v3::V3PoolError),
}

/// An ERC-20 token as the chain describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Token {
    pub address: Address,
    pub symbol: String,
    pub decimals: u8,
}

/// A pool of a base and a quote token: a Uniswap-V2-style pair, or a V3 pool of one fee tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// The pool contract (the pair, for V2).
    pub pair: Address,
    pub kind: PoolKind,
    pub base: Token,
    pub quote: Token,
    /// The pair orders its tokens by address: is the base token its `token0`?
    pub base_is_token0: bool,
}

#[derive(Clone)]
pub struct ChainClient {
    provider: DynProvider,
    /// The first endpoint that answered at connect.
    host: String,
    chain_id: u64,
    transport: FailoverTransport,
}

fn rpc(call: &str, e: impl std::fmt::Display) -> ChainError {
    ChainError::Rpc {
        call: call.to_string(),
        message: e.to_string(),
    }
}

impl ChainClient {
    /// Connect over every configured endpoint (see [`FailoverTransport`]): each is asked for its
    /// chain id at once; one on another chain refuses the whole configuration, and at least one
    /// must answer. Endpoints silent now are used once they answer with the right chain.
    pub async fn connect(config: &ChainConfig) -> Result<ChainClient, ChainError> {
        let timeout = Duration::from_millis(config.rpc_timeout_ms);
        let mut urls = Vec::new();
        let mut failures = Vec::new();
        for url in &config.rpc_urls {
            match url.parse::<reqwest::Url>() {
                Ok(u) => urls.push(u),
                Err(_) => failures.push(format!("{}: not a URL", host_of(url))),
            }
        }
        let transport = FailoverTransport::new(&urls, config.chain_id, timeout, config.rpc_retries);
        let mut answered = None;
        for (host, answer) in transport.probe().await {
            match answer {
                Ok(actual) if actual == config.chain_id => {
                    answered.get_or_insert(host);
                }
                Ok(actual) => {
                    return Err(ChainError::WrongChain {
                        host,
                        expected: config.chain_id,
                        actual,
                    })
                }
                Err(e) => failures.push(format!("{host}: {e}")),
            }
        }
        let Some(host) = answered else {
            return Err(ChainError::Unreachable(failures.join("; ")));
        };
        for f in &failures {
            tracing::warn!(endpoint = %f, "RPC endpoint not answering at start; used once it does");
        }
        let is_local = urls
            .first()
            .is_some_and(|u| alloy::transports::utils::guess_local_url(u.as_str()));
        let client = alloy::rpc::client::RpcClient::new(transport.clone(), is_local);
        let provider = ProviderBuilder::new().connect_client(client).erased();
        Ok(ChainClient {
            provider,
            host,
            chain_id: config.chain_id,
            transport,
        })
    }

    /// How many times a request moved to another endpoint.
    pub fn failovers(&self) -> u64 {
        self.transport.failovers()
    }

    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The endpoint in use, by host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The endpoint in use now, by host.
    pub fn current_host(&self) -> String {
        self.transport.current_host()
    }

    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// A call, its error named after it (the transport bounds each request's time).
    async fn bounded<T, E: std::fmt::Display>(
        &self,
        call: &str,
        fut: impl std::future::IntoFuture<Output = Result<T, E>>,
    ) -> Result<T, ChainError> {
        fut.await.map_err(|e| rpc(call, e))
    }

    /// BNB held by `who`, in wei.
    pub async fn native_balance_wei(&self, who: Address) -> Result<U256, ChainError> {
        self.bounded("eth_getBalance", self.provider.get_balance(who))
            .await
    }

    /// BNB (the native coin, 18 decimals) held by `who`.
    pub async fn native_balance(&self, who: Address) -> Result<Decimal, ChainError> {
        let wei: U256 = self
            .bounded("eth_getBalance", self.provider.get_balance(who))
            .await?;
        Ok(from_units(wei, 18)?)
    }

    /// Symbol and decimals of the token at `address`, read from its contract.
    pub async fn token(&self, address: Address) -> Result<Token, ChainError> {
        let erc20 = IERC20::new(address, &self.provider);
        let decimals = self.bounded("decimals", erc20.decimals().call()).await?;
        let symbol = self.bounded("symbol", erc20.symbol().call()).await?;
        Ok(Token {
            address,
            symbol,
            decimals,
        })
    }

    pub async fn token_balance(&self, token: &Token, who: Address) -> Result<Decimal, ChainError> {
        let erc20 = IERC20::new(token.address, &self.provider);
        let units = self
            .bounded("balanceOf", erc20.balanceOf(who).call())
            .await?;
        Ok(from_units(units, token.decimals)?)
    }

    /// The two tokens of the pair at `pair` (`token0`, `token1`), read from it: a pool named
    /// by its address rather than found through a factory.
    pub async fn pair_tokens(&self, pair: Address) -> Result<(Token, Token), ChainError> {
        let p = IUniswapV2Pair::new(pair, &self.provider);
        let t0 = self.bounded("token0", p.token0().call()).await?;
        let t1 = self.bounded("token1", p.token1().call()).await?;
        Ok((self.token(t0).await?, self.token(t1).await?))
    }

    /// The pair of `base` and `quote` at `factory`.
    pub async fn pool(
        &self,
        factory: Address,
        base: Token,
        quote: Token,
    ) -> Result<Pool, ChainError> {
        let f = IUniswapV2Factory::new(factory, &self.provider);
        let pair = self
            .bounded("getPair", f.getPair(base.address, quote.address).call())
            .await?;
        if pair == Address::ZERO {
            return Err(ChainError::NoPool {
                base: base.symbol,
                quote: quote.symbol,
            });
        }
        let p = IUniswapV2Pair::new(pair, &self.provider);
        let token0 = self.bounded("token0", p.token0().call()).await?;
        Ok(Pool {
            pair,
            kind: PoolKind::V2,
            base_is_token0: token0 == base.address,
            base,
            quote,
        })
    }

    /// The fee tier of the contract at `pool` if it is a V3 pool (`None`: its `fee()` call fails,
    /// as a V2 pair's does).
    pub async fn v3_fee_of(&self, pool: Address) -> Option<u32> {
        let p = IPancakeV3Pool::new(pool, &self.provider);
        let fee = self.bounded("fee", p.fee().call()).await.ok()?;
        Some(fee.to::<u32>())
    }

    /// The V3 pool of `base` and `quote` with fee tier `fee` at `factory` (PancakeSwap V3's).
    pub async fn v3_pool(
        &self,
        factory: Address,
        base: Token,
        quote: Token,
        fee: u32,
    ) -> Result<Pool, ChainError> {
        let f = IPancakeV3Factory::new(factory, &self.provider);
        let pair = self
            .bounded(
                "getPool",
                f.getPool(
                    base.address,
                    quote.address,
                    alloy::primitives::Uint::<24, 1>::from(fee),
                )
                .call(),
            )
            .await?;
        if pair == Address::ZERO {
            return Err(ChainError::NoV3Pool {
                base: base.symbol,
                quote: quote.symbol,
                fee,
            });
        }
        Ok(Pool {
            pair,
            kind: PoolKind::V3 { fee },
            // A V3 pool orders its tokens by address as a V2 pair does.
            base_is_token0: base.address < quote.address,
            base,
            quote,
        })
    }

    /// The pool of `kind` for `base`/`quote`: the V2 pair at `dex.factory`, or the V3 pool of the
    /// tier at `dex.v3_factory`.
    pub async fn pool_of_kind(
        &self,
        dex: &crate::config::DexConfig,
        kind: PoolKind,
        base: Token,
        quote: Token,
    ) -> Result<Pool, ChainError> {
        let (key, addr) = match kind {
            PoolKind::V2 => ("dex.factory", &dex.factory),
            PoolKind::V3 { .. } => ("dex.v3_factory", &dex.v3_factory),
        };
        let factory: Address = addr
            .parse()
            .map_err(|_| rpc("config", format!("{key} {addr:?} is not an address")))?;
        match kind {
            PoolKind::V2 => self.pool(factory, base, quote).await,
            PoolKind::V3 { fee } => self.v3_pool(factory, base, quote, fee).await,
        }
    }

    /// The pool's reserves as `(base, quote)` decimals (a V3 pool's virtual reserves in its
    /// current range).
    pub async fn reserves(&self, pool: &Pool) -> Result<(Decimal, Decimal), ChainError> {
        if let PoolKind::V3 { .. } = pool.kind {
            return self.v3_reserves(pool, None).await;
        }
        let p = IUniswapV2Pair::new(pool.pair, &self.provider);
        let r = self.bounded("getReserves", p.getReserves().call()).await?;
        pool.reserves_of(U256::from(r.reserve0), U256::from(r.reserve1))
    }

    /// A V3 pool's virtual reserves `(base, quote)` in its current range, at `block` or the latest.
    async fn v3_reserves(
        &self,
        pool: &Pool,
        block: Option<u64>,
    ) -> Result<(Decimal, Decimal), ChainError> {
        let (_, sqrt, _, liquidity) = self.v3_slot0(pool, block).await?;
        let (r0, r1) = crate::amm::v3::virtual_reserves(sqrt, liquidity);
        pool.reserves_of(r0, r1)
    }

    /// A V3 pool's price, tick and in-range liquidity, read at one block (`block`, or the latest
    /// resolved first: price, liquidity and ticks from different blocks, or nodes, would not add
    /// up), and that block.
    async fn v3_slot0(
        &self,
        pool: &Pool,
        block: Option<u64>,
    ) -> Result<(alloy::eips::BlockId, U256, i32, u128), ChainError> {
        let p = IPancakeV3Pool::new(pool.pair, &self.provider);
        let block = match block {
            Some(b) => b,
            None => self.block_number().await?,
        };
        let at = alloy::eips::BlockId::number(block);
        let slot0 = self.bounded("slot0", p.slot0().block(at).call()).await?;
        let liquidity = self
            .bounded("liquidity", p.liquidity().block(at).call())
            .await?;
        let tick = i32::try_from(slot0.tick).unwrap_or(0);
        Ok((at, U256::from(slot0.sqrtPriceX96), tick, liquidity))
    }

    /// A V3 pool's whole swap state: price, tick, in-range liquidity and the initialized ticks
    /// of the `words_each_side` tick-bitmap words on each side of the price's word (256 ticks of
    /// spacing each), at `block` or the latest. One bitmap read per word and one `ticks` read per
    /// initialized tick.
    pub async fn v3_state(
        &self,
        pool: &Pool,
        words_each_side: i32,
        block: Option<u64>,
    ) -> Result<crate::amm::v3::V3Pool, ChainError> {
        let PoolKind::V3 { fee } = pool.kind else {
            return Err(rpc("slot0", "not a V3 pool"));
        };
        let spacing = crate::amm::v3::tick_spacing_of(fee)
            .ok_or_else(|| rpc("fee", format!("fee tier {fee}")))?;
        let p = IPancakeV3Pool::new(pool.pair, &self.provider);
        let (at, sqrt_price_x96, tick, liquidity) = self.v3_slot0(pool, block).await?;
        let word = crate::amm::v3::V3Pool::word_of(tick.div_euclid(spacing));
        let (lo, hi) = (
            (word - words_each_side).max(i32::from(i16::MIN)),
            (word + words_each_side).min(i32::from(i16::MAX)),
        );
        let mut ticks = std::collections::BTreeMap::new();
        for w in lo..=hi {
            let bits = self
                .bounded("tickBitmap", p.tickBitmap(w as i16).block(at).call())
                .await?;
            for bit in 0..256usize {
                if !bits.bit(bit) {
                    continue;
                }
                let t = (w * 256 + bit as i32) * spacing;
                let info = self
                    .bounded(
                        "ticks",
                        p.ticks(
                            alloy::primitives::Signed::<24, 1>::try_from(t).unwrap_or_default(),
                        )
                        .block(at)
                        .call(),
                    )
                    .await?;
                ticks.insert(t, info.liquidityNet);
            }
        }
        Ok(crate::amm::v3::V3Pool {
            fee,
            tick_spacing: spacing,
            sqrt_price_x96,
            tick,
            liquidity,
            ticks,
            known_words: (lo, hi),
        })
    }

    /// BNB's price in `pool`'s quote when the pool itself gives it: its own price (`pool_price`)
    /// when it trades WBNB against the quote, 1 when its quote is WBNB; `None`: the WBNB/quote
    /// pool must be read ([`ChainClient::bnb_price_in`]).
    pub fn bnb_price_within(pool: &Pool, wbnb: Address, pool_price: Decimal) -> Option<Decimal> {
        if pool.base.address == wbnb {
            (pool_price > Decimal::ZERO).then_some(pool_price)
        } else if pool.quote.address == wbnb {
            Some(Decimal::ONE)
        } else {
            None
        }
    }

    /// BNB's price in `quote` from the WBNB/`quote` pool of `factory` (`None` without one).
    pub async fn bnb_price_in(
        &self,
        factory: Address,
        wbnb: Address,
        quote: &Token,
    ) -> Option<Decimal> {
        let wbnb = self.token(wbnb).await.ok()?;
        let pool = self.pool(factory, wbnb, quote.clone()).await.ok()?;
        let (b, q) = self.reserves(&pool).await.ok()?;
        crate::amm::reserves_price(b, q)
    }

    /// The pair's reserves as of block `block` (a reading two feeds can order).
    pub async fn reserves_at(
        &self,
        pool: &Pool,
        block: u64,
    ) -> Result<(Decimal, Decimal), ChainError> {
        if let PoolKind::V3 { .. } = pool.kind {
            return self.v3_reserves(pool, Some(block)).await;
        }
        let p = IUniswapV2Pair::new(pool.pair, &self.provider);
        let r = self
            .bounded(
                "getReserves",
                p.getReserves()
                    .block(alloy::eips::BlockId::number(block))
                    .call(),
            )
            .await?;
        pool.reserves_of(U256::from(r.reserve0), U256::from(r.reserve1))
    }

    /// The pool's state events (V2 `Sync`, V3 `Swap`) from block `from` on, oldest first:
    /// `(block, reserve0, reserve1)`, a V3 pool's reserves virtual.
    pub async fn sync_logs(
        &self,
        pool: &Pool,
        from: u64,
    ) -> Result<Vec<(u64, U256, U256)>, ChainError> {
        let filter = alloy::rpc::types::Filter::new()
            .address(pool.pair)
            .event_signature(pool.state_topic())
            .from_block(from);
        let logs = self
            .bounded("eth_getLogs", self.provider.get_logs(&filter))
            .await?;
        Ok(logs
            .iter()
            .filter_map(|l| {
                let (r0, r1) = pool.raw_reserves_of_event(&l.inner.data.data)?;
                Some((l.block_number.unwrap_or(0), r0, r1))
            })
            .collect())
    }

    /// The latest block's number.
    /// Each RPC endpoint's request durations (for `/metrics`).
    pub fn rpc_latency(&self) -> Vec<super::failover::EndpointLatency> {
        self.transport.latency()
    }

    /// How far the chain's head lags behind `now_secs` (the latest block's timestamp), seconds.
    pub async fn head_lag_secs(&self, now_secs: u64) -> Result<i64, ChainError> {
        let block = self
            .bounded(
                "eth_getBlockByNumber",
                self.provider
                    .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest),
            )
            .await?
            .ok_or_else(|| rpc("eth_getBlockByNumber", "no latest block"))?;
        let ts = i64::try_from(block.header.timestamp).unwrap_or(i64::MAX);
        Ok(i64::try_from(now_secs)
            .unwrap_or(i64::MAX)
            .saturating_sub(ts))
    }

    pub async fn block_number(&self) -> Result<u64, ChainError> {
        self.bounded("eth_blockNumber", self.provider.get_block_number())
            .await
    }
}

impl Pool {
    /// The event the pool logs with its state after every trade: V2's `Sync`, PancakeSwap V3's
    /// `Swap` (nine fields: its topic is not Uniswap V3's).
    pub fn state_topic(&self) -> alloy::primitives::B256 {
        use alloy::sol_types::SolEvent;
        match self.kind {
            PoolKind::V2 => IUniswapV2Pair::Sync::SIGNATURE_HASH,
            PoolKind::V3 { .. } => IPancakeV3Pool::Swap::SIGNATURE_HASH,
        }
    }

    /// The raw reserves `(token0, token1)` a state event's data carries: a `Sync`'s two words, or
    /// the virtual reserves of a V3 `Swap`'s price and liquidity (its third and fourth words, in
    /// PancakeSwap's and Uniswap's layout alike).
    pub fn raw_reserves_of_event(&self, data: &[u8]) -> Option<(U256, U256)> {
        match self.kind {
            PoolKind::V2 => (data.len() >= 64).then(|| {
                (
                    U256::from_be_slice(&data[..32]),
                    U256::from_be_slice(&data[32..64]),
                )
            }),
            PoolKind::V3 { .. } => {
                if data.len() < 128 {
                    return None;
                }
                let sqrt = U256::from_be_slice(&data[64..96]);
                let liquidity = u128::try_from(U256::from_be_slice(&data[96..128])).ok()?;
                Some(crate::amm::v3::virtual_reserves(sqrt, liquidity))
            }
        }
    }

    /// The pair's raw reserves `(token0, token1)` as `(base, quote)` decimals.
    pub fn reserves_of(&self, r0: U256, r1: U256) -> Result<(Decimal, Decimal), ChainError> {
        let (rb, rq) = if self.base_is_token0 {
            (r0, r1)
        } else {
            (r1, r0)
        };
        Ok((
            from_units(rb, self.base.decimals)?,
            from_units(rq, self.quote.decimals)?,
        ))
    }
}
