//! Venues (floor 6, may use floors 0–5): the simulated, DEX and routed implementations of the engine's trait.
//!
//! The simulated venue of backtest and paper, the PancakeSwap venue of live, and the router that
//! sends each strategy's orders to its own, behind the engine's
//! [`Venue`](crate::engine::venue::Venue) trait.

pub mod dex;
pub mod routed;
pub mod sim;

pub use sim::{SimDelays, SimVenue, SimVenueConfig};
