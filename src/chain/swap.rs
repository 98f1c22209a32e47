//! One wallet's swaps through PancakeSwap's V2 router (`swapExactTokensForTokens`) or its V3 swap
//! router (`exactInputSingle`): approve once (bounded, per router), sign with the bot's own nonce, commit the signed bytes, broadcast, wait for the receipt, and read what really moved
//! from the token transfers it logged.
//!
//! Never twice: a transaction is on record (`chain_txs`, status `signed`) before it is sent; a
//! node that refuses it marks it `rejected` and its nonce is reused; one that answers nothing
//! leaves it `broadcast` for reconciliation, never for a new signature.

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolEvent};
use rust_decimal::Decimal;
use tokio::sync::Mutex;

mod reconcile;
mod remembered;
mod send;
mod settle;

use remembered::Remembered;

use super::client::{ChainClient, ChainError, Pool, Token};
use super::contracts::{IPancakeV3SwapRouter, IUniswapV2Router02, IERC20};
use super::gas::{fee_bnb, gas_price_wei};
use super::units::{from_units, to_units};
use crate::amm::swap_math::{min_amount_out, price_impact};
use crate::amm::PoolKind;
use crate::config::{ChainConfig, DexConfig};
use crate::model::order::Side;
use crate::store::chain_txs::SwapOrigin;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    #[error("{0}")]
    Chain(#[from] ChainError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Units(#[from] super::units::UnitsError),
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("approve of {token} reverted (tx {tx_hash})")]
    ApproveFailed { token: String, tx_hash: String },
    /// The approval never ran: replaced at its nonce, or its nonce taken by another transaction.
    #[error("approve of {token} not mined: {detail}; nothing was approved")]
    ApproveNotMined { token: String, detail: String },
}

/// A swap the engine asked for: spend exactly `amount_in` (quote for a buy, base for a sell), fill
/// no worse than `limit` (quote per base) after the pool fee and slippage.
#[derive(Debug, Clone)]
pub struct SwapOrder {
    pub side: Side,
    pub amount_in: Decimal,
    pub limit: Decimal,
    /// The order's client id, kept with its transaction.
    pub reference: String,
    /// The order behind the swap (kept with its transaction for recovery after a crash).
    pub origin: Option<SwapOrigin>,
}

/// What the chain did with a swap. Amounts are what the transfers logged, to the token unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwapResult {
    Filled {
        tx_hash: B256,
        /// Base bought or sold, quote spent or received.
        base: Decimal,
        quote: Decimal,
        gas_used: u64,
        gas_price_wei: u128,
        fee_bnb: Decimal,
        /// The pool's mid price before the swap and its price impact in bps, from the pair's
        /// `Sync` event in the receipt.
        impact: Option<(Decimal, Decimal)>,
    },
    Failed {
        tx_hash: Option<B256>,
        reason: String,
        retryable: bool,
        /// Gas paid for nothing (zero when nothing was mined).
        fee_bnb: Decimal,
    },
}

/// What the chain did with a transfer (a drip or a sweep).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferResult {
    /// The transaction the chain decided (`None`: never sent).
    pub tx_hash: Option<B256>,
    /// It was mined and moved the funds.
    pub mined: bool,
    pub fee_bnb: Decimal,
    pub error: Option<String>,
}

/// What reconciliation made of one transaction left unresolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
    pub tx_hash: B256,
    pub purpose: String,
    pub reference: Option<String>,
    /// `mined`, `reverted`, `dropped`, or still `broadcast` (no receipt within the timeout).
    pub status: &'static str,
}

/// What a transaction is for, kept with it.
struct TxMeta<'a> {
    /// `swap`, `approve`.
    purpose: &'a str,
    /// The order's client id.
    reference: Option<&'a str>,
    origin: Option<SwapOrigin>,
    /// A swap's deadline (chain time): a stuck swap is sped up before it, cancelled after.
    deadline: Option<u64>,
    /// BNB sent along (a drip, a BNB sweep).
    value: U256,
}

/// A transaction sent and answered.
struct Sent {
    /// The transaction the chain mined at the nonce (the original, a speed-up or a cancel).
    tx_hash: B256,
    receipt: Option<TransactionReceipt>,
    /// A cancel took the nonce: the call itself never ran.
    cancelled: bool,
}

pub struct Swapper {
    client: ChainClient,
    wallet: EthereumWallet,
    address: Address,
    store: Store,
    chain: ChainConfig,
    dex: DexConfig,
    router: Address,
    /// PancakeSwap V3's swap router (`dex.v3_router`).
    v3_router: Address,
    /// The next nonce to use, once known (read from the chain and the record when not: at the
    /// first send, and after the node refused one); one sender per wallet at a time.
    nonce: Mutex<Option<u64>>,
    remembered: Remembered,
    /// `chain.private_tx_url`: swaps go there and never to a public endpoint.
    private: Option<alloy::providers::DynProvider>,
    /// The WBNB/quote pool of each quote token, found once (gas priced in quote).
    bnb_pools: std::sync::Mutex<std::collections::HashMap<Address, Pool>>,
}

fn address_of(key: &str, value: &str) -> Result<Address, ChainError> {
    value.parse().map_err(|_| ChainError::Rpc {
        call: "config".into(),
        message: format!("{key} {value:?} is not an address"),
    })
}

impl Swapper {
    pub fn new(
        client: ChainClient,
        signer: PrivateKeySigner,
        store: Store,
        chain: ChainConfig,
        dex: DexConfig,
    ) -> Result<Swapper, SwapError> {
        let address = signer.address();
        let private = match chain.private_tx_url.as_str() {
            "" => None,
            url => {
                let parsed = url.parse().map_err(|_| ChainError::Rpc {
                    call: "config".into(),
                    message: format!(
                        "chain.private_tx_url ({}) is not a URL",
                        crate::config::host_of(url)
                    ),
                })?;
                Some(
                    alloy::providers::ProviderBuilder::new()
                        .connect_http(parsed)
                        .erased(),
                )
            }
        };
        Ok(Swapper {
            private,
            router: address_of("dex.router", &dex.router)?,
            v3_router: address_of("dex.v3_router", &dex.v3_router)?,
            client,
            wallet: EthereumWallet::from(signer),
            address,
            store,
            chain,
            dex,
            nonce: Mutex::new(None),
            remembered: Remembered::default(),
            bnb_pools: Default::default(),
        })
    }

    pub fn address(&self) -> Address {
        self.address
    }

    /// BNB's price in `pool`'s quote now, to put a swap's gas in quote: the swap's own price
    /// when the pool trades WBNB against the quote, 1 when the quote is WBNB, else the
    /// WBNB/quote pool's price (`None`: no such pool, or it could not be read).
    pub async fn bnb_price(&self, pool: &Pool, swap_price: Decimal) -> Option<Decimal> {
        let wbnb = self.dex.asset_address("BNB")?;
        if let Some(p) = ChainClient::bnb_price_within(pool, wbnb, swap_price) {
            return Some(p);
        }
        let known = self
            .bnb_pools
            .lock()
            .ok()
            .and_then(|p| p.get(&pool.quote.address).cloned());
        let bnb_pool = match known {
            Some(p) => p,
            None => {
                let factory = self.dex.factory.parse().ok()?;
                let wbnb = self.client.token(wbnb).await.ok()?;
                let p = self
                    .client
                    .pool(factory, wbnb, pool.quote.clone())
                    .await
                    .ok()?;
                if let Ok(mut cache) = self.bnb_pools.lock() {
                    cache.insert(pool.quote.address, p.clone());
                }
                p
            }
        };
        let (b, q) = self.client.reserves(&bnb_pool).await.ok()?;
        crate::amm::reserves_price(b, q)
    }

    pub fn client(&self) -> &ChainClient {
        &self.client
    }

    /// The gas price the next transaction will pay (the node's, remembered for a few seconds,
    /// through the gas policy): what a BNB sweep leaves for its own fee.
    pub async fn next_gas_price_wei(&self) -> Result<u128, SwapError> {
        let node = match self.remembered.gas_price() {
            Some(p) => p,
            None => {
                let p = self
                    .client
                    .provider()
                    .get_gas_price()
                    .await
                    .map_err(|e| rpc("eth_gasPrice", e))?;
                self.remembered.set_gas_price(p);
                p
            }
        };
        Ok(gas_price_wei(node, &self.chain)?)
    }

    /// Send `amount` (in the asset's smallest unit) of BNB (`token` `None`) or of an ERC-20 to
    /// `to`, recorded ahead under `purpose` / `reference` like every transaction of this wallet
    /// (so a restart reconciles it and it is never sent twice), and wait for the chain.
    pub async fn transfer(
        &self,
        to: Address,
        token: Option<Address>,
        amount: U256,
        purpose: &str,
        reference: &str,
    ) -> Result<TransferResult, SwapError> {
        let (target, input, value) = match token {
            None => (to, Vec::new(), amount),
            Some(token) => (
                token,
                IERC20::transferCall { to, value: amount }.abi_encode(),
                U256::ZERO,
            ),
        };
        let sent = self
            .send(
                target,
                input,
                TxMeta {
                    purpose,
                    reference: Some(reference),
                    origin: None,
                    deadline: None,
                    value,
                },
                &|_| {},
            )
            .await?;
        Ok(match sent {
            Err(reason) => TransferResult {
                tx_hash: None,
                mined: false,
                fee_bnb: Decimal::ZERO,
                error: Some(reason),
            },
            Ok(Sent {
                tx_hash,
                receipt: Some(r),
                cancelled,
            }) => TransferResult {
                tx_hash: Some(tx_hash),
                mined: r.status() && !cancelled,
                fee_bnb: fee_bnb(r.gas_used, r.effective_gas_price)?,
                error: (!r.status() || cancelled).then(|| {
                    if cancelled {
                        "stuck, cancelled at its nonce".to_string()
                    } else {
                        "reverted on chain".to_string()
                    }
                }),
            },
            Ok(Sent { tx_hash, .. }) => TransferResult {
                tx_hash: Some(tx_hash),
                mined: false,
                fee_bnb: Decimal::ZERO,
                error: Some("another transaction took its nonce".into()),
            },
        })
    }

    /// Swap on `pool` as `order` says. Errors are for what went wrong around the swap (database,
    /// RPC); a swap the chain refused is a `SwapResult::Failed` with its reason.
    pub async fn swap(&self, pool: &Pool, order: &SwapOrder) -> Result<SwapResult, SwapError> {
        self.swap_reporting(pool, order, &|_| {}).await
    }

    /// [`Swapper::swap`], telling `on_broadcast` the transaction hash as soon as it is sent (the
    /// venue reports the order accepted under it).
    pub async fn swap_reporting(
        &self,
        pool: &Pool,
        order: &SwapOrder,
        on_broadcast: &(dyn Fn(B256) + Sync),
    ) -> Result<SwapResult, SwapError> {
        let (token_in, token_out) = match order.side {
            Side::Buy => (&pool.quote, &pool.base),
            Side::Sell => (&pool.base, &pool.quote),
        };
        let amount_in = to_units(order.amount_in, token_in.decimals)?;
        // The bound after the pool's own fee: a V3 pool's tier, or the V2 pair's configured fee.
        let min_out = min_amount_out(
            order.side,
            order.amount_in,
            order.limit,
            pool.kind.fee_bps(self.dex.fee_bps),
            self.dex.slippage_bps,
        );
        let min_out = to_units(min_out, token_out.decimals)?;
        let router = self.router_for(pool.kind);
        self.ensure_allowance(token_in, router, amount_in).await?;
        let deadline = self.chain_time().await? + self.chain.swap_deadline_secs;
        let input = swap_call(
            pool.kind,
            token_in.address,
            token_out.address,
            amount_in,
            min_out,
            self.address,
            deadline,
        );
        let sent = match self
            .send(
                router,
                input,
                TxMeta {
                    purpose: "swap",
                    reference: Some(&order.reference),
                    origin: order.origin.clone(),
                    deadline: Some(deadline),
                    value: U256::ZERO,
                },
                on_broadcast,
            )
            .await?
        {
            Ok(sent) => sent,
            Err(reason) => {
                return Ok(SwapResult::Failed {
                    tx_hash: None,
                    reason,
                    retryable: true,
                    fee_bnb: Decimal::ZERO,
                })
            }
        };
        let Some(receipt) = sent.receipt else {
            return Ok(SwapResult::Failed {
                tx_hash: Some(sent.tx_hash),
                reason: "dropped: another transaction took its nonce".into(),
                retryable: true,
                fee_bnb: Decimal::ZERO,
            });
        };
        if sent.cancelled {
            return Ok(SwapResult::Failed {
                tx_hash: Some(sent.tx_hash),
                reason: format!(
                    "no receipt within {} s: cancelled at its nonce by a zero-value self-send",
                    self.chain.receipt_timeout_secs
                ),
                retryable: true,
                fee_bnb: fee_bnb(receipt.gas_used, receipt.effective_gas_price)?,
            });
        }
        let result = self.result_of(&receipt, pool, order.side)?;
        self.record_impact(&result).await;
        Ok(result)
    }

    /// The router a pool of `kind` is traded through.
    pub fn router_for(&self, kind: PoolKind) -> Address {
        match kind {
            PoolKind::V2 => self.router,
            PoolKind::V3 { .. } => self.v3_router,
        }
    }

    /// Keep which pool filled a swap with its transaction, and the initialized ticks it crossed
    /// as quoted (for the trade history; a failure to write it only loses that detail).
    pub async fn record_pool(&self, tx_hash: B256, pool: &Pool, ticks_crossed: Option<u32>) {
        if let Err(e) = self
            .store
            .set_swap_pool(
                &tx_hash.to_string(),
                &pool.kind.to_string(),
                &pool.pair.to_string(),
                ticks_crossed.map(i64::from),
            )
            .await
        {
            tracing::warn!(tx_hash = %tx_hash, error = %e, "cannot record the swap's pool");
        }
    }

    /// Keep a filled swap's mid price before it and its price impact with its transaction (for
    /// the trade history; a failure to write it only loses that detail).
    pub(crate) async fn record_impact(&self, result: &SwapResult) {
        if let SwapResult::Filled {
            tx_hash,
            impact: Some((mid, bps)),
            ..
        } = result
        {
            let (mid, bps) = (mid.round_dp(8).normalize(), bps.normalize());
            if let Err(e) = self
                .store
                .set_swap_impact(&tx_hash.to_string(), &mid.to_string(), &bps.to_string())
                .await
            {
                tracing::warn!(tx_hash = %tx_hash, error = %e, "cannot record the swap's price impact");
            }
        }
    }

    /// What a mined swap did, from its receipt: the amounts its transfers logged, or a revert.
    fn result_of(
        &self,
        receipt: &TransactionReceipt,
        pool: &Pool,
        side: Side,
    ) -> Result<SwapResult, SwapError> {
        let (token_in, token_out) = match side {
            Side::Buy => (&pool.quote, &pool.base),
            Side::Sell => (&pool.base, &pool.quote),
        };
        let tx_hash = receipt.transaction_hash;
        let fee = fee_bnb(receipt.gas_used, receipt.effective_gas_price)?;
        if !receipt.status() {
            return Ok(SwapResult::Failed {
                tx_hash: Some(tx_hash),
                reason: "swap reverted on chain (price past the slippage bound, or deadline)"
                    .into(),
                retryable: true,
                fee_bnb: fee,
            });
        }
        let moved_in = self.transferred(receipt, token_in, true)?;
        let moved_out = self.transferred(receipt, token_out, false)?;
        let (base, quote) = match side {
            Side::Buy => (moved_out, moved_in),
            Side::Sell => (moved_in, moved_out),
        };
        // The pool's state after the swap (V2 `Sync`, V3 `Swap`: its virtual reserves) backs out
        // the mid price before it. For a V3 swap that crossed initialized ticks the virtual
        // reserves after belong to the last range, so the figure is that range's view.
        let topic = pool.state_topic();
        let impact = receipt
            .inner
            .logs()
            .iter()
            .rev()
            .filter(|l| l.address() == pool.pair && l.topics().first() == Some(&topic))
            .find_map(|l| pool.raw_reserves_of_event(&l.inner.data.data))
            .and_then(|(r0, r1)| pool.reserves_of(r0, r1).ok())
            .and_then(|after| {
                price_impact(
                    side,
                    base,
                    quote,
                    after,
                    pool.kind.fee_bps(self.dex.fee_bps),
                )
            });
        Ok(SwapResult::Filled {
            impact,
            tx_hash,
            base,
            quote,
            gas_used: receipt.gas_used,
            gas_price_wei: receipt.effective_gas_price,
            fee_bnb: fee,
        })
    }

    /// What a swap this wallet sent earlier did (`None`: no receipt, not mined).
    pub async fn outcome_of(
        &self,
        tx_hash: B256,
        pool: &Pool,
        side: Side,
    ) -> Result<Option<SwapResult>, SwapError> {
        match self.receipt(tx_hash).await? {
            Some(r) => self.result_of(&r, pool, side).map(Some),
            None => Ok(None),
        }
    }

    /// Which of `candidates` a swap this wallet sent traded on: the pool that logged in its
    /// receipt (`None`: no receipt, or none of them). After a crash the swap's pool is the chain's
    /// word, not the market's price pool: best execution may have sent it anywhere.
    pub async fn pool_of_swap(
        &self,
        tx_hash: B256,
        candidates: &[Pool],
    ) -> Result<Option<Pool>, SwapError> {
        let Some(receipt) = self.receipt(tx_hash).await? else {
            return Ok(None);
        };
        if let Some(p) = candidates
            .iter()
            .find(|p| receipt.inner.logs().iter().any(|l| l.address() == p.pair))
        {
            return Ok(Some(p.clone()));
        }
        // A pool no longer among the market's (its kind dropped from `dex.pools` since): the
        // V3 pool that logged the swap, asked for its fee tier.
        let Some(like) = candidates.first() else {
            return Ok(None);
        };
        let tokens = [like.base.address, like.quote.address];
        for log in receipt.inner.logs() {
            let address = log.address();
            if tokens.contains(&address) {
                continue;
            }
            if let Some(fee) = self.client.v3_fee_of(address).await {
                return Ok(Some(Pool {
                    pair: address,
                    kind: PoolKind::V3 { fee },
                    ..like.clone()
                }));
            }
        }
        Ok(None)
    }

    /// Sum of `token` transfers from (`outgoing`) or to this wallet in a receipt.
    fn transferred(
        &self,
        receipt: &TransactionReceipt,
        token: &Token,
        outgoing: bool,
    ) -> Result<Decimal, SwapError> {
        let mut total = U256::ZERO;
        for log in receipt.inner.logs() {
            if log.address() != token.address {
                continue;
            }
            let Ok(t) = IERC20::Transfer::decode_log(&log.inner) else {
                continue;
            };
            let ours = if outgoing { t.from } else { t.to };
            if ours == self.address {
                total += t.value;
            }
        }
        Ok(from_units(total, token.decimals)?)
    }

    /// The latest block's time: deadlines follow the chain's clock, not the host's.
    async fn chain_time(&self) -> Result<u64, SwapError> {
        if let Some(t) = self.remembered.chain_time() {
            return Ok(t);
        }
        let block = self
            .client
            .provider()
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(|e| rpc("eth_getBlockByNumber", e))?
            .ok_or_else(|| rpc("eth_getBlockByNumber", "no latest block"))?;
        self.remembered.set_chain_time(block.header.timestamp);
        Ok(block.header.timestamp)
    }
}

/// The router call of an exact-input swap on a pool of `kind`: V2's `swapExactTokensForTokens`
/// along the pair, or V3's `exactInputSingle` on the tier with no price limit (the bound is
/// `min_out`, as on V2).
fn swap_call(
    kind: PoolKind,
    token_in: Address,
    token_out: Address,
    amount_in: U256,
    min_out: U256,
    to: Address,
    deadline: u64,
) -> Vec<u8> {
    match kind {
        PoolKind::V2 => IUniswapV2Router02::swapExactTokensForTokensCall {
            amountIn: amount_in,
            amountOutMin: min_out,
            path: vec![token_in, token_out],
            to,
            deadline: U256::from(deadline),
        }
        .abi_encode(),
        PoolKind::V3 { fee } => IPancakeV3SwapRouter::exactInputSingleCall {
            params: IPancakeV3SwapRouter::ExactInputSingleParams {
                tokenIn: token_in,
                tokenOut: token_out,
                fee: alloy::primitives::Uint::<24, 1>::from(fee),
                recipient: to,
                deadline: U256::from(deadline),
                amountIn: amount_in,
                amountOutMinimum: min_out,
                sqrtPriceLimitX96: alloy::primitives::U160::ZERO,
            },
        }
        .abi_encode(),
    }
}

/// Gas a V3 swap may need beyond its first estimate: each initialized tick it crosses costs tens
/// of thousands more, and the limit a path's first swap set is reused for every later one on it.
/// Unused gas is not paid.
pub const V3_SWAP_GAS_FLOOR: u64 = 800_000;

/// The least gas limit a swap call gets: [`V3_SWAP_GAS_FLOOR`] for a V3 swap, else nothing.
fn gas_floor_of(input: &[u8]) -> u64 {
    if IPancakeV3SwapRouter::exactInputSingleCall::abi_decode(input).is_ok() {
        V3_SWAP_GAS_FLOOR
    } else {
        0
    }
}

/// The token a router swap call spends and how much, if `input` is one (of either router).
fn spent(input: &[u8]) -> Option<(Address, U256)> {
    if let Ok(c) = IUniswapV2Router02::swapExactTokensForTokensCall::abi_decode(input) {
        return c.path.first().map(|t| (*t, c.amountIn));
    }
    IPancakeV3SwapRouter::exactInputSingleCall::abi_decode(input)
        .ok()
        .map(|c| (c.params.tokenIn, c.params.amountIn))
}

fn rpc(call: &str, e: impl std::fmt::Display) -> ChainError {
    ChainError::Rpc {
        call: call.to_string(),
        message: e.to_string(),
    }
}
