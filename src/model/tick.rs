//! A price as the feeds hand it to the engine.

use super::price::PriceKey;

/// A price from a feed: symbol index in the engine, exchange time and receive time (µs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarketTick {
    pub symbol: usize,
    pub exchange_ts_us: i64,
    pub received_ts_us: i64,
    pub price: PriceKey,
    /// When the frame was read off the socket, for the tick-to-decision latency histogram.
    pub received_at: Option<std::time::Instant>,
}
