//! Market data: symbols, Binance stream frames, and the live WebSocket feed.

pub mod binance;
pub mod feed;
pub mod known;
pub mod pool;
pub mod pool_sync;
