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

use super::report::{Execution, VenueReport};
use super::Venue;
use crate::chain::{Pool, SwapOrder, SwapResult, Swapper};
use crate::engine::order::{Amount, Fill, Side};
use crate::risk::Approved;

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

/// What an order's transaction is recorded under (`chain_txs.reference`): the daemon names it after
/// the order on record, so the two join.
pub type OrderReference = Box<dyn Fn(&Execution) -> String + Send + Sync>;

/// Runs the swaps of one wallet.
pub struct DexExecutor {
    swapper: Arc<Swapper>,
    reference: OrderReference,
    /// Engine symbol index → its pool.
    pools: HashMap<usize, Pool>,
    fee_bps: u32,
    reports: mpsc::Sender<VenueReport>,
    jobs: mpsc::UnboundedReceiver<DexJob>,
}

/// A DEX venue for the engine and the executor task that serves it.
pub fn dex_venue(
    swapper: Arc<Swapper>,
    pools: HashMap<usize, Pool>,
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
        },
    )
}

fn now_us() -> i64 {
    crate::clock::wall_clock_us()
}

impl DexExecutor {
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
        let Some(pool) = self.pools.get(&o.symbol) else {
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
        let order = SwapOrder {
            side: o.side,
            amount_in,
            // A market order is bounded by the price it was sent at.
            limit: o.limit.unwrap_or(job.market),
            reference: (self.reference)(o),
        };
        let reports = self.reports.clone();
        let order_id = o.order_id;
        let on_broadcast = move |hash: alloy::primitives::B256| {
            let _ = reports.try_send(VenueReport::Accepted {
                order_id,
                reference: hash.to_string(),
                ts_us: now_us(),
            });
        };
        match self
            .swapper
            .swap_reporting(pool, &order, &on_broadcast)
            .await
        {
            Ok(SwapResult::Filled { base, quote, .. }) => {
                let price = if base > Decimal::ZERO {
                    quote / base
                } else {
                    Decimal::ZERO
                };
                let fee_rate = Decimal::from(self.fee_bps) / Decimal::from(10_000);
                // The pool fee, in quote: taken from a buy's input, or from a sell's gross output.
                let fee = match o.side {
                    Side::Buy => quote * fee_rate,
                    Side::Sell => quote * fee_rate / (Decimal::ONE - fee_rate),
                };
                VenueReport::Filled(Fill {
                    order_id: o.order_id,
                    strategy: o.strategy,
                    tag: o.tag,
                    side: o.side,
                    market: o.limit.is_none(),
                    price,
                    base,
                    quote,
                    fee,
                    lot_cost: o.lot_cost,
                    ts_us: now_us().max(job.ts_us),
                })
            }
            Ok(SwapResult::Failed {
                reason, retryable, ..
            }) => failed(reason, retryable),
            Err(e) => failed(format!("swap not completed: {e}"), true),
        }
    }
}
