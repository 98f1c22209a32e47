//! The daemon's venue: paper strategies on the simulated venue, each live strategy on the DEX
//! venue of its wallet. One engine runs both, and the route is decided per strategy, once, when
//! the daemon adds it.

use rust_decimal::Decimal;

use super::dex::DexVenue;
use super::SimVenue;
use crate::engine::venue::{Execution, Venue, VenueReport};
use crate::model::order::StrategyIx;
use crate::risk::Approved;

#[derive(Default)]
pub struct RoutedVenue {
    pub sim: SimVenue,
    /// DEX venues, one per wallet.
    dex: Vec<DexVenue>,
    /// Strategy index → its DEX venue (`None`: paper, the simulated venue).
    route: Vec<Option<usize>>,
}

impl RoutedVenue {
    /// Paper strategies fill on `sim` (e.g. one with an AMM fill model).
    pub fn with_sim(sim: SimVenue) -> Self {
        RoutedVenue {
            sim,
            ..RoutedVenue::default()
        }
    }

    /// Add a wallet's DEX venue; returns its slot for [`RoutedVenue::route_to`].
    pub fn add_dex(&mut self, venue: DexVenue) -> usize {
        self.dex.push(venue);
        self.dex.len() - 1
    }

    /// Send strategy `ix`'s orders to DEX venue `slot`.
    pub fn route_to(&mut self, ix: StrategyIx, slot: usize) {
        if self.route.len() <= ix {
            self.route.resize(ix + 1, None);
        }
        self.route[ix] = Some(slot);
    }

    /// Whether strategy `ix` trades on chain.
    pub fn is_live(&self, ix: StrategyIx) -> bool {
        self.route.get(ix).copied().flatten().is_some()
    }
}

impl Venue for RoutedVenue {
    fn submit(
        &mut self,
        order: Approved<Execution>,
        market: Decimal,
        ts_us: i64,
        reports: &mut Vec<VenueReport>,
    ) {
        match self.route.get(order.inner().strategy).copied().flatten() {
            Some(slot) => match self.dex.get_mut(slot) {
                Some(dex) => dex.submit(order, market, ts_us, reports),
                None => reports.push(VenueReport::Failed {
                    order_id: order.inner().order_id,
                    reason: "no DEX venue for this strategy's wallet".into(),
                    retryable: false,
                    ts_us,
                }),
            },
            None => self.sim.submit(order, market, ts_us, reports),
        }
    }

    fn poll(
        &mut self,
        now_us: i64,
        price: &dyn Fn(usize) -> Option<Decimal>,
        reports: &mut Vec<VenueReport>,
    ) {
        self.sim.poll(now_us, price, reports);
    }

    fn next_due_us(&self) -> Option<i64> {
        self.sim.next_due_us()
    }
}
