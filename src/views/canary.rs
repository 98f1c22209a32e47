//! A canary rollout as `canary status` and `/api/v1/canary` show it: where it is, how long it has
//! run and has left, every gate's last measured values against their thresholds, the next step
//! and the strategy of each stage, and every decision on record.

use serde_json::{json, Value};

use crate::canary::RolloutState;
use crate::store::canary::{RolloutRecord, TransitionRecord};
use crate::store::{Store, StoreError};

/// What comes after the current stage, as status names it.
fn next_step(rec: &RolloutRecord) -> String {
    let r = &rec.rollout;
    match &r.state {
        RolloutState::Done => "none: trading at the target size".into(),
        RolloutState::Aborted { .. } => "none: aborted".into(),
        RolloutState::Held { .. } => "an operator resumes (the stage runs again) or aborts".into(),
        RolloutState::Paused { .. } => "resumes when the pause is lifted".into(),
        RolloutState::Running => {
            let gate = r.stage_name();
            match r.plan.stages.get(r.stage + 1) {
                Some(next) => format!("{gate} gate, then {}", next.stage.name()),
                None => format!("{gate} gate, then done"),
            }
        }
    }
}

fn reason(state: &RolloutState) -> Option<&str> {
    match state {
        RolloutState::Held { reason }
        | RolloutState::Paused { reason }
        | RolloutState::Aborted { reason } => Some(reason),
        RolloutState::Running | RolloutState::Done => None,
    }
}

/// The newest report of each gate on record, by gate name.
fn last_gates(transitions: &[TransitionRecord]) -> Value {
    let mut gates = serde_json::Map::new();
    for t in transitions {
        if let Some(g) = &t.gate {
            if let Some(name) = g["gate"].as_str() {
                let mut g = g.clone();
                g["measured_at"] = json!(t.created_at);
                g["decision"] = json!(t.kind);
                gates.insert(name.to_string(), g);
            }
        }
    }
    Value::Object(gates)
}

/// The whole document of one rollout.
pub async fn rollout_document(store: &Store, rec: &RolloutRecord) -> Result<Value, StoreError> {
    let transitions = store.rollout_transitions(rec.id).await?;
    let r = &rec.rollout;
    let stages: Vec<Value> = r
        .plan
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({
                "index": i,
                "stage": s.stage.name(),
                "hours": s.hours,
                "base_order_size": s.base_order_size.unwrap_or(r.plan.target_base_order_size),
                "strategy_id": rec.strategies.get(&i),
                "current": i == r.stage,
            })
        })
        .collect();
    let due_in_ms = (r.state == RolloutState::Running).then(|| r.remaining_ms());
    Ok(json!({
        "id": rec.id,
        "name": rec.name,
        "symbol": rec.symbol,
        "type": rec.kind,
        "wallet": rec.wallet,
        "params": rec.params,
        "state": r.state.name(),
        "reason": reason(&r.state),
        "stage": r.stage_name(),
        "stage_index": r.stage,
        "stage_elapsed_ms": r.stage_elapsed_ms,
        "stage_remaining_ms": r.remaining_ms(),
        "next_step": next_step(rec),
        "next_step_due_in_ms": due_in_ms,
        "target_base_order_size": r.plan.target_base_order_size,
        "stages": stages,
        "gates": last_gates(&transitions),
        "settings": rec.settings,
        "transitions": transitions,
        "created_by": rec.created_by,
        "created_at": rec.created_at,
        "updated_at": rec.updated_at,
    }))
}

/// One line a rollout, for lists and `bot status`.
pub fn rollout_line(rec: &RolloutRecord) -> String {
    let r = &rec.rollout;
    let mut line = format!(
        "{} ({}): {} at {}, {} of {} in the stage",
        rec.name,
        rec.symbol,
        r.state.name(),
        r.stage_name(),
        duration(r.stage_elapsed_ms),
        duration(r.stage_elapsed_ms + r.remaining_ms()),
    );
    if let Some(why) = reason(&r.state) {
        line.push_str(&format!(": {why}"));
    }
    line
}

/// `1h 05m 03s`, `4m 10s`, `12s`.
pub fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (h, m, s) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}
