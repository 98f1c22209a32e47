//! The one engine of backtest, paper and live: events in, intents through the risk guard to a
//! venue, fills back to strategies as events, everything reported to a recorder.

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
