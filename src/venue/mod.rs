//! Venue implementations behind the engine's [`Venue`](crate::engine::venue::Venue) trait: the
//! simulated venue of backtest and paper, the PancakeSwap venue of live, and the router that sends
//! each strategy's orders to its own. Uses the engine, the chain, the store and the risk guard.

pub mod dex;
pub mod routed;
pub mod sim;

pub use sim::{SimDelays, SimVenue, SimVenueConfig};
