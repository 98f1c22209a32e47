//! A cluster member's lease manager: renews this daemon's leases every `cluster.renew_ms`, takes
//! free or expired units up to its capacity, and tells the daemon's core what changed.
//!
//! It runs beside the engine, never on the tick path: the engine learns of leases only through
//! a halt (when they can no longer be trusted) and a restart of the daemon's core (when units
//! were taken over, lost, or handed away), which runs the same start-up path — recovery of the
//! wallet's transactions in flight, restore of every strategy's state — as a fresh start.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch, Notify};

use crate::alerts::Alerter;
use crate::clock::{monotonic_ms, wall_clock_ms};
use crate::config::Config;
use crate::engine::Control;
use crate::metrics::{ClusterGauges, Metrics};
use crate::store::cluster::{paper_unit, wallet_unit, Fence, Handover, FUNDS_UNIT, ROLLOUTS_UNIT};
use crate::store::{Store, StoreError, StrategyRecord};
use crate::strategy::{StrategyMode, StrategyStatus};
use crate::views::daemon::process_lives;
use crate::views::hostname;

/// Wallet names → their addresses, as the keystore records them (no password needed).
pub type WalletBook = HashMap<String, alloy::primitives::Address>;

pub fn wallet_book(config: &Config) -> WalletBook {
    crate::wallet::Keystore::of_config(config)
        .list()
        .map(|all| all.into_iter().map(|w| (w.name, w.address)).collect())
        .unwrap_or_default()
}

/// The unit a strategy belongs to: a live one its wallet's (by address: two names of one key
/// are one unit), a paper one its own.
pub fn unit_of(record: &StrategyRecord, wallets: &WalletBook) -> String {
    match (record.mode, record.wallet.as_deref()) {
        (StrategyMode::Live, Some(name)) => match wallets.get(name) {
            Some(a) => wallet_unit(a),
            // Not in the keystore: it cannot run anywhere; still one unit per name.
            None => format!("wallet-name:{name}"),
        },
        _ => paper_unit(record.id),
    }
}

/// Units the funds manager and the canary driver hold: never counted against capacity.
fn is_singleton(unit: &str) -> bool {
    unit == FUNDS_UNIT || unit == ROLLOUTS_UNIT
}

/// How long the database lets a session of this daemon's idle inside a transaction: a member
/// that vanished mid-write must not hold its lease rows locked past the lease itself, so on a
/// cluster it is half a lease at most (and a second at least, for a slow machine's writes).
pub fn idle_in_transaction_ms(config: &Config) -> u64 {
    if !config.cluster.enabled {
        return crate::store::IDLE_IN_TRANSACTION_MS;
    }
    let half_lease = u64::try_from(config.cluster.lease_ms() / 2).unwrap_or(0);
    crate::store::IDLE_IN_TRANSACTION_MS.min(half_lease.max(1_000))
}

/// A lease row still locked by a write of another session's is left for the next round (its
/// session ends when the write does, or when the database ends it as gone: a member cut off
/// mid-write); other errors end the round. `None` for a busy row.
fn busy_or_done<T>(result: Result<T, StoreError>) -> Result<Option<T>, StoreError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(StoreError::LeaseBusy(unit)) => {
            tracing::warn!(%unit, "lease row locked by an unfinished write; tried again next round");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// How long a unit nobody needs (all its strategies stopped) stays held, so a stop's last swap
/// settles under the lease it was sent with.
const UNNEEDED_GRACE_MS: i64 = 60_000;

/// What the daemon's core and the lease manager share.
#[derive(Clone)]
pub struct ClusterLink {
    pub fence: Arc<Fence>,
    /// Bumped, with why, when the core must be started again on the units now held.
    pub restart: watch::Sender<(u64, String)>,
    /// The running core's engine control channel: a halt goes there when the leases lapse.
    pub control: Arc<Mutex<Option<mpsc::Sender<Control>>>>,
    /// `cluster drain` reached this daemon: it takes nothing and has let go of its units.
    pub draining: Arc<AtomicBool>,
    /// The first acquisition round is done (the first core waits for it).
    pub ready: watch::Sender<bool>,
    /// The keystore's wallets, read again by every acquisition round.
    pub wallets: Arc<std::sync::RwLock<WalletBook>>,
}

impl ClusterLink {
    pub fn new(fence: Arc<Fence>) -> Self {
        ClusterLink {
            fence,
            restart: watch::channel((0, String::new())).0,
            control: Arc::new(Mutex::new(None)),
            draining: Arc::new(AtomicBool::new(false)),
            ready: watch::channel(false).0,
            wallets: Arc::new(std::sync::RwLock::new(WalletBook::new())),
        }
    }

    pub fn request_restart(&self, why: String) {
        self.restart.send_modify(|(n, w)| {
            *n += 1;
            *w = why;
        });
    }

    /// Whether the core should run `record`: its unit is held.
    pub fn owns(&self, record: &StrategyRecord) -> bool {
        let unit = self
            .wallets
            .read()
            .map(|w| unit_of(record, &w))
            .unwrap_or_else(|_| paper_unit(record.id));
        let held = self.fence.holds(&unit);
        if held {
            self.fence.set_strategy_unit(record.id, unit);
        }
        held
    }
}

pub struct LeaseManager {
    pub store: Store,
    pub config: Arc<Config>,
    pub link: ClusterLink,
    pub metrics: Arc<Metrics>,
    pub alerter: Alerter,
    pub poke: Arc<Notify>,
    /// The daemon's own stop (a `bot stop` seen in the node's row).
    pub shutdown: watch::Sender<bool>,
    /// Whether this daemon trades (funds and rollouts units are taken only then).
    pub trades: bool,
    pub funds: bool,
}

impl LeaseManager {
    fn node(&self) -> i64 {
        self.link.fence.node
    }

    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let renew = Duration::from_millis(self.config.cluster.renew_ms);
        let lease_ms = self.config.cluster.lease_ms();
        let renew_ms = i64::try_from(self.config.cluster.renew_ms).unwrap_or(1_000);
        // Trust ends three renewals before the lease does: the halt reaches the engine, and the
        // last write in flight commits, well before another daemon may take the unit.
        let trust_ms = (lease_ms - 3 * renew_ms).max(lease_ms / 2);
        let mut gauges = ClusterGauges {
            node: self.node(),
            ..Default::default()
        };
        let mut halted = false;
        let mut seen_free: HashMap<String, u32> = HashMap::new();
        let mut unneeded_since: HashMap<String, i64> = HashMap::new();
        let mut first = true;
        loop {
            if !first {
                tokio::select! {
                    _ = shutdown.wait_for(|s| *s) => return,
                    _ = tokio::time::sleep(renew) => {}
                }
            }
            let sent = monotonic_ms();
            let began = Instant::now();
            let renewal = tokio::time::timeout(
                renew,
                self.store
                    .renew_leases(self.node(), lease_ms, wall_clock_ms()),
            )
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Io(format!(
                    "lease renewal took longer than {} ms",
                    renew.as_millis()
                )))
            });
            let renewal = match renewal {
                Ok(r) => r,
                Err(e) => {
                    gauges.renew_failures += 1;
                    tracing::warn!(error = %e, "cannot renew leases");
                    if !self.link.fence.trusted() && !halted {
                        halted = true;
                        gauges.lapsed = true;
                        let units: Vec<String> = self.link.fence.held().into_keys().collect();
                        tracing::error!(?units, "leases not renewed in time: trading stops before they can expire; nothing is written or sent for these units until they are renewed");
                        self.alerter.raise(
                            "cluster_lease_lapsed",
                            "critical",
                            format!(
                                "daemon node {} cannot renew its leases ({e}); it stopped trading {} units",
                                self.node(),
                                units.len()
                            ),
                        );
                        self.halt("leases could not be renewed in time");
                    }
                    self.publish(&gauges);
                    if first {
                        let _ = self.link.ready.send(true);
                        first = false;
                    }
                    continue;
                }
            };
            gauges.renewals += 1;
            gauges.last_renew_seconds = began.elapsed().as_secs_f64();
            if renewal.stop_requested {
                tracing::info!("stop requested through the database");
                let _ = self.shutdown.send(true);
                return;
            }
            let expected = self.link.fence.held();
            let now_held: HashMap<String, i64> = renewal
                .held
                .iter()
                .map(|l| (l.unit.clone(), l.epoch))
                .collect();
            let lost: Vec<String> = expected
                .iter()
                .filter(|(u, e)| now_held.get(*u) != Some(*e))
                .map(|(u, _)| u.clone())
                .collect();
            self.link.fence.set_held(now_held);
            self.link.fence.trust_until(sent + trust_ms);
            gauges.units = renewal
                .held
                .iter()
                .map(|l| {
                    (
                        l.unit.clone(),
                        (l.epoch, (l.expires_at - renewal.db_now_ms) as f64 / 1000.0),
                    )
                })
                .collect();
            if !lost.is_empty() {
                gauges.lost += lost.len() as u64;
                tracing::error!(units = ?lost, "leases lost to another daemon (this one was paused or cut off): it stops trading them and writes and sends nothing for them");
                self.alerter.raise(
                    "cluster_lease_lost",
                    "critical",
                    format!(
                        "daemon node {} lost {} units to another daemon: {}",
                        self.node(),
                        lost.len(),
                        lost.join(", ")
                    ),
                );
                self.halt("leases lost to another daemon");
                self.link
                    .request_restart(format!("lost {}", lost.join(", ")));
            }
            if halted {
                halted = false;
                gauges.lapsed = false;
                tracing::warn!(
                    "leases renewed again after a lapse: trading resumes on the units still held"
                );
                self.link
                    .request_restart("leases renewed after a lapse".into());
            }
            if renewal.draining {
                if !self.link.draining.swap(true, Ordering::SeqCst) {
                    tracing::warn!("drain requested: handing every unit over");
                    self.link.request_restart("drain".into());
                }
            } else if let Err(e) = self
                .acquire(
                    renewal.db_now_ms,
                    lease_ms,
                    &mut seen_free,
                    &mut unneeded_since,
                    &mut gauges,
                )
                .await
            {
                tracing::warn!(error = %e, "cannot take units this round");
            }
            self.publish(&gauges);
            if first {
                let _ = self.link.ready.send(true);
                first = false;
            }
        }
    }

    fn halt(&self, reason: &str) {
        if let Some(tx) = self.link.control.lock().ok().and_then(|c| c.clone()) {
            let _ = tx.try_send(Control::Halt {
                reason: format!("cluster: {reason}"),
            });
        }
    }

    fn publish(&self, gauges: &ClusterGauges) {
        if let Ok(mut c) = self.metrics.cluster.lock() {
            *c = Some(gauges.clone());
        }
    }

    /// One round: units needed get lease rows; free and expired ones are taken, the member
    /// with the most room first; units nobody needs any more are let go.
    async fn acquire(
        &self,
        db_now: i64,
        lease_ms: i64,
        seen_free: &mut HashMap<String, u32>,
        unneeded_since: &mut HashMap<String, i64>,
        gauges: &mut ClusterGauges,
    ) -> Result<(), StoreError> {
        let node = self.node();
        let strategies = self.store.list_strategies(None).await?;
        let book = wallet_book(&self.config);
        let mut needed: BTreeSet<String> = strategies
            .iter()
            .filter(|s| s.status != StrategyStatus::Stopped)
            .map(|s| unit_of(s, &book))
            .collect();
        if let Ok(mut w) = self.link.wallets.write() {
            *w = book;
        }
        if self.trades {
            needed.insert(ROLLOUTS_UNIT.to_string());
            if self.funds {
                needed.insert(FUNDS_UNIT.to_string());
            }
        }
        let leases = self.store.leases().await?;
        let on_record: BTreeSet<&str> = leases.iter().map(|l| l.unit.as_str()).collect();
        let missing: Vec<String> = needed
            .iter()
            .filter(|u| !on_record.contains(u.as_str()))
            .cloned()
            .collect();
        let leases = if missing.is_empty() {
            leases
        } else {
            self.store.ensure_units(&missing, db_now).await?;
            self.store.leases().await?
        };
        let members = self.store.daemons().await?;
        let renew_ms = i64::try_from(self.config.cluster.renew_ms).unwrap_or(1_000);
        // A lease row is locked for one write of its owner's (milliseconds); a longer wait
        // would delay this member's own next renewal.
        let lock_wait_ms = self.config.cluster.renew_ms / 4;
        let me = hostname();
        let dead: Vec<i64> = members
            .iter()
            .filter(|m| m.cluster && m.id != node && m.host == me && !process_lives(m.pid))
            .map(|m| m.id)
            .collect();
        let now_ms = wall_clock_ms();
        let alive: Vec<&crate::store::daemon::DaemonInfo> = members
            .iter()
            .filter(|m| {
                m.cluster
                    && m.stopped_at.is_none()
                    && !m.draining
                    && !dead.contains(&m.id)
                    // Heartbeats come every renewal: three missed, and it gets no new units.
                    && now_ms - m.heartbeat_at < 3 * renew_ms
            })
            .collect();
        let mut owned: BTreeMap<i64, i64> = BTreeMap::new();
        for l in &leases {
            if let Some(o) = l.owner {
                if !is_singleton(&l.unit) && l.expires_at >= db_now {
                    *owned.entry(o).or_insert(0) += 1;
                }
            }
        }
        // Room per live member: what every member computes from the same rows, so they agree on
        // who takes what without talking to each other.
        let mut rooms: BTreeMap<i64, i64> = alive
            .iter()
            .map(|m| {
                (
                    m.id,
                    m.capacity.unwrap_or(0) - owned.get(&m.id).copied().unwrap_or(0),
                )
            })
            .collect();
        let capacity = i64::from(self.config.cluster.capacity);
        let mut mine = owned.get(&node).copied().unwrap_or(0);
        let mut gained: Vec<Handover> = Vec::new();
        let mut unowned = 0u64;
        for l in &leases {
            if !needed.contains(&l.unit) {
                // Nobody's any more: forgotten once free (or long expired), so it is not
                // shown as a unit without an owner.
                let stale = l.owner.is_none() || l.expires_at < db_now - UNNEEDED_GRACE_MS;
                if stale && l.owner != Some(node) {
                    busy_or_done(
                        self.store
                            .drop_unit(node, &l.unit, UNNEEDED_GRACE_MS, lock_wait_ms)
                            .await,
                    )?;
                }
                continue;
            }
            let takeable = match l.owner {
                None => true,
                Some(o) if o == node => false,
                Some(o) => l.expires_at < db_now || dead.contains(&o),
            };
            if !takeable {
                seen_free.remove(&l.unit);
                continue;
            }
            unowned += 1;
            let singleton = is_singleton(&l.unit);
            // Placement: each unit in turn to the member with the most room left (ties: the
            // lowest node id). A member takes what falls to it; the others leave it for three
            // rounds, then take it themselves (its member may have died since).
            let assignee = rooms
                .iter()
                .max_by_key(|(id, room)| (**room, std::cmp::Reverse(**id)))
                .filter(|(_, room)| singleton || **room > 0)
                .map(|(id, _)| *id);
            if let (Some(a), false) = (assignee, singleton) {
                if let Some(r) = rooms.get_mut(&a) {
                    *r -= 1;
                }
            }
            if !singleton && mine >= capacity {
                continue;
            }
            let waited = seen_free.entry(l.unit.clone()).or_insert(0);
            let from_dead_here = l.owner.is_some_and(|o| dead.contains(&o));
            if assignee.is_some() && assignee != Some(node) && *waited < 3 && !from_dead_here {
                *waited += 1;
                continue;
            }
            let taken = self
                .store
                .take_lease(node, &l.unit, lease_ms, &dead, lock_wait_ms)
                .await;
            if let Some(h) = busy_or_done(taken)?.flatten() {
                seen_free.remove(&l.unit);
                if !singleton {
                    mine += 1;
                }
                unowned = unowned.saturating_sub(1);
                gained.push(h);
            }
        }
        gauges.unowned = unowned;
        // Units nobody needs any more, held here: let go after the grace.
        let held = self.link.fence.held();
        let mut dropped = Vec::new();
        for unit in held.keys() {
            if needed.contains(unit) {
                unneeded_since.remove(unit);
                continue;
            }
            let since = *unneeded_since.entry(unit.clone()).or_insert(now_ms);
            if now_ms - since >= UNNEEDED_GRACE_MS {
                let done = self
                    .store
                    .drop_unit(node, unit, UNNEEDED_GRACE_MS, lock_wait_ms)
                    .await;
                if busy_or_done(done)?.is_some() {
                    dropped.push(unit.clone());
                    unneeded_since.remove(unit);
                }
            }
        }
        if gained.is_empty() && dropped.is_empty() {
            return Ok(());
        }
        let mut now_held = held;
        for unit in &dropped {
            now_held.remove(unit);
        }
        for h in &gained {
            now_held.insert(h.unit.clone(), h.epoch);
            gauges
                .units
                .insert(h.unit.clone(), (h.epoch, lease_ms as f64 / 1000.0));
            match h.kind.as_str() {
                "failover" | "restart" => {
                    gauges.failovers += 1;
                    let from = h.from_node.map_or_else(|| "-".into(), |n| n.to_string());
                    tracing::warn!(unit = %h.unit, from_node = %from, epoch = h.epoch, kind = %h.kind, "unit taken over");
                    self.alerter.raise(
                        "cluster_failover",
                        "critical",
                        format!(
                            "{} taken over by daemon node {node} from node {from} ({}, epoch {})",
                            h.unit, h.kind, h.epoch
                        ),
                    );
                }
                kind => {
                    tracing::info!(unit = %h.unit, epoch = h.epoch, kind, "unit taken");
                }
            }
        }
        self.link.fence.set_held(now_held);
        // A unit that has had an owner before may have left orders and transactions in flight:
        // the core starts again and runs the start-up recovery for it. A brand-new one (a
        // strategy just created) joins the running core like any new strategy.
        let recover: Vec<&Handover> = gained
            .iter()
            .filter(|h| h.kind != "new" || is_singleton(&h.unit))
            .collect();
        if recover.is_empty() {
            self.poke.notify_one();
        } else {
            let units: Vec<&str> = recover.iter().map(|h| h.unit.as_str()).collect();
            self.link
                .request_restart(format!("took {}", units.join(", ")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_left_open_is_ended_within_half_a_lease() {
        let mut config = Config::default();
        config.cluster.enabled = true;
        config.cluster.lease_secs = 10;
        assert_eq!(idle_in_transaction_ms(&config), 5_000);
        config.cluster.lease_secs = 4;
        assert_eq!(idle_in_transaction_ms(&config), 2_000);
        config.cluster.lease_secs = 2;
        assert_eq!(idle_in_transaction_ms(&config), 1_000);
        config.cluster.lease_secs = 600;
        assert_eq!(idle_in_transaction_ms(&config), 5_000);
        config.cluster.enabled = false;
        config.cluster.lease_secs = 2;
        assert_eq!(idle_in_transaction_ms(&config), 5_000);
    }

    #[test]
    fn a_busy_lease_row_is_left_for_the_next_round() {
        assert_eq!(busy_or_done(Ok(7)).ok(), Some(Some(7)));
        assert_eq!(
            busy_or_done::<()>(Err(StoreError::LeaseBusy("paper:1".into()))).ok(),
            Some(None)
        );
        assert!(busy_or_done::<()>(Err(StoreError::Io("down".into()))).is_err());
    }
}
