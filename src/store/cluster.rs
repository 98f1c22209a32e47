//! Several daemons on one PostgreSQL: each unit of work (a wallet with its live strategies, a
//! paper strategy, the funds manager, the canary driver) has a lease row with its owner, a
//! fencing epoch and an expiry on the database's clock.
//!
//! The guarantee is the fence, not the clock: every write that belongs to a unit first reads the
//! unit's lease `FOR SHARE` in its own transaction and is refused unless this daemon still owns
//! it at the epoch it took it with. A takeover updates that row, so it waits for such a write to
//! commit (the new owner then sees it) or makes it fail (the old owner then sends nothing).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::RwLock;

use alloy::primitives::Address;
use serde::Serialize;
use sqlx::Row;

use super::{address_key, Backend, Store, StoreError, WriteTx};

/// The funds manager's lease: it runs on one daemon at a time.
pub const FUNDS_UNIT: &str = "funds";
/// The canary driver's lease: rollouts walk on one daemon's clock at a time.
pub const ROLLOUTS_UNIT: &str = "rollouts";

/// The unit a live strategy belongs to: its wallet (the nonces must have one owner).
pub fn wallet_unit(wallet: &Address) -> String {
    format!("wallet:{}", address_key(wallet))
}

/// The unit of a paper strategy: itself.
pub fn paper_unit(strategy_id: i64) -> String {
    format!("paper:{strategy_id}")
}

/// The database's clock in epoch milliseconds: leases expire on one clock, whatever the hosts'.
const DB_NOW_MS: &str = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";

/// How long the statements after this wait for a row lock, in this transaction only.
async fn set_lock_wait(tx: &mut WriteTx, lock_wait_ms: u64) -> Result<(), StoreError> {
    sqlx::query(&format!("SET LOCAL lock_timeout = {}", lock_wait_ms.max(1)))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// PostgreSQL's `lock_not_available` (a lock wait ran out) as [`StoreError::LeaseBusy`].
fn busy_or(e: sqlx::Error, unit: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.code().as_deref() == Some("55P03") => {
            StoreError::LeaseBusy(unit.to_string())
        }
        _ => StoreError::Db(e),
    }
}

/// A lease as on record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    pub unit: String,
    pub owner: Option<i64>,
    pub epoch: i64,
    pub expires_at: i64,
}

/// What a renewal found: the node's own row and the leases it still holds.
#[derive(Debug, Clone)]
pub struct Renewal {
    pub db_now_ms: i64,
    pub held: Vec<Lease>,
    pub stop_requested: bool,
    pub draining: bool,
}

/// A change of owner on record.
#[derive(Debug, Clone, Serialize)]
pub struct Handover {
    pub unit: String,
    pub from_node: Option<i64>,
    pub to_node: i64,
    pub epoch: i64,
    /// `new` (first owner), `failover` (taken from a daemon that stopped renewing),
    /// `handover` (released by a draining or stopping daemon), `restart` (a dead daemon's on
    /// the same host, taken by its successor at once).
    pub kind: String,
    pub at: i64,
}

/// This daemon's leases as its writers see them: which units it holds at which epoch, which
/// unit each of its strategies belongs to, and until when (monotonic) it may trust them.
#[derive(Debug)]
pub struct Fence {
    pub node: i64,
    held: RwLock<HashMap<String, i64>>,
    strategies: RwLock<HashMap<i64, String>>,
    /// `clock::monotonic_ms` past which no lease may be trusted: one renewal period before the
    /// earliest expiry, counted from when the last successful renewal was *sent*.
    valid_until_ms: AtomicI64,
    /// Bumped whenever the held set changes (the control poller re-reads desired state then).
    generation: std::sync::atomic::AtomicU64,
}

impl Fence {
    pub fn new(node: i64) -> Self {
        Fence {
            node,
            held: RwLock::new(HashMap::new()),
            strategies: RwLock::new(HashMap::new()),
            valid_until_ms: AtomicI64::new(i64::MIN),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn set_held(&self, held: HashMap<String, i64>) {
        if let Ok(mut h) = self.held.write() {
            if *h != held {
                *h = held;
                self.generation.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub fn holds(&self, unit: &str) -> bool {
        self.held.read().is_ok_and(|h| h.contains_key(unit))
    }

    pub fn held(&self) -> HashMap<String, i64> {
        self.held.read().map(|h| h.clone()).unwrap_or_default()
    }

    pub fn epoch_of(&self, unit: &str) -> Option<i64> {
        self.held.read().ok().and_then(|h| h.get(unit).copied())
    }

    pub fn set_strategy_unit(&self, strategy_id: i64, unit: String) {
        if let Ok(mut s) = self.strategies.write() {
            s.insert(strategy_id, unit);
        }
    }

    pub fn unit_of_strategy(&self, strategy_id: i64) -> Option<String> {
        self.strategies
            .read()
            .ok()
            .and_then(|s| s.get(&strategy_id).cloned())
    }

    pub fn trust_until(&self, monotonic_ms: i64) {
        self.valid_until_ms.store(monotonic_ms, Ordering::SeqCst);
    }

    /// Whether the leases may still be trusted now (renewed recently enough).
    pub fn trusted(&self) -> bool {
        crate::clock::monotonic_ms() < self.valid_until_ms.load(Ordering::SeqCst)
    }

    /// The lease a transaction from `wallet` is fenced by: the wallet's own when it is a
    /// trading wallet this daemon holds, else the funds manager's (the treasury's drips).
    pub fn unit_for_wallet(&self, wallet: &Address) -> Option<(String, i64)> {
        let unit = wallet_unit(wallet);
        if let Some(e) = self.epoch_of(&unit) {
            return Some((unit, e));
        }
        self.epoch_of(FUNDS_UNIT)
            .map(|e| (FUNDS_UNIT.to_string(), e))
    }
}

impl Store {
    /// The same store, with every unit write fenced by `fence`.
    pub fn with_fence(&self, fence: std::sync::Arc<Fence>) -> Store {
        Store {
            fence: Some(fence),
            ..self.clone()
        }
    }

    pub fn fence(&self) -> Option<&std::sync::Arc<Fence>> {
        self.fence.as_ref()
    }

    /// Inside `tx`: which of `expected` (unit, epoch) this daemon no longer holds. The rows it
    /// still holds stay share-locked until `tx` ends, so no takeover can commit in between.
    pub async fn lost_leases(
        &self,
        tx: &mut WriteTx,
        node: i64,
        expected: &HashMap<String, i64>,
    ) -> Result<Vec<String>, StoreError> {
        if self.backend != Backend::Postgres || expected.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query("SELECT unit, epoch FROM unit_leases WHERE owner = $1 FOR SHARE")
            .bind(node)
            .fetch_all(&mut **tx)
            .await?;
        let mut now: HashMap<String, i64> = HashMap::with_capacity(rows.len());
        for r in rows {
            now.insert(r.try_get("unit")?, r.try_get("epoch")?);
        }
        Ok(expected
            .iter()
            .filter(|(unit, epoch)| now.get(*unit) != Some(*epoch))
            .map(|(unit, _)| unit.clone())
            .collect())
    }

    /// Refuse, inside `tx`, a write for `unit` unless this daemon holds it at `epoch` (and has
    /// renewed recently enough to trust it).
    pub async fn check_lease(
        &self,
        tx: &mut WriteTx,
        fence: &Fence,
        unit: &str,
        epoch: i64,
    ) -> Result<(), StoreError> {
        if !fence.trusted() {
            return Err(StoreError::Fenced(format!(
                "the lease of {unit} was not renewed in time; nothing is written or sent for it"
            )));
        }
        let now: Option<i64> = sqlx::query_scalar(
            "SELECT epoch FROM unit_leases WHERE unit = $1 AND owner = $2 FOR SHARE",
        )
        .bind(unit.to_string())
        .bind(fence.node)
        .fetch_optional(&mut **tx)
        .await?;
        if now != Some(epoch) {
            return Err(StoreError::Fenced(format!(
                "{unit} is no longer this daemon's (epoch {epoch}, now {}); nothing is written or sent for it",
                now.map_or_else(|| "another owner".to_string(), |e| e.to_string())
            )));
        }
        Ok(())
    }

    /// Inside `tx`, on a cluster member: refuse a transaction of `wallet` unless this daemon holds
    /// its lease (the wallet's own, or for the treasury the funds manager's). No-op elsewhere.
    pub async fn check_wallet_lease(
        &self,
        tx: &mut WriteTx,
        wallet: &Address,
    ) -> Result<(), StoreError> {
        let Some(fence) = self.fence() else {
            return Ok(());
        };
        let Some((unit, epoch)) = fence.unit_for_wallet(wallet) else {
            return Err(StoreError::Fenced(format!(
                "this daemon holds no lease for wallet {}; nothing is sent or recorded for it",
                address_key(wallet)
            )));
        };
        self.check_lease(tx, fence, &unit, epoch).await
    }

    /// A cluster member's own `daemon` row (a new node id each start, never reused).
    pub async fn register_node(
        &self,
        pid: i64,
        host: &str,
        api_addr: &str,
        capacity: u32,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        // Members stopped or silent for a day, holding nothing, are forgotten.
        sqlx::query(
            "DELETE FROM daemon WHERE heartbeat_at < $1 AND id NOT IN \
             (SELECT owner FROM unit_leases WHERE owner IS NOT NULL)",
        )
        .bind(now_ms - 86_400_000)
        .execute(&self.pool)
        .await?;
        let mut last = None;
        for _ in 0..10 {
            let inserted: Result<i64, sqlx::Error> = sqlx::query_scalar(
                "INSERT INTO daemon (id, pid, host, api_addr, started_at, heartbeat_at, stopped_at, \
                 stop_requested, version, capacity, draining, cluster, funds_status, strategies_status) \
                 SELECT COALESCE(MAX(id), 0) + 1, $1, $2, $3, $4, $4, NULL, 0, $5, $6, 0, 1, \
                 'starting', 'starting' FROM daemon \
                 RETURNING id",
            )
            .bind(pid)
            .bind(host.to_string())
            .bind(api_addr.to_string())
            .bind(now_ms)
            .bind(env!("CARGO_PKG_VERSION").to_string())
            .bind(i64::from(capacity))
            .fetch_one(&self.pool)
            .await;
            match inserted {
                Ok(id) => return Ok(id),
                // Two members starting at once picked the same id: the loser picks again.
                Err(e) => last = Some(e),
            }
        }
        Err(last.map_or_else(|| StoreError::Io("no node id".into()), StoreError::Db))
    }

    pub async fn set_api_addr(&self, node: i64, api_addr: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE daemon SET api_addr = $1 WHERE id = $2")
            .bind(api_addr.to_string())
            .bind(node)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Units that should exist (strategies not stopped) get a lease row, free.
    pub async fn ensure_units(&self, units: &[String], now_ms: i64) -> Result<(), StoreError> {
        for unit in units {
            sqlx::query(
                "INSERT INTO unit_leases (unit, owner, epoch, expires_at, created_at) \
                 VALUES ($1, NULL, 0, 0, $2) ON CONFLICT (unit) DO NOTHING",
            )
            .bind(unit.clone())
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// Forget a unit nobody needs any more (its strategies stopped): if free, held by `node`,
    /// or its owner's lease ran out more than `grace_ms` ago. Waits for its row as
    /// [`Store::take_lease`] does.
    pub async fn drop_unit(
        &self,
        node: i64,
        unit: &str,
        grace_ms: i64,
        lock_wait_ms: u64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        set_lock_wait(&mut tx, lock_wait_ms).await?;
        sqlx::query(&format!(
            "DELETE FROM unit_leases WHERE unit = $1 AND (owner IS NULL OR owner = $2 \
             OR expires_at < {DB_NOW_MS} - $3)"
        ))
        .bind(unit.to_string())
        .bind(node)
        .bind(grace_ms)
        .execute(&mut *tx)
        .await
        .map_err(|e| busy_or(e, unit))?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        let rows =
            sqlx::query("SELECT unit, owner, epoch, expires_at FROM unit_leases ORDER BY unit")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(lease_of).collect()
    }

    pub async fn db_now_ms(&self) -> Result<i64, StoreError> {
        match self.backend {
            Backend::Postgres => Ok(sqlx::query_scalar(&format!("SELECT {DB_NOW_MS}"))
                .fetch_one(&self.pool)
                .await?),
            Backend::Sqlite => Ok(crate::clock::wall_clock_ms()),
        }
    }

    /// The node's heartbeat and every lease it holds pushed to `lease_ms` from the database's
    /// now, in one transaction: what comes back is exactly what it still holds.
    pub async fn renew_leases(
        &self,
        node: i64,
        lease_ms: i64,
        now_ms: i64,
    ) -> Result<Renewal, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "UPDATE daemon SET heartbeat_at = $1 WHERE id = $2 \
             RETURNING stop_requested, draining, {DB_NOW_MS} AS db_now"
        ))
        .bind(now_ms)
        .bind(node)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!("daemon node {node}")));
        };
        let stop: i64 = row.try_get("stop_requested")?;
        let draining: i64 = row.try_get("draining")?;
        let db_now_ms: i64 = row.try_get("db_now")?;
        let rows = sqlx::query(&format!(
            "UPDATE unit_leases SET expires_at = {DB_NOW_MS} + $1 WHERE owner = $2 \
             RETURNING unit, owner, epoch, expires_at"
        ))
        .bind(lease_ms)
        .bind(node)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Renewal {
            db_now_ms,
            held: rows.iter().map(lease_of).collect::<Result<_, _>>()?,
            stop_requested: stop != 0,
            draining: draining != 0,
        })
    }

    /// Take `unit` if it is free, expired, or held by `dead` (a member known dead): its epoch
    /// grows and the change of owner goes on record. `None` when another member has it.
    ///
    /// The row is waited for at most `lock_wait_ms` ([`StoreError::LeaseBusy`] then): a write
    /// of the old owner's may hold it share-locked, and the lease manager must not stall behind
    /// it, as its own renewals come next.
    pub async fn take_lease(
        &self,
        node: i64,
        unit: &str,
        lease_ms: i64,
        dead: &[i64],
        lock_wait_ms: u64,
    ) -> Result<Option<Handover>, StoreError> {
        let mut tx = self.pool.begin().await?;
        set_lock_wait(&mut tx, lock_wait_ms).await?;
        let row = sqlx::query(&format!(
            "SELECT owner, epoch, expires_at, {DB_NOW_MS} AS db_now FROM unit_leases \
             WHERE unit = $1 FOR UPDATE"
        ))
        .bind(unit.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| busy_or(e, unit))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let owner: Option<i64> = row.try_get("owner")?;
        let epoch: i64 = row.try_get("epoch")?;
        let expires_at: i64 = row.try_get("expires_at")?;
        let db_now: i64 = row.try_get("db_now")?;
        let kind = match owner {
            None if epoch == 0 => "new",
            None => "handover",
            Some(o) if o == node => return Ok(None),
            Some(o) if dead.contains(&o) => "restart",
            Some(_) if expires_at < db_now => "failover",
            Some(_) => return Ok(None),
        };
        let epoch = epoch + 1;
        sqlx::query(
            "UPDATE unit_leases SET owner = $1, epoch = $2, expires_at = $3, acquired_at = $4 \
             WHERE unit = $5",
        )
        .bind(node)
        .bind(epoch)
        .bind(db_now + lease_ms)
        .bind(db_now)
        .bind(unit.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO lease_handovers (unit, from_node, to_node, epoch, kind, at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(unit.to_string())
        .bind(owner)
        .bind(node)
        .bind(epoch)
        .bind(kind.to_string())
        .bind(db_now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(Handover {
            unit: unit.to_string(),
            from_node: owner,
            to_node: node,
            epoch,
            kind: kind.to_string(),
            at: db_now,
        }))
    }

    /// Let go of every lease `node` holds (a drain, a clean stop): the others take them at once.
    pub async fn release_leases(&self, node: i64) -> Result<u64, StoreError> {
        let done =
            sqlx::query("UPDATE unit_leases SET owner = NULL, expires_at = 0 WHERE owner = $1")
                .bind(node)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }

    /// `cluster drain`: the node hands its units over and takes no more (audited with the
    /// operator's reason in the same transaction). False when no such running member exists.
    pub async fn request_drain(
        &self,
        node: i64,
        reason: &str,
        audit: &super::AuditContext,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE daemon SET draining = 1 WHERE id = $1 AND cluster = 1 AND stopped_at IS NULL",
        )
        .bind(node)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        super::audit::insert(
            &mut *tx,
            audit,
            "ok",
            &format!("drain daemon node {node}: {reason}"),
            now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn handovers_since(&self, since_ms: i64) -> Result<Vec<Handover>, StoreError> {
        let rows = sqlx::query(
            "SELECT unit, from_node, to_node, epoch, kind, at FROM lease_handovers \
             WHERE at >= $1 ORDER BY id",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Handover {
                    unit: r.try_get("unit")?,
                    from_node: r.try_get("from_node")?,
                    to_node: r.try_get("to_node")?,
                    epoch: r.try_get("epoch")?,
                    kind: r.try_get("kind")?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }

    /// Units per owner (None: free), for placement and `cluster list`.
    pub async fn units_per_owner(&self) -> Result<BTreeMap<Option<i64>, i64>, StoreError> {
        let mut out = BTreeMap::new();
        for l in self.leases().await? {
            *out.entry(l.owner).or_insert(0) += 1;
        }
        Ok(out)
    }
}

fn lease_of(r: &sqlx::any::AnyRow) -> Result<Lease, StoreError> {
    Ok(Lease {
        unit: r.try_get("unit")?,
        owner: r.try_get("owner")?,
        epoch: r.try_get("epoch")?,
        expires_at: r.try_get("expires_at")?,
    })
}
