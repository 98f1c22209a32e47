//! The ticks canary paper strategies trade on, logged as the engine trades them: the paper gate
//! replays the same grid over exactly these ticks and paper's fills must equal the replay's.
//!
//! A tap follows a strategy, not a market: it logs its market's ticks from the first the engine
//! hands it once the strategy is in the engine (a new grid starts on that tick), so the log and
//! the strategy begin together. Which strategies are tapped comes from the record: a running or
//! paused rollout at its paper stage names its paper strategy (or its driver has just created it
//! under the stage's name).

use std::path::PathBuf;

use super::registry::Registry;
use super::DaemonEngine;
use crate::canary::{RolloutState, Stage};
use crate::model::MarketTick;
use crate::rollout::paper_stage::{tick_log_path, TickLog};
use crate::store::{Store, StoreError};

struct Tap {
    strategy_id: i64,
    path: PathBuf,
    log: Option<TickLog>,
    /// Opening or writing the log failed: said once, then the tap is idle (the paper gate will
    /// find the log short and hold).
    broken: bool,
}

#[derive(Default)]
pub struct CanaryTaps {
    taps: Vec<Tap>,
}

/// The paper strategies of rollouts at their paper stage, with their log paths.
pub async fn wanted(
    store: &Store,
    base_dir: &std::path::Path,
) -> Result<Vec<(i64, PathBuf)>, StoreError> {
    let mut wanted = Vec::new();
    for r in store.list_rollouts().await? {
        let at_paper = r
            .rollout
            .plan
            .stages
            .get(r.rollout.stage)
            .is_some_and(|s| s.stage == Stage::Paper);
        let tapped = matches!(
            r.rollout.state,
            RolloutState::Running | RolloutState::Paused { .. }
        );
        if !(at_paper && tapped) {
            continue;
        }
        // The stage's strategy on record, or the one the driver just created under the stage's
        // name (it is saved into the rollout after the create, and its first tick must be logged).
        let sid = match r.strategies.get(&r.rollout.stage) {
            Some(sid) => Some(*sid),
            None => crate::rollout::driver::stage_strategy(store, &r.name, false)
                .await?
                .map(|s| s.id),
        };
        if let Some(sid) = sid {
            wanted.push((sid, tick_log_path(base_dir, r.id, sid)));
        }
    }
    Ok(wanted)
}

impl CanaryTaps {
    /// Follow exactly `wanted`: new strategies get a tap, those no longer at their paper stage
    /// lose theirs (their log flushed). Set on the engine thread, between ticks.
    pub fn set(&mut self, wanted: Vec<(i64, PathBuf)>) {
        self.taps.retain_mut(|t| {
            let keep = wanted.iter().any(|(sid, _)| *sid == t.strategy_id);
            if !keep {
                if let Some(log) = t.log.as_mut() {
                    let _ = log.flush();
                }
            }
            keep
        });
        for (sid, path) in wanted {
            if !self.taps.iter().any(|t| t.strategy_id == sid) {
                self.taps.push(Tap {
                    strategy_id: sid,
                    path,
                    log: None,
                    broken: false,
                });
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.taps.is_empty()
    }

    /// Log `tick` for every tapped strategy in the engine on its market.
    pub fn on_tick(&mut self, engine: &DaemonEngine, registry: &Registry, tick: &MarketTick) {
        for tap in self.taps.iter_mut().filter(|t| !t.broken) {
            let Some(ix) = registry.ix(tap.strategy_id) else {
                continue;
            };
            if engine.strategy_symbol(ix) != tick.symbol {
                continue;
            }
            if tap.log.is_none() {
                let opened = tap
                    .path
                    .parent()
                    .map_or(Ok(()), crate::private_files::create_private_dirs)
                    .map_err(|e| e.to_string())
                    .and_then(|_| TickLog::open(&tap.path).map_err(|e| e.to_string()));
                match opened {
                    Ok(log) => tap.log = Some(log),
                    Err(e) => {
                        tracing::error!(strategy_id = tap.strategy_id, error = %e, "canary tick log cannot be opened; its paper gate will hold");
                        tap.broken = true;
                        continue;
                    }
                }
            }
            if let Some(log) = tap.log.as_mut() {
                // Each tick on disk as it is traded: a crash loses at most the row being written.
                if let Err(e) = log
                    .record(tick.received_ts_us, tick.price)
                    .and_then(|_| log.flush())
                {
                    tracing::error!(strategy_id = tap.strategy_id, error = %e, "canary tick log write failed; its paper gate will hold");
                    tap.broken = true;
                }
            }
        }
    }
}
