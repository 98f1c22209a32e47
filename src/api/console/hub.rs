//! What the console's push streams carry, made once for all of them: one task reads the feed's
//! prices, the new fills and the overview, and broadcasts what changed. However many consoles
//! are open, the database sees one reader (and none while no console is), and the engine's
//! thread is never asked for anything.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::json;
use tokio::sync::broadcast;

use super::super::ApiState;

/// One pushed event: its SSE name and JSON data.
#[derive(Debug, Clone)]
pub struct Push {
    pub event: &'static str,
    pub data: Arc<String>,
}

/// How often prices are looked at; fills and the overview on multiples of it.
const PRICE_EVERY: Duration = Duration::from_millis(200);
const FILLS_EVERY_ROUNDS: u64 = 2;
const OVERVIEW_EVERY_ROUNDS: u64 = 5;
/// Price points kept per market for the strategy page's chart (at most one per 200 ms, only
/// when the price moved): two hours of a busy market.
const TAPE_POINTS: usize = 36_000;

#[derive(Default)]
struct Latest {
    overview: Option<Arc<String>>,
    prices: BTreeMap<String, (Decimal, i64)>,
}

/// The push hub: a broadcast channel, the latest overview for a console that just connected,
/// and each market's recent prices (the chart's history).
pub struct Hub {
    tx: broadcast::Sender<Push>,
    latest: Mutex<Latest>,
    tape: Mutex<BTreeMap<String, VecDeque<(i64, Decimal)>>>,
    /// Which fills were pushed: every one above `FillCursor::low` not yet pushed is.
    fill_cursor: Mutex<FillCursor>,
}

/// Fills are pushed from `low` on. Ids are not committed in order everywhere (PostgreSQL
/// hands out ids before commit, and several writers commit in any order), so each read goes
/// back `FILL_WINDOW` ids below the newest pushed and skips the ids it pushed already: a fill
/// that commits late under a lower id is still pushed, and none twice.
#[derive(Debug, Default)]
struct FillCursor {
    /// Nothing at or below it is pushed (`None`: not set yet).
    low: Option<i64>,
    /// Ids pushed above `low`.
    sent: std::collections::BTreeSet<i64>,
}

const FILL_WINDOW: i64 = 64;

impl FillCursor {
    /// From `newest` on (never back).
    fn start_after(&mut self, newest: i64) {
        if self.low.is_none_or(|low| newest > low) {
            self.low = Some(newest);
            self.sent.retain(|id| *id > newest);
        }
    }

    /// Where the next read starts.
    fn read_after(&self) -> Option<i64> {
        let low = self.low?;
        let top = self.sent.last().copied().unwrap_or(low);
        Some((top - FILL_WINDOW).max(low))
    }

    /// Whether `id` is new (and now counted as pushed).
    fn take(&mut self, id: i64) -> bool {
        if self.low.is_some_and(|low| id <= low) {
            return false;
        }
        let new = self.sent.insert(id);
        // Ids far below the newest are done: the window never reads them again.
        if let Some(top) = self.sent.last().copied() {
            let floor = top - FILL_WINDOW;
            if self.low.is_some_and(|low| floor > low) {
                self.low = Some(floor);
                self.sent.retain(|i| *i > floor);
            }
        }
        new
    }
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            tx: broadcast::channel(1024).0,
            latest: Mutex::new(Latest::default()),
            tape: Mutex::new(BTreeMap::new()),
            fill_cursor: Mutex::new(FillCursor::default()),
        }
    }
}

impl Hub {
    /// A console's stream. When no other console is open, fills are pushed from the newest on
    /// record now: the page it loads has read the ones before.
    pub async fn subscribe(&self, store: &crate::store::Store) -> broadcast::Receiver<Push> {
        if self.tx.receiver_count() == 0 {
            self.push_fills_from_now(store).await;
        }
        self.tx.subscribe()
    }

    /// Push the fills after the newest on record now (a page read the ones before).
    async fn push_fills_from_now(&self, store: &crate::store::Store) {
        if let Ok(newest) = store.last_fill_id().await {
            if let Ok(mut c) = self.fill_cursor.lock() {
                c.start_after(newest);
            }
        }
    }

    /// What a console that just connected is sent first: the latest overview and prices.
    pub fn snapshot(&self) -> Vec<Push> {
        let Ok(latest) = self.latest.lock() else {
            return Vec::new();
        };
        let mut out: Vec<Push> = latest
            .prices
            .iter()
            .map(|(stream, (price, at))| price_push(stream, *price, *at))
            .collect();
        if let Some(o) = &latest.overview {
            out.push(Push {
                event: "overview",
                data: o.clone(),
            });
        }
        out
    }

    /// Each stream's last price (Binance's by stream name, the live pools' as `pool:BASE/QUOTE`).
    pub fn prices(&self) -> BTreeMap<String, Decimal> {
        self.latest
            .lock()
            .map(|l| l.prices.iter().map(|(k, (p, _))| (k.clone(), *p)).collect())
            .unwrap_or_default()
    }

    /// `(ms, price)` of a market (by stream name, `btcusdt`) since `since_ms`, oldest first.
    pub fn tape(&self, stream: &str, since_ms: i64) -> Vec<(i64, Decimal)> {
        self.tape
            .lock()
            .ok()
            .and_then(|t| {
                t.get(stream)
                    .map(|q| q.iter().filter(|(t, _)| *t >= since_ms).copied().collect())
            })
            .unwrap_or_default()
    }

    fn send(&self, push: Push) {
        // No receiver: no console open; nothing to do.
        let _ = self.tx.send(push);
    }

    /// Prices that moved since the last look go on the tape and, with a console open, out.
    fn look_at_prices(&self, st: &ApiState, consoles: bool) {
        // Binance's trades by stream name, and the live markets' pools as `pool:BASE/QUOTE`
        // (what live grids trade on, as the daemon last read them).
        let mut prices = st.feed.last_prices();
        if let Ok(markets) = st.metrics.markets.lock() {
            prices.extend(markets.iter().filter_map(|(market, m)| {
                m.dex_price
                    .map(|p| (super::overview::pool_stream(market), p, m.at_ms))
            }));
        }
        for (stream, price, at) in prices {
            let moved = self.latest.lock().is_ok_and(|mut l| {
                let moved = l
                    .prices
                    .get(&stream)
                    .is_none_or(|(p, t)| *p != price || *t != at);
                if moved {
                    l.prices.insert(stream.clone(), (price, at));
                }
                moved
            });
            if !moved {
                continue;
            }
            if let Ok(mut tape) = self.tape.lock() {
                let q = tape.entry(stream.clone()).or_default();
                if q.back().is_none_or(|(_, p)| *p != price) {
                    q.push_back((at, price));
                    if q.len() > TAPE_POINTS {
                        q.pop_front();
                    }
                }
            }
            if consoles {
                self.send(price_push(&stream, price, at));
            }
        }
    }

    /// Until `shutdown`: prices every 200 ms, new fills every 400 ms and the overview every
    /// second while a console is open.
    pub async fn run(self: Arc<Self>, st: ApiState) {
        let mut shutdown = st.shutdown.subscribe();
        let mut every = tokio::time::interval(PRICE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut round: u64 = 0;
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            round += 1;
            let consoles = self.tx.receiver_count() > 0;
            self.look_at_prices(&st, consoles);
            if !consoles {
                continue;
            }
            if round.is_multiple_of(FILLS_EVERY_ROUNDS) {
                self.push_fills(&st).await;
            }
            if round.is_multiple_of(OVERVIEW_EVERY_ROUNDS) {
                match super::overview::overview_document(&st).await {
                    Ok(doc) => {
                        let text = Arc::new(doc.to_string());
                        let changed = self.latest.lock().is_ok_and(|mut l| {
                            let changed = l.overview.as_deref() != Some(&*text);
                            l.overview = Some(text.clone());
                            changed
                        });
                        if changed {
                            self.send(Push {
                                event: "overview",
                                data: text,
                            });
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "console overview not built"),
                }
            }
        }
    }
}

impl Hub {
    /// The fills after the cursor, in order, each pushed once.
    async fn push_fills(&self, st: &ApiState) {
        let after = self.fill_cursor.lock().ok().and_then(|c| c.read_after());
        let Some(after) = after else {
            // The read at the first subscription failed: start now.
            return self.push_fills_from_now(&st.store).await;
        };
        let Ok(fills) = st.store.fills_after(None, after, 500).await else {
            return;
        };
        for f in fills {
            let new =
                f.id.is_some_and(|id| self.fill_cursor.lock().is_ok_and(|mut c| c.take(id)));
            if new {
                self.send(Push {
                    event: "fill",
                    data: Arc::new(json!(f).to_string()),
                });
            }
        }
    }
}

fn price_push(stream: &str, price: Decimal, at: i64) -> Push {
    Push {
        event: "price",
        data: Arc::new(json!({"stream": stream, "price": price, "at": at}).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fill_committed_late_under_a_lower_id_is_pushed_once() {
        let mut c = FillCursor::default();
        assert_eq!(c.read_after(), None);
        c.start_after(10);
        assert!(!c.take(10), "on record before the console came");
        assert!(c.take(12) && c.take(13));
        assert!(!c.take(13), "never twice");
        // 11 commits after 12 and 13: the next read still covers it.
        assert!(c.read_after().is_some_and(|a| a < 11));
        assert!(c.take(11));
        assert!(!c.take(11));
        // A console reconnecting later never moves the cursor back.
        c.start_after(5);
        assert!(!c.take(12));
        // Far below the newest, ids are done for good and the set stays small.
        for id in 14..1000 {
            assert!(c.take(id));
        }
        assert!(c.sent.len() <= FILL_WINDOW as usize + 1);
        assert!(c.read_after().is_some_and(|a| a >= 999 - FILL_WINDOW));
    }
}
