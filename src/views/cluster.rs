//! The cluster as the operator sees it: every daemon on the database with its units and their
//! leases, the units nobody holds, and the recent changes of owner.

use serde::Serialize;

use crate::clock::wall_clock_ms;
use crate::store::cluster::{Handover, Lease};
use crate::store::daemon::DaemonInfo;
use crate::store::{DaemonInfoExt, Store, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    pub node: i64,
    pub host: String,
    pub pid: i64,
    pub version: Option<String>,
    pub api_addr: String,
    pub started_at: i64,
    pub heartbeat_at: i64,
    pub heartbeat_age_ms: i64,
    /// `running`, `draining`, `drained`, `silent` (no heartbeat for 5 s), `dead` (its process is
    /// gone, seen from its host), `stopped`.
    pub state: String,
    pub capacity: Option<i64>,
    pub units: Vec<UnitView>,
    pub trading: Option<String>,
    pub funds: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UnitView {
    pub unit: String,
    pub epoch: i64,
    /// Milliseconds left on its lease (database clock); negative once expired.
    pub lease_left_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterView {
    pub nodes: Vec<NodeView>,
    /// Units no running daemon holds: nothing trades them until one takes them.
    pub unowned: Vec<UnitView>,
    /// Changes of owner within the last hour, newest last.
    pub handovers: Vec<Handover>,
}

fn node_state(d: &DaemonInfo, now_ms: i64, units: usize) -> String {
    if d.stopped_at.is_some() {
        return "stopped".into();
    }
    if d.host == super::hostname() && !super::daemon::process_lives(d.pid) {
        return "dead".into();
    }
    if !d.is_alive(now_ms) {
        return "silent".into();
    }
    match (d.draining, units) {
        (true, 0) => "drained".into(),
        (true, _) => "draining".into(),
        _ => "running".into(),
    }
}

pub async fn cluster_view(store: &Store) -> Result<ClusterView, StoreError> {
    let now = wall_clock_ms();
    let db_now = store.db_now_ms().await?;
    let leases: Vec<Lease> = store.leases().await?;
    let daemons = store.daemons().await?;
    let unit = |l: &Lease| UnitView {
        unit: l.unit.clone(),
        epoch: l.epoch,
        lease_left_ms: l.expires_at - db_now,
    };
    let mut nodes = Vec::new();
    for d in daemons.iter().filter(|d| d.cluster) {
        let units: Vec<UnitView> = leases
            .iter()
            .filter(|l| l.owner == Some(d.id))
            .map(unit)
            .collect();
        // Stopped members holding nothing are history, not members.
        if d.stopped_at.is_some() && units.is_empty() && now - d.heartbeat_at > 3_600_000 {
            continue;
        }
        nodes.push(NodeView {
            node: d.id,
            host: d.host.clone(),
            pid: d.pid,
            version: d.version.clone(),
            api_addr: d.api_addr.clone(),
            started_at: d.started_at,
            heartbeat_at: d.heartbeat_at,
            heartbeat_age_ms: now - d.heartbeat_at,
            state: node_state(d, now, units.len()),
            capacity: d.capacity,
            units,
            trading: d.strategies_status.clone(),
            funds: d.funds_status.clone(),
        });
    }
    let running: Vec<i64> = nodes
        .iter()
        .filter(|n| n.state == "running" || n.state == "draining")
        .map(|n| n.node)
        .collect();
    let unowned = leases
        .iter()
        .filter(|l| match l.owner {
            None => true,
            Some(o) => l.expires_at < db_now || !running.contains(&o),
        })
        .map(unit)
        .collect();
    Ok(ClusterView {
        nodes,
        unowned,
        handovers: store.handovers_since(db_now - 3_600_000).await?,
    })
}
