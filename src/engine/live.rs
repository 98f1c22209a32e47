//! The wall-clock loop that drives the engine in paper and live mode.
//!
//! One `select!`, biased in this order: shutdown, operator control, venue fills, the mark timer,
//! and market data last — so a stop or a fill is never stuck behind a backlog of ticks.

use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::event::{Control, Event};
use super::order::Fill;
use super::price::PriceKey;
use super::recorder::Recorder;
use super::Engine;

/// A price from a feed: symbol index in the engine, exchange time and receive time (µs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarketTick {
    pub symbol: usize,
    pub exchange_ts_us: i64,
    pub received_ts_us: i64,
    pub price: PriceKey,
}

pub struct LiveInputs {
    pub shutdown: watch::Receiver<bool>,
    pub control: mpsc::Receiver<Control>,
    pub fills: mpsc::Receiver<Fill>,
    pub market: mpsc::Receiver<MarketTick>,
    /// How often equity is marked when no prices arrive.
    pub mark_every: Duration,
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopExit {
    Shutdown,
    /// Every input closed (the feeds and the control plane are gone).
    InputsClosed,
}

/// Run until shutdown. Ticks are stamped with their receive time: paper and live run on the
/// wall clock, the exchange time is only for staleness and latency figures.
pub async fn run_live<R: Recorder>(engine: &mut Engine<R>, mut inputs: LiveInputs) -> LoopExit {
    let mut timer = tokio::time::interval(inputs.mark_every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut control_open, mut fills_open, mut market_open) = (true, true, true);
    loop {
        if !(control_open || fills_open || market_open) {
            engine.finish();
            return LoopExit::InputsClosed;
        }
        tokio::select! {
            biased;
            changed = inputs.shutdown.changed() => {
                if changed.is_err() || *inputs.shutdown.borrow() {
                    engine.finish();
                    return LoopExit::Shutdown;
                }
            }
            c = inputs.control.recv(), if control_open => match c {
                Some(c) => engine.process(Event::Control(c)),
                None => control_open = false,
            },
            f = inputs.fills.recv(), if fills_open => match f {
                Some(f) => engine.process(Event::Fill(f)),
                None => fills_open = false,
            },
            _ = timer.tick() => {
                engine.process(Event::Timer { ts_us: crate::clock::wall_clock_ms() * 1000 });
            }
            t = inputs.market.recv(), if market_open => match t {
                Some(t) => engine.on_tick(t.symbol, t.received_ts_us, t.price),
                None => market_open = false,
            },
        }
    }
}
