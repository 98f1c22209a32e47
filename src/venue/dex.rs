//! The DEX venue: an approved order becomes a swap on the pool of its symbol, in flight from
//! broadcast to receipt. The engine never waits: `submit` hands the order to the executor task,
//! whose answers (accepted under the transaction hash, filled with the amounts the receipt
//! logged, or failed with the reason and the gas it cost) reach the engine through the live
//! loop's report channel.
//!
//! Swaps of one wallet run one after another (its nonces are sequential anyway), in the order
//! the engine submitted them.

use std::collections::HashMap;
use std::sync::Arc;

use rust_decimal::Decimal;
use tokio::sync::mpsc;

use crate::amm::quote::best_pool;
use crate::chain::pool_state::{PoolStates, SharedRoutes};
use crate::chain::{Pool, SwapOrder, SwapResult, Swapper};
use crate::engine::venue::{Execution, Venue, VenueReport};
use crate::model::order::{Amount, Fill, Side};
use crate::risk::Approved;
use crate::store::chain_txs::SwapOrigin;

/// An order on its way to the executor, with the price the engine saw when it sent it.
#[derive(Debug)]
struct DexJob {
    order: Execution,
    market: Decimal,
    ts_us: i64,
}

pub struct DexVenue {
    jobs: mpsc::UnboundedSender<DexJob>,
}

impl Venue for DexVenue {
    fn submit(
        &mut self,
        order: Approved<Execution>,
        market: Decimal,
        ts_us: i64,
        reports: &mut Vec<VenueReport>,
    ) {
        let job = DexJob {
            order: order.into_inner(),
            market,
            ts_us,
        };
        if let Err(e) = self.jobs.send(job) {
            // The executor is gone (shutdown): the order never left, say so at once.
            reports.push(VenueReport::Failed {
                order_id: e.0.order.order_id,
                reason: "the DEX executor is not running".into(),
                retryable: true,
                ts_us,
            });
        }
    }
}

/// What an order's transaction is recorded under: its client id (`chain_txs.reference`, so the
/// two join) and its strategy's id on record.
pub type OrderReference = Box<dyn Fn(&Execution) -> (String, i64) + Send + Sync>;

/// Runs the swaps of one wallet.
pub struct DexExecutor {
    swapper: Arc<Swapper>,
    reference: OrderReference,
    /// Engine symbol index → its pool (shared: a running daemon adds markets).
    pools: SharedPools,
    fee_bps: u32,
    reports: mpsc::Sender<VenueReport>,
    jobs: mpsc::UnboundedReceiver<DexJob>,
    /// Best execution: every pool each symbol may trade, their followed states and the
    /// strategies pinned to one pool. Without it (or for a symbol with no routes) a swap goes to
    /// the symbol's one pool.
    routing: Option<Routing>,
}

/// What best execution reads, shared by a daemon's executors (markets and pins are added while
/// it runs).
#[derive(Clone, Default)]
pub struct Routing {
    pub routes: SharedRoutes,
    pub states: Arc<PoolStates>,
    /// Engine strategy index → the one pool kind its swaps go to.
    pub pins: Arc<std::sync::RwLock<HashMap<usize, crate::amm::PoolKind>>>,
}

/// The pool best execution chose for a swap, with what it quoted.
struct Chosen {
    state: crate::amm::quote::PoolState,
    zero_for_one: bool,
    quote: crate::amm::quote::Quote,
}

/// Engine symbol index → its pool, shared by a daemon's executors.
pub type SharedPools = Arc<std::sync::RwLock<HashMap<usize, Pool>>>;

/// A DEX venue for the engine and the executor task that serves it.
pub fn dex_venue(
    swapper: Arc<Swapper>,
    pools: HashMap<usize, Pool>,
    fee_bps: u32,
    reports: mpsc::Sender<VenueReport>,
    reference: OrderReference,
) -> (DexVenue, DexExecutor) {
    dex_venue_shared(
        swapper,
        Arc::new(std::sync::RwLock::new(pools)),
        fee_bps,
        reports,
        reference,
    )
}

/// [`dex_venue`] over pools shared with other executors (and added to while it runs).
pub fn dex_venue_shared(
    swapper: Arc<Swapper>,
    pools: SharedPools,
    fee_bps: u32,
    reports: mpsc::Sender<VenueReport>,
    reference: OrderReference,
) -> (DexVenue, DexExecutor) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        DexVenue { jobs: tx },
        DexExecutor {
            swapper,
            reference,
            pools,
            fee_bps,
            reports,
            jobs: rx,
            routing: None,
        },
    )
}

fn now_us() -> i64 {
    crate::clock::wall_clock_us()
}

impl DexExecutor {
    /// Send each swap to the pool of its symbol's routes that pays the most for it, quoted from
    /// the followed states (or to its strategy's pinned pool).
    pub fn with_routing(mut self, routing: Routing) -> DexExecutor {
        self.routing = Some(routing);
        self
    }

    /// The pool a swap of `amount_in` goes to and its quote: the best of the symbol's routes, or
    /// `primary` when it has none. A symbol with one route (a pinned pool) never leaves it.
    fn choose(
        &self,
        o: &Execution,
        primary: Pool,
        amount_in: Decimal,
    ) -> Result<(Pool, Option<Chosen>), String> {
        let (symbol, side) = (o.symbol, o.side);
        let Some(Routing {
            routes,
            states,
            pins,
        }) = &self.routing
        else {
            return Ok((primary, None));
        };
        let mut candidates = routes
            .read()
            .ok()
            .and_then(|r| r.get(&symbol).cloned())
            .unwrap_or_else(|| vec![primary.clone()]);
        if let Some(pin) = pins.read().ok().and_then(|p| p.get(&o.strategy).copied()) {
            candidates.retain(|p| p.kind == pin);
            if candidates.is_empty() {
                return Err(format!(
                    "the strategy is pinned to pool {pin}, which this market does not trade"
                ));
            }
        }
        let Some(first) = candidates.first().cloned() else {
            return Ok((primary, None));
        };
        if candidates.len() == 1 && states.get(first.pair).is_none() {
            // One pool and nothing to compare: no quote needed.
            return Ok((first, None));
        }
        let token_in = match side {
            Side::Buy => &first.quote,
            Side::Sell => &first.base,
        };
        let Ok(units) = crate::chain::units::to_units(amount_in, token_in.decimals) else {
            return Ok((first, None));
        };
        let zero_for_one = |p: &Pool| match side {
            Side::Buy => !p.base_is_token0,
            Side::Sell => p.base_is_token0,
        };
        let quoted: Vec<(Pool, crate::amm::quote::PoolState)> = candidates
            .iter()
            .filter_map(|p| states.get(p.pair).map(|s| (p.clone(), s)))
            .collect();
        let (best, quotes) = best_pool(
            quoted.iter().map(|(p, s)| (p.kind, s, zero_for_one(p))),
            units,
        );
        let shown: Vec<String> = quotes
            .iter()
            .map(|q| format!("{}={}", q.kind, q.quote.amount_out))
            .collect();
        let chosen = best.and_then(|k| {
            let quote = quotes.iter().find(|q| q.kind == k)?.quote;
            let (pool, state) = quoted.into_iter().find(|(p, _)| p.kind == k)?;
            Some((pool, state, quote))
        });
        let Some((pool, state, quote)) = chosen else {
            tracing::warn!(symbol, quotes = ?shown, "no pool quoted the swap; it goes to the first allowed pool");
            return Ok((first, None));
        };
        tracing::info!(symbol, chosen = %pool.kind, pool = %pool.pair, quotes = ?shown, "best execution");
        let chosen = Chosen {
            zero_for_one: zero_for_one(&pool),
            state,
            quote,
        };
        Ok((pool, Some(chosen)))
    }

    /// Before the follower's first read of a market's pools (at start, or when a read failed),
    /// read the ones without a state now: a swap is never sent to a pool only because the
    /// others were not read yet.
    async fn read_missing_states(&self, symbol: usize) {
        let Some(Routing { routes, states, .. }) = &self.routing else {
            return;
        };
        let missing: Vec<Pool> = routes
            .read()
            .ok()
            .and_then(|r| r.get(&symbol).cloned())
            .unwrap_or_default()
            .into_iter()
            .filter(|p| states.get(p.pair).is_none())
            .collect();
        if !missing.is_empty() {
            states
                .refresh(self.swapper.client(), &missing, self.fee_bps)
                .await;
        }
    }

    /// After a fill, the followed state of its pool moves as the quote said it would when the
    /// chain paid exactly the quote (nobody traded the pool between), so the next swap is quoted
    /// on the pool as it is; otherwise the state is dropped until the follower reads it again.
    fn after_fill(&self, pool: &Pool, chosen: &Chosen, paid: Decimal, decimals: u8) {
        let Some(Routing { states, .. }) = &self.routing else {
            return;
        };
        let paid = crate::chain::units::to_units(paid, decimals).unwrap_or_default();
        if paid == chosen.quote.amount_out {
            let next = chosen.state.after(chosen.zero_for_one, &chosen.quote);
            states.advance(pool.pair, &chosen.state, next);
        } else {
            states.forget(pool.pair);
        }
    }

    /// Until the venue is dropped.
    pub async fn run(mut self) {
        while let Some(job) = self.jobs.recv().await {
            let id = job.order.order_id;
            let report = self.execute(job).await;
            if self.reports.send(report).await.is_err() {
                tracing::warn!(order_id = id, "engine gone; swap answer not delivered");
                return;
            }
        }
    }

    async fn execute(&self, job: DexJob) -> VenueReport {
        let o = &job.order;
        let failed = |reason: String, retryable: bool| VenueReport::Failed {
            order_id: o.order_id,
            reason,
            retryable,
            ts_us: now_us(),
        };
        let pool = self
            .pools
            .read()
            .ok()
            .and_then(|p| p.get(&o.symbol).cloned());
        let Some(pool) = pool else {
            return failed("no pool for this symbol".into(), false);
        };
        let amount_in = match (o.side, o.amount) {
            (Side::Buy, Amount::Quote(q)) => q,
            (Side::Sell, Amount::Base(b)) => b,
            _ => {
                return failed(
                    "a swap spends exactly its input: buys by quote, sells by base".into(),
                    false,
                )
            }
        };
        self.read_missing_states(o.symbol).await;
        let (pool, chosen) = match self.choose(o, pool, amount_in) {
            Ok(c) => c,
            Err(reason) => return failed(reason, false),
        };
        let pool = &pool;
        let (reference, strategy_id) = (self.reference)(o);
        let order = SwapOrder {
            side: o.side,
            amount_in,
            // A market order is bounded by the price it was sent at.
            limit: o.limit.unwrap_or(job.market),
            reference,
            origin: Some(SwapOrigin {
                strategy_id,
                tag: o.tag,
                side: o.side.as_str().to_string(),
                market: o.limit.is_none(),
                lot_cost: o.lot_cost.map(|c| c.normalize().to_string()),
                pool_kind: Some(pool.kind.to_string()),
                pool_address: Some(pool.pair.to_string()),
            }),
        };
        let reports = self.reports.clone();
        let order_id = o.order_id;
        // The hash the engine was told at broadcast, if the report got through.
        let told = std::sync::Mutex::new(None);
        let on_broadcast = |hash: alloy::primitives::B256| {
            let sent = reports.try_send(VenueReport::Accepted {
                order_id,
                reference: hash.to_string(),
                ts_us: now_us(),
            });
            if sent.is_ok() {
                if let Ok(mut t) = told.lock() {
                    *t = Some(hash);
                }
            }
        };
        let result = self
            .swapper
            .swap_reporting(pool, &order, &on_broadcast)
            .await;
        // A fill on chain is on record with its transaction: the engine hears the hash that
        // decided the order before the answer — also when the channel was full at broadcast, and
        // the replacement's hash when the stuck original was replaced at its nonce.
        let hash = match &result {
            Ok(SwapResult::Filled { tx_hash, .. }) => Some(*tx_hash),
            Ok(SwapResult::Failed { tx_hash, .. }) => *tx_hash,
            Err(_) => None,
        };
        let told = told.lock().map(|t| *t).unwrap_or(None);
        let report = match (hash, told) {
            (Some(h), None) => Some(VenueReport::Accepted {
                order_id,
                reference: h.to_string(),
                ts_us: now_us(),
            }),
            (Some(h), Some(t)) if h != t => Some(VenueReport::Replaced {
                order_id,
                reference: h.to_string(),
                ts_us: now_us(),
            }),
            _ => None,
        };
        if let Some(r) = report {
            let _ = self.reports.send(r).await;
        }
        match result {
            Ok(SwapResult::Filled {
                tx_hash,
                base,
                quote,
                fee_bnb,
                ..
            }) => {
                // The pool is on record since the swap was signed; a V3 swap adds its ticks.
                let ticks_crossed = chosen.as_ref().and_then(|c| c.quote.ticks_crossed);
                if ticks_crossed.is_some() {
                    self.swapper.record_pool(tx_hash, pool, ticks_crossed).await;
                }
                if let Some(c) = &chosen {
                    let (paid, decimals) = match o.side {
                        Side::Buy => (base, pool.base.decimals),
                        Side::Sell => (quote, pool.quote.decimals),
                    };
                    self.after_fill(pool, c, paid, decimals);
                }
                let fee_bps = pool.kind.fee_bps(self.fee_bps);
                let mut fill = swap_fill(o, base, quote, fee_bps, now_us().max(job.ts_us));
                // Gas paid in BNB, in quote at BNB's price now (kept with the fill).
                let bnb_price = self.swapper.bnb_price(pool, fill.price).await;
                fill.pay_chain_gas(fee_bnb, bnb_price);
                VenueReport::Filled(fill)
            }
            Ok(SwapResult::Failed {
                reason,
                retryable,
                fee_bnb,
                ..
            }) => {
                if fee_bnb > Decimal::ZERO {
                    let bnb_price = self.swapper.bnb_price(pool, job.market).await;
                    let _ = self
                        .reports
                        .send(VenueReport::GasPaid {
                            order_id,
                            gas_bnb: fee_bnb,
                            bnb_price,
                            ts_us: now_us(),
                        })
                        .await;
                }
                failed(reason, retryable)
            }
            Err(e) => failed(format!("swap not completed: {e}"), true),
        }
    }
}

/// The fill a swap made for an order: the amounts its transfers logged, its effective price, and
/// the pool fee in quote.
pub fn swap_fill(o: &Execution, base: Decimal, quote: Decimal, fee_bps: u32, ts_us: i64) -> Fill {
    o.fill(
        swap_price(base, quote),
        base,
        quote,
        swap_fee(o.side, quote, fee_bps),
        ts_us,
    )
}

/// A swap's effective price: quote per base that moved (zero if no base moved).
pub fn swap_price(base: Decimal, quote: Decimal) -> Decimal {
    if base > Decimal::ZERO {
        quote / base
    } else {
        Decimal::ZERO
    }
}

/// The pool fee of a swap in quote: taken from a buy's input, or from a sell's gross output
/// (`quote` is what the sell received, after the fee).
pub fn swap_fee(side: Side, quote: Decimal, fee_bps: u32) -> Decimal {
    let fee_rate = Decimal::from(fee_bps) / Decimal::from(10_000);
    match side {
        Side::Buy => quote * fee_rate,
        Side::Sell => quote * fee_rate / (Decimal::ONE - fee_rate),
    }
}
