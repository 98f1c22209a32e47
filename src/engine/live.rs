//! The wall-clock loop that drives the engine in paper and live mode.
//!
//! One `select!`, biased in this order: shutdown, operator control, venue reports, the mark timer,
//! and market data last — so a stop or a fill is never stuck behind a backlog of ticks.

use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::event::{Control, Event};
use super::recorder::Recorder;
use super::venue::{Venue, VenueReport};
use super::Engine;
use crate::model::MarketTick;

/// Work the daemon hands the engine loop: add a strategy, take snapshots, read state.
pub type EngineCall<R, V> = Box<dyn FnOnce(&mut Engine<R, V>) + Send>;

/// Runs after every event with the engine (the daemon persists what the event changed).
pub type AfterEvent<R, V> = Box<dyn FnMut(&mut Engine<R, V>) + Send>;

pub struct LiveInputs {
    pub shutdown: watch::Receiver<bool>,
    pub control: mpsc::Receiver<Control>,
    /// Answers of an asynchronous venue (a mined swap's receipt), applied as they arrive.
    pub reports: mpsc::Receiver<VenueReport>,
    pub market: mpsc::Receiver<MarketTick>,
    /// How often equity is marked when no prices arrive.
    pub mark_every: Duration,
}

/// Optional extras of the daemon's loop.
pub struct LiveExtras<R: Recorder, V: Venue> {
    pub calls: mpsc::Receiver<EngineCall<R, V>>,
    /// Frame received → engine done with the tick (orders decided), in nanoseconds.
    pub on_latency: Box<dyn FnMut(u64) + Send>,
    /// Runs after every event, with the engine: the daemon persists what the event changed.
    pub after_event: AfterEvent<R, V>,
    /// Sees every tick just before the engine trades it (the daemon logs the ticks canary paper
    /// strategies trade on).
    pub before_tick: BeforeTick<R, V>,
}

/// Runs with each tick before the engine has it.
pub type BeforeTick<R, V> = Box<dyn FnMut(&Engine<R, V>, &MarketTick) + Send>;

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopExit {
    Shutdown,
    /// Every input closed (the feeds and the control plane are gone).
    InputsClosed,
}

/// Run until shutdown. Ticks are stamped with their receive time: paper and live run on the
/// wall clock, the exchange time is only for staleness and latency figures.
pub async fn run_live<R: Recorder, V: Venue>(
    engine: &mut Engine<R, V>,
    inputs: LiveInputs,
) -> LoopExit {
    run_live_with(engine, inputs, None).await
}

/// [`run_live`] plus engine calls (after control, before fills) and latency reporting.
pub async fn run_live_with<R: Recorder, V: Venue>(
    engine: &mut Engine<R, V>,
    mut inputs: LiveInputs,
    mut extras: Option<LiveExtras<R, V>>,
) -> LoopExit {
    let mut timer = tokio::time::interval(inputs.mark_every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut control_open, mut fills_open, mut market_open) = (true, true, true);
    let mut calls_open = extras.is_some();
    loop {
        if !(control_open || fills_open || market_open) {
            engine.finish();
            return LoopExit::InputsClosed;
        }
        tokio::select! {
            biased;
            changed = inputs.shutdown.changed() => {
                if let Some(x) = extras.as_mut() {
                    (x.after_event)(engine);
                }
                if changed.is_err() || *inputs.shutdown.borrow() {
                    engine.finish();
                    return LoopExit::Shutdown;
                }
            }
            c = inputs.control.recv(), if control_open => match c {
                Some(c) => {
                    engine.advance_clock(crate::clock::wall_clock_us());
                    engine.process(Event::Control(c));
                }
                None => control_open = false,
            },
            call = async {
                match extras.as_mut() {
                    Some(x) => x.calls.recv().await,
                    None => None,
                }
            }, if calls_open => match call {
                Some(call) => {
                    engine.advance_clock(crate::clock::wall_clock_us());
                    call(engine);
                }
                None => calls_open = false,
            },
            r = inputs.reports.recv(), if fills_open => match r {
                Some(r) => {
                    engine.advance_clock(crate::clock::wall_clock_us());
                    engine.process(Event::Venue(r));
                }
                None => fills_open = false,
            },
            _ = timer.tick() => {
                engine.process(Event::Timer { ts_us: crate::clock::wall_clock_us() });
            }
            t = inputs.market.recv(), if market_open => match t {
                Some(t) => {
                    if let Some(x) = extras.as_mut() {
                        (x.before_tick)(engine, &t);
                    }
                    engine.on_tick(t.symbol, t.received_ts_us, t.price);
                    if let (Some(x), Some(at)) = (extras.as_mut(), t.received_at) {
                        (x.on_latency)(at.elapsed().as_nanos() as u64);
                    }
                }
                None => market_open = false,
            },
        }
        if let Some(x) = extras.as_mut() {
            (x.after_event)(engine);
        }
    }
}
