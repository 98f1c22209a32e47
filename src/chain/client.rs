//! A read-mostly client over the configured JSON-RPC endpoints.
//!
//! It connects to the first endpoint that answers in time and refuses one whose chain id is not
//! the configured one. Errors name an endpoint by its host only: RPC URLs often carry an API key.

use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use rust_decimal::Decimal;
use serde::Serialize;

use super::contracts::{IUniswapV2Factory, IUniswapV2Pair, IERC20};
use super::failover::FailoverTransport;
use super::units::{from_units, UnitsError};
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
}

/// An ERC-20 token as the chain describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Token {
    pub address: Address,
    pub symbol: String,
    pub decimals: u8,
}

/// A Uniswap-V2-style pair of a base and a quote token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub pair: Address,
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
            base_is_token0: token0 == base.address,
            base,
            quote,
        })
    }

    /// The pool's reserves as `(base, quote)` decimals.
    pub async fn reserves(&self, pool: &Pool) -> Result<(Decimal, Decimal), ChainError> {
        let p = IUniswapV2Pair::new(pool.pair, &self.provider);
        let r = self.bounded("getReserves", p.getReserves().call()).await?;
        pool.reserves_of(U256::from(r.reserve0), U256::from(r.reserve1))
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

    /// The pair's `Sync` events from block `from` on, oldest first: `(block, reserve0, reserve1)`.
    pub async fn sync_logs(
        &self,
        pool: &Pool,
        from: u64,
    ) -> Result<Vec<(u64, U256, U256)>, ChainError> {
        use alloy::sol_types::SolEvent;
        let filter = alloy::rpc::types::Filter::new()
            .address(pool.pair)
            .event_signature(IUniswapV2Pair::Sync::SIGNATURE_HASH)
            .from_block(from);
        let logs = self
            .bounded("eth_getLogs", self.provider.get_logs(&filter))
            .await?;
        Ok(logs
            .iter()
            .filter_map(|l| {
                let e = IUniswapV2Pair::Sync::decode_log(&l.inner).ok()?;
                Some((
                    l.block_number.unwrap_or(0),
                    U256::from(e.reserve0),
                    U256::from(e.reserve1),
                ))
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
