//! Venues execute approved orders. The simulated venue serves backtest and paper alike; the
//! PancakeSwap venue (live) plugs in behind the same shape.

pub mod sim;

pub use sim::{SimVenue, SimVenueConfig};
