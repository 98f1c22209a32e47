//! Venues execute approved orders. The simulated venue serves backtest and paper alike; the
//! PancakeSwap venue (live) plugs in behind the same [`Venue`] trait.
//!
//! A venue never answers with a return value: it answers with [`VenueReport`]s, at once (the
//! instant simulated venue) or later (latency, a mined transaction). The engine holds every
//! submitted order as in flight until its report arrives, so a venue that answers in seconds
//! and one that answers in nanoseconds run the same strategy code.

pub mod dex;
pub mod report;
pub mod routed;
pub mod sim;

pub use report::{Execution, VenueReport};
pub use sim::{SimDelays, SimVenue, SimVenueConfig};

use rust_decimal::Decimal;

use crate::risk::Approved;

/// Where the engine sends approved orders.
pub trait Venue: Send {
    /// Take an approved order. `market` is the last price of its symbol; reports that are already
    /// known (an instant fill, a refusal by the venue) are pushed to `reports` now, the others
    /// come from [`Venue::poll`] or through the live loop's report channel.
    fn submit(
        &mut self,
        order: Approved<Execution>,
        market: Decimal,
        ts_us: i64,
        reports: &mut Vec<VenueReport>,
    );

    /// Reports due by engine time `now_us`; `price(symbol)` is the last price of a symbol.
    fn poll(
        &mut self,
        _now_us: i64,
        _price: &dyn Fn(usize) -> Option<Decimal>,
        _reports: &mut Vec<VenueReport>,
    ) {
    }

    /// Engine time of the next report [`Venue::poll`] would give (`None`: nothing due).
    fn next_due_us(&self) -> Option<i64> {
        None
    }
}
