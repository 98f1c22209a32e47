//! One wallet's swaps on a Uniswap-V2-style router: approve once (bounded), sign with the bot's
//! own nonce, commit the signed bytes, broadcast, wait for the receipt, and read what really moved
//! from the token transfers it logged.
//!
//! Never twice: a transaction is on record (`chain_txs`, status `signed`) before it is sent; a
//! node that refuses it marks it `rejected` and its nonce is reused; one that answers nothing
//! leaves it `broadcast` for reconciliation, never for a new signature.

use std::time::Duration;

use alloy::eips::eip2718::Encodable2718;
use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolEvent};
use rust_decimal::Decimal;
use tokio::sync::Mutex;

mod remembered;
mod settle;

use remembered::Remembered;
use settle::{Candidate, Original};

use super::client::{ChainClient, ChainError, Pool, Token};
use super::contracts::{IUniswapV2Router02, IERC20};
use super::gas::{fee_bnb, gas_limit, gas_price_wei};
use super::units::{from_units, to_units};
use crate::amm::swap_math::{min_amount_out, price_impact};
use crate::clock::wall_clock_ms;
use crate::config::{ChainConfig, DexConfig};
use crate::model::order::Side;
use crate::store::chain_txs::{SignedTx, SwapOrigin, TxOutcome};
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
    /// The next nonce to use, once known (read from the chain and the record when not: at the
    /// first send, and after the node refused one); one sender per wallet at a time.
    nonce: Mutex<Option<u64>>,
    remembered: Remembered,
    /// `chain.private_tx_url`: swaps go there and never to a public endpoint.
    private: Option<alloy::providers::DynProvider>,
    /// The WBNB/quote pool of each quote token, found once (gas priced in quote).
    bnb_pools: std::sync::Mutex<std::collections::HashMap<Address, Pool>>,
}

fn router_of(dex: &DexConfig) -> Result<Address, ChainError> {
    dex.router.parse().map_err(|_| ChainError::Rpc {
        call: "config".into(),
        message: format!("dex.router {:?} is not an address", dex.router),
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
            router: router_of(&dex)?,
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

    /// Where a signed transaction is sent: a swap (or its speed-up) to the private endpoint when
    /// one is configured, and then never to a public one; everything else to the public ones.
    async fn broadcast(
        &self,
        raw: &[u8],
        swap: bool,
    ) -> Result<(), alloy::transports::TransportError> {
        let provider = match (&self.private, swap) {
            (Some(p), true) => p,
            _ => self.client.provider(),
        };
        provider.send_raw_transaction(raw).await.map(|_| ())
    }

    /// On record: transaction `id` was never sent (`rejected`, with why); its nonce unused.
    async fn never_sent(&self, id: i64, why: &str) -> Result<(), SwapError> {
        let outcome = TxOutcome {
            status: "rejected",
            error: Some(why.to_string()),
            ..TxOutcome::default()
        };
        self.store
            .set_tx_outcome(id, &outcome, wall_clock_ms())
            .await?;
        Ok(())
    }

    /// Send `raw` again where it goes, with a growing pause, while it is surely not delivered:
    /// until it is (or the answer is ambiguous: then it may be out there and is settled as
    /// sent), or until it is too late (a swap: its deadline, by chain time or as long again by
    /// the host's clock when no block comes; anything else: four receipt timeouts): then it
    /// was never sent (`Err`: why).
    async fn deliver_again(
        &self,
        raw: &[u8],
        swap: bool,
        deadline: Option<u64>,
    ) -> Result<(), String> {
        let swap_deadline = deadline.filter(|d| *d != u64::MAX);
        let budget = match swap_deadline {
            Some(_) => self.chain.swap_deadline_secs,
            None => self.chain.receipt_timeout_secs.max(1) * 4,
        };
        let give_up = tokio::time::Instant::now() + Duration::from_secs(budget);
        let mut pause = Duration::from_millis(200);
        loop {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
            let error = match self.broadcast(raw, swap).await {
                Ok(()) => return Ok(()),
                Err(e) if crate::chain::failover::surely_not_delivered(&e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "broadcast got no answer; settling it as sent");
                    return Ok(());
                }
            };
            let past_deadline = match swap_deadline {
                Some(d) => self.chain_time().await.is_ok_and(|now| now + 2 >= d),
                None => false,
            };
            if past_deadline || tokio::time::Instant::now() >= give_up {
                return Err(format!(
                    "not sent: the endpoint refused it until it was too late ({error})"
                ));
            }
            tracing::warn!(error = %error, "transaction not delivered (connection refused); sending the same bytes again");
        }
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
        let min_out = min_amount_out(
            order.side,
            order.amount_in,
            order.limit,
            self.dex.fee_bps,
            self.dex.slippage_bps,
        );
        let min_out = to_units(min_out, token_out.decimals)?;
        self.ensure_allowance(token_in, amount_in).await?;
        let deadline = self.chain_time().await? + self.chain.swap_deadline_secs;
        let call = IUniswapV2Router02::swapExactTokensForTokensCall {
            amountIn: amount_in,
            amountOutMin: min_out,
            path: vec![token_in.address, token_out.address],
            to: self.address,
            deadline: U256::from(deadline),
        };
        let sent = match self
            .send(
                self.router,
                call.abi_encode(),
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
        let impact = receipt
            .inner
            .logs()
            .iter()
            .rev()
            .filter(|l| l.address() == pool.pair)
            .find_map(|l| super::contracts::IUniswapV2Pair::Sync::decode_log(&l.inner).ok())
            .and_then(|e| {
                pool.reserves_of(U256::from(e.reserve0), U256::from(e.reserve1))
                    .ok()
            })
            .and_then(|after| price_impact(side, base, quote, after, self.dex.fee_bps));
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

    /// Let the router spend `needed` of `token`. The allowance given is the wallet's balance of
    /// the token (at least `needed`), not unlimited: a router gone bad can take no more than the
    /// wallet held then. Re-approved when a swap needs more.
    async fn ensure_allowance(&self, token: &Token, needed: U256) -> Result<(), SwapError> {
        if self
            .remembered
            .allowance(token.address)
            .is_some_and(|a| a >= needed)
        {
            return Ok(());
        }
        let erc20 = IERC20::new(token.address, self.client.provider());
        let current = erc20
            .allowance(self.address, self.router)
            .call()
            .await
            .map_err(|e| rpc("allowance", e))?;
        self.remembered.set_allowance(token.address, current);
        if current >= needed {
            return Ok(());
        }
        let balance = erc20
            .balanceOf(self.address)
            .call()
            .await
            .map_err(|e| rpc("balanceOf", e))?;
        let approved = balance.max(needed);
        let call = IERC20::approveCall {
            spender: self.router,
            value: approved,
        };
        let sent = self
            .send(
                token.address,
                call.abi_encode(),
                TxMeta {
                    purpose: "approve",
                    reference: None,
                    origin: None,
                    // An approval has no deadline: stuck, it is sped up, never cancelled.
                    deadline: Some(u64::MAX),
                    value: U256::ZERO,
                },
                &|_| {},
            )
            .await?;
        match sent {
            Ok(Sent {
                receipt: Some(r),
                cancelled: false,
                ..
            }) if r.status() => {
                self.remembered.set_allowance(token.address, approved);
                Ok(())
            }
            Ok(Sent {
                cancelled: true,
                tx_hash,
                ..
            }) => Err(SwapError::ApproveNotMined {
                token: token.symbol.clone(),
                detail: format!(
                    "no receipt within {} s, replaced at its nonce by cancel {tx_hash}",
                    self.chain.receipt_timeout_secs
                ),
            }),
            Ok(Sent { receipt: None, .. }) => Err(SwapError::ApproveNotMined {
                token: token.symbol.clone(),
                detail: "its nonce was taken by another transaction".into(),
            }),
            Ok(s) => Err(SwapError::ApproveFailed {
                token: token.symbol.clone(),
                tx_hash: s.tx_hash.to_string(),
            }),
            Err(reason) => Err(SwapError::Chain(rpc("approve", reason))),
        }
    }

    /// Sign, record, broadcast and wait. `Ok(Err(reason))`: the transaction would revert (its gas
    /// estimate failed) or the node refused it; nothing was spent and its nonce stays free.
    async fn send(
        &self,
        to: Address,
        input: Vec<u8>,
        meta: TxMeta<'_>,
        on_broadcast: &(dyn Fn(B256) + Sync),
    ) -> Result<Result<Sent, String>, SwapError> {
        let value = meta.value;
        let TxMeta {
            purpose,
            reference,
            origin,
            deadline,
            ..
        } = meta;
        let provider = self.client.provider();
        let request = TransactionRequest::default()
            .with_from(self.address)
            .with_to(to)
            .with_value(value)
            .with_input(Bytes::from(input.clone()));
        let swap_token = spent_token(&input);
        let known_limit = swap_token.and_then(|t| self.remembered.swap_gas(t));
        // The first swap of a path and everything else: the node's estimate, which is also the
        // simulation. A swap on a known path takes the limit its first estimate gave and is
        // simulated by one `eth_call` while it is signed and committed (or not at all, if so
        // configured).
        let (limit, simulate) = match known_limit {
            Some(limit) => (limit, self.chain.simulate_swaps),
            None => match provider.estimate_gas(request.clone()).await {
                // A plain BNB transfer to an account without code costs exactly this: its limit
                // is that, so a sweep can leave exactly what it keeps.
                Ok(21_000) if input.is_empty() => (21_000, false),
                Ok(estimate) => {
                    let limit = gas_limit(estimate, self.chain.gas_limit_margin);
                    match swap_token {
                        Some(token) => {
                            let limit = limit.max(self.chain.swap_gas_floor);
                            self.remembered.set_swap_gas(token, limit);
                            (limit, false)
                        }
                        None => (limit, false),
                    }
                }
                Err(e) => {
                    // Perhaps an allowance remembered too high: read it again next time.
                    if let Some(token) = swap_token {
                        self.remembered.forget_allowance(token);
                    }
                    return Ok(Err(format!("simulation failed: {e}")));
                }
            },
        };
        let price = self.next_gas_price_wei().await?;
        let mut nonce_slot = self.nonce.lock().await;
        let nonce = match *nonce_slot {
            Some(n) => n,
            None => self.next_nonce().await?,
        };
        let simulation_request = request.clone().with_gas_limit(limit);
        let request = request
            .with_nonce(nonce)
            .with_gas_price(price)
            .with_gas_limit(limit)
            .with_chain_id(self.client.chain_id());
        // The simulation runs while the transaction is signed and committed.
        let sign_and_record = async {
            let envelope = request
                .build(&self.wallet)
                .await
                .map_err(|e| SwapError::Sign(e.to_string()))?;
            let raw = envelope.encoded_2718();
            let tx_hash = *envelope.tx_hash();
            let signed = SignedTx {
                chain_id: self.client.chain_id(),
                wallet: self.address,
                nonce,
                tx_hash: tx_hash.to_string(),
                raw_tx: format!("0x{}", alloy::hex::encode(&raw)),
                purpose: purpose.to_string(),
                reference: reference.map(str::to_string),
                gas_price_wei: price,
                gas_limit: limit,
                origin: origin.clone(),
            };
            let id = self
                .store
                .record_signed_tx(&signed, wall_clock_ms())
                .await?;
            Ok::<_, SwapError>((id, raw, tx_hash))
        };
        let simulation = async {
            if simulate {
                provider.call(simulation_request).await.map(|_| ())
            } else {
                Ok(())
            }
        };
        let (simulated, recorded) = tokio::join!(simulation, sign_and_record);
        let (id, raw, tx_hash) = recorded?;
        if let Err(e) = simulated {
            // Never sent: on record as such, its nonce unused.
            let reason = format!("simulation failed: {e}");
            self.never_sent(id, &reason).await?;
            if let Some(token) = swap_token {
                self.remembered.forget_allowance(token);
            }
            return Ok(Err(reason));
        }
        crate::failpoint::hang_if(&format!("chain.before_broadcast.{purpose}")).await;
        match self.broadcast(&raw, purpose == "swap").await {
            Ok(_) => {}
            Err(alloy::transports::RpcError::ErrorResp(e)) => {
                // The node answered and refused it: the nonce was not used.
                self.never_sent(id, &e.message).await?;
                // The nonce may be what it refused (a transaction sent from elsewhere): read it
                // again from the chain and the record before the next send.
                *nonce_slot = None;
                return Ok(Err(format!("node refused the transaction: {}", e.message)));
            }
            Err(e) if crate::chain::failover::surely_not_delivered(&e) => {
                // Refused before it was sent (a private endpoint down, every public one
                // refusing): not out there. The same bytes go to the same place again until
                // delivered; never a replacement that could reach no node either.
                if let Err(reason) = self.deliver_again(&raw, purpose == "swap", deadline).await {
                    self.never_sent(id, &reason).await?;
                    *nonce_slot = None;
                    return Ok(Err(reason));
                }
            }
            Err(e) => {
                // No answer: it may be out there. It is treated as sent: settling re-sends these
                // same bytes until the chain decides, so whatever happened it stays one
                // transaction — never a failure that would let the order be tried again.
                tracing::warn!(tx_hash = %tx_hash, error = %e, "broadcast got no answer; settling it as sent");
            }
        }
        *nonce_slot = Some(nonce + 1);
        drop(nonce_slot);
        if let Some(token) = spent_token(&input) {
            self.remembered.spent(token, spent_amount(&input));
        }
        on_broadcast(tx_hash);
        let broadcast = TxOutcome {
            status: "broadcast",
            ..TxOutcome::default()
        };
        // From here on the transaction may be on chain: nothing below may fail the order.
        self.record_until_done(id, &broadcast).await;
        crate::failpoint::hang_if(&format!("chain.after_broadcast.{purpose}")).await;
        let original = Original {
            nonce,
            to,
            input: &input,
            gas_limit: limit,
            deadline,
            purpose,
            reference,
            origin,
        };
        let first = Candidate {
            id,
            hash: tx_hash,
            raw,
            gas_price: price,
            cancel: false,
            swap: purpose == "swap",
        };
        Ok(Ok(match self.settle(&original, vec![first]).await? {
            Some((won, receipt)) => Sent {
                tx_hash: won.hash,
                receipt: Some(receipt),
                cancelled: won.cancel,
            },
            None => Sent {
                tx_hash,
                receipt: None,
                cancelled: false,
            },
        }))
    }

    /// Settle every transaction of this wallet left unresolved by a crash, before anything new is
    /// sent, one nonce at a time, oldest first (all transactions on record at a nonce — an
    /// original and its replacements — settle together): a receipt → `mined` / `reverted`, the
    /// others at its nonce `dropped`; no receipt and the nonce still free → the same signed bytes
    /// again (the same transactions: only one can be mined), then settled as any sent
    /// transaction (cancelled when stuck: the swap's deadline is unknown here); the nonce taken
    /// by another transaction → `dropped`.
    pub async fn reconcile(&self) -> Result<Vec<Reconciled>, SwapError> {
        let mut out = Vec::new();
        let pending = self
            .store
            .unresolved_txs(self.client.chain_id(), self.address)
            .await?;
        let mut at_nonce: std::collections::BTreeMap<i64, Vec<_>> = Default::default();
        for tx in pending {
            at_nonce.entry(tx.nonce).or_default().push(tx);
        }
        for (nonce, txs) in at_nonce {
            let mut candidates = Vec::new();
            for tx in &txs {
                candidates.push(Candidate {
                    id: tx.id,
                    hash: tx.tx_hash.parse().map_err(|_| {
                        SwapError::Sign(format!("tx hash {} on record is not a hash", tx.tx_hash))
                    })?,
                    raw: alloy::hex::decode(tx.raw_tx.trim_start_matches("0x"))
                        .map_err(|e| SwapError::Sign(format!("raw tx on record: {e}")))?,
                    gas_price: tx.gas_price_wei.parse().unwrap_or(0),
                    cancel: tx.purpose == "cancel",
                    swap: tx.purpose == "swap",
                });
            }
            let nonce = nonce as u64;
            let mut action = "found mined";
            let won = match self.any_receipt(&candidates).await? {
                Some(won) => {
                    self.record_settled(&candidates, Some(&won)).await?;
                    Some(won)
                }
                None if nonce < self.mined_count().await? => {
                    action = "nonce taken";
                    self.record_settled(&candidates, None).await?;
                    None
                }
                None => {
                    action = "re-broadcast";
                    for c in candidates.iter().rev() {
                        if let Err(e) = self.broadcast(&c.raw, c.swap).await {
                            // "already known" is fine: it is out there; settling decides.
                            tracing::warn!(tx_hash = %c.hash, error = %e, "re-broadcast answered with an error");
                        }
                    }
                    let original = Original {
                        nonce,
                        to: self.address,
                        input: &[],
                        gas_limit: 21_000,
                        deadline: None,
                        purpose: "cancel",
                        reference: txs.first().and_then(|t| t.reference.as_deref()),
                        origin: None,
                    };
                    self.settle(&original, candidates.clone()).await?
                }
            };
            for tx in &txs {
                let status = match &won {
                    Some((w, r)) if w.id == tx.id => {
                        if r.status() {
                            "mined"
                        } else {
                            "reverted"
                        }
                    }
                    _ => "dropped",
                };
                tracing::info!(tx_hash = %tx.tx_hash, nonce = tx.nonce, action, status, "reconciled");
                out.push(Reconciled {
                    tx_hash: tx.tx_hash.parse().unwrap_or_default(),
                    purpose: tx.purpose.clone(),
                    reference: tx.reference.clone(),
                    status,
                });
            }
        }
        Ok(out)
    }

    /// Write a sent transaction's outcome, retrying until the database takes it (the transaction
    /// is out there; its record must follow, and the order must not be failed for a database
    /// hiccup).
    async fn record_until_done(&self, id: i64, outcome: &TxOutcome) {
        let mut pause = Duration::from_millis(100);
        while let Err(e) = self
            .store
            .set_tx_outcome(id, outcome, wall_clock_ms())
            .await
        {
            tracing::warn!(tx_id = id, error = %e, "cannot record a transaction's outcome yet; retrying");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }

    /// Put what the chain decided on record: the receipt's status and gas, or `dropped` when the
    /// transaction's nonce went to another one.
    async fn record_outcome(
        &self,
        id: i64,
        receipt: Option<&TransactionReceipt>,
    ) -> Result<&'static str, SwapError> {
        let outcome = match receipt {
            Some(r) => TxOutcome {
                status: if r.status() { "mined" } else { "reverted" },
                gas_used: Some(r.gas_used),
                fee_bnb: fee_bnb(r.gas_used, r.effective_gas_price)
                    .ok()
                    .map(|f| f.normalize().to_string()),
                error: (!r.status()).then(|| "reverted".to_string()),
                block_number: r.block_number,
            },
            None => TxOutcome {
                status: "dropped",
                error: Some("its nonce was used by another transaction".into()),
                ..TxOutcome::default()
            },
        };
        self.record_until_done(id, &outcome).await;
        Ok(outcome.status)
    }

    /// How many of this wallet's transactions the chain has mined (its next free nonce).
    async fn mined_count(&self) -> Result<u64, SwapError> {
        self.client
            .provider()
            .get_transaction_count(self.address)
            .await
            .map_err(|e| SwapError::Chain(rpc("eth_getTransactionCount", e)))
    }

    async fn receipt(&self, hash: B256) -> Result<Option<TransactionReceipt>, SwapError> {
        self.client
            .provider()
            .get_transaction_receipt(hash)
            .await
            .map_err(|e| SwapError::Chain(rpc("eth_getTransactionReceipt", e)))
    }

    /// The next nonce: past everything on chain (pending included) and everything on record.
    async fn next_nonce(&self) -> Result<u64, SwapError> {
        let on_chain = self
            .client
            .provider()
            .get_transaction_count(self.address)
            .pending()
            .await
            .map_err(|e| rpc("eth_getTransactionCount", e))?;
        let recorded = self
            .store
            .next_recorded_nonce(self.client.chain_id(), self.address)
            .await?
            .unwrap_or(0);
        Ok(on_chain.max(recorded))
    }
}

/// The token a router swap call spends (the first of its path), if `input` is one.
fn spent_token(input: &[u8]) -> Option<Address> {
    IUniswapV2Router02::swapExactTokensForTokensCall::abi_decode(input)
        .ok()
        .and_then(|c| c.path.first().copied())
}

/// What a router swap call spends (zero for any other call).
fn spent_amount(input: &[u8]) -> U256 {
    IUniswapV2Router02::swapExactTokensForTokensCall::abi_decode(input)
        .map(|c| c.amountIn)
        .unwrap_or_default()
}

fn rpc(call: &str, e: impl std::fmt::Display) -> ChainError {
    ChainError::Rpc {
        call: call.to_string(),
        message: e.to_string(),
    }
}
