//! Market data (floor 6, may use floors 0–5): Binance frames and feed, pool price feeds, known symbols.

pub mod binance;
pub mod feed;
pub mod known;
pub mod pool;
pub mod pool_sync;
