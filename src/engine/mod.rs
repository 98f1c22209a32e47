//! The one engine (floor 4, may use floors 0–3) of backtest, paper and live, with the venue trait it owns.
//!
//! Events in, intents through the risk guard to a venue, fills back to strategies as events,
//! everything reported to a recorder. It names no venue, feed or store of its own: a venue plugs in
//! behind [`venue::Venue`], ticks arrive as [`crate::model::MarketTick`]s, records leave through a
//! [`Recorder`].

pub mod book;
pub mod core;
pub mod event;
pub mod inflight;
pub mod ledger;
pub mod live;
pub mod recorder;
pub mod venue;

pub use self::core::{block_bounds, Engine, TickSlab, TICK_BLOCK};
pub use event::{Control, Event};
pub use inflight::{InFlight, OrderState};
pub use ledger::Ledger;
pub use recorder::{MemoryRecorder, Recorder};
pub use venue::{Execution, Venue, VenueReport};
