//! Market data: symbols now; WebSocket feeds and replay files plug in here.

pub mod symbol;

pub use symbol::{Symbol, SymbolError};
