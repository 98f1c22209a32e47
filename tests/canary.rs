//! Canary rollouts on record, on both databases: a rollout restored from its row is the rollout
//! that was saved (stage, state, the time it had); names are unique; a write on a stale read
//! changes nothing; every decision is a row, an operator's also an audit entry.

#![allow(clippy::unwrap_used)]

mod common;

use bsc_bot::canary::gates::{live_gate, LiveMeasures};
use bsc_bot::canary::{Rollout, RolloutPlan, RolloutState, TransitionKind};
use bsc_bot::config::canary::CanaryConfig;
use bsc_bot::store::canary::NewRollout;
use bsc_bot::store::{AuditContext, StoreError};
use common::{backends, TestDb};
use rust_decimal::Decimal;
use serde_json::json;

fn new_rollout(name: &str) -> (NewRollout, Rollout) {
    let settings = CanaryConfig::default()
        .with_overrides(&json!({"paper_hours": "0.01", "live_hours": "0.01", "step_hours": "0.01"}))
        .unwrap();
    let plan = RolloutPlan::new(Decimal::from(50), &settings).unwrap();
    (
        NewRollout {
            name: name.into(),
            symbol: "WBNB/USDT".into(),
            kind: "grid".into(),
            params: json!({"lower_price": "500", "upper_price": "700", "grid_count": 10, "base_order_size": "50"}),
            wallet: Some("hot".into()),
            settings,
        },
        Rollout::new(plan),
    )
}

fn ctx(command: &str) -> AuditContext {
    AuditContext {
        command: command.into(),
        arguments: vec!["canary-a".into()],
        actor: "alice".into(),
    }
}

#[tokio::test]
async fn a_rollout_on_record_is_the_rollout_that_was_saved() {
    for kind in backends() {
        let db = TestDb::new(kind).await;
        let store = db.store().await;
        let (new, rollout) = new_rollout("canary-a");
        let id = store
            .insert_rollout(&new, &rollout, &ctx("canary start"), 1_000)
            .await
            .unwrap();

        let again = store
            .insert_rollout(&new, &rollout, &ctx("canary start"), 1_001)
            .await
            .unwrap_err();
        assert!(
            matches!(&again, StoreError::Conflict(m) if m.contains("\"canary-a\" exists already (running)")),
            "{kind}: {again}"
        );
        assert_eq!(store.list_rollouts().await.unwrap().len(), 1, "{kind}");

        // The daemon runs the backtest stage and promotes it, then spends time in paper.
        let mut rec = store.get_rollout("canary-a").await.unwrap();
        assert_eq!(rec.id, id);
        assert_eq!(rec.rollout, rollout, "{kind}");
        assert_eq!(rec.created_by, "alice");
        let report = bsc_bot::canary::GateReport {
            gate: "backtest".into(),
            values: vec![],
        };
        let t = rec.rollout.decide(report).unwrap();
        rec.strategies.insert(1, 77);
        rec.version = store
            .save_rollout(&rec, Some(&t), None, 2_000)
            .await
            .unwrap();
        rec.rollout.run_for(12_345);
        rec.version = store.save_rollout(&rec, None, None, 3_000).await.unwrap();

        // What a restarted daemon reads: the same stage, state, time in stage and strategies.
        let restored = store.get_rollout(&id.to_string()).await.unwrap();
        assert_eq!(restored.rollout, rec.rollout, "{kind}");
        assert_eq!(restored.rollout.stage_name(), "paper");
        assert_eq!(restored.rollout.stage_elapsed_ms, 12_345);
        assert_eq!(restored.strategies.get(&1), Some(&77));
        assert_eq!(restored.version, rec.version);
        assert_eq!(
            restored.rollout.remaining_ms(),
            36_000 - 12_345,
            "{kind}: 0.01 h of paper, 12.345 s of it spent"
        );

        // An operator pauses on a stale read while the daemon wrote: refused, nothing changed.
        let mut stale = store.get_rollout("canary-a").await.unwrap();
        rec.rollout.run_for(1_000);
        store.save_rollout(&rec, None, None, 3_500).await.unwrap();
        let t = stale.rollout.pause("maintenance".into(), "alice").unwrap();
        let e = store
            .save_rollout(&stale, Some(&t), Some(&ctx("canary pause")), 4_000)
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{kind}: {e}");
        let now = store.get_rollout("canary-a").await.unwrap();
        assert_eq!(now.rollout.state, RolloutState::Running, "{kind}");
        assert_eq!(now.rollout.stage_elapsed_ms, 13_345, "{kind}");
        assert_eq!(
            store.rollout_transitions(id).await.unwrap().len(),
            1,
            "{kind}"
        );

        // Read again, the pause lands with its transition and the operator's audit entry.
        let mut fresh = now;
        let t = fresh.rollout.pause("maintenance".into(), "alice").unwrap();
        store
            .save_rollout(&fresh, Some(&t), Some(&ctx("canary pause")), 5_000)
            .await
            .unwrap();
        let paused = store.get_rollout("canary-a").await.unwrap();
        assert_eq!(
            paused.rollout.state,
            RolloutState::Paused {
                reason: "maintenance".into()
            },
            "{kind}"
        );
        let log = store.audit_log(10).await.unwrap();
        assert!(
            log.iter().any(|a| a.command == "canary pause"
                && a.detail
                    .as_deref()
                    .is_some_and(|d| d.contains("paper → paper paused"))),
            "{kind}: {log:?}"
        );

        // A live gate that failed: the transition keeps the gate's figures.
        let mut live = paused;
        live.rollout.resume("back".into(), "alice").unwrap();
        live.rollout
            .force_promote("skip paper".into(), "alice")
            .unwrap();
        live.rollout.run_for(live.rollout.remaining_ms());
        let report = live_gate(
            &LiveMeasures {
                swaps: 4,
                failed_swaps: 2,
                ..LiveMeasures::default()
            },
            &live.settings,
        );
        let t = live.rollout.decide(report).unwrap();
        assert_eq!(t.kind, TransitionKind::Rollback);
        store
            .save_rollout(&live, Some(&t), None, 6_000)
            .await
            .unwrap();
        let transitions = store.rollout_transitions(id).await.unwrap();
        let last = transitions.last().unwrap();
        assert_eq!(
            (
                last.kind.as_str(),
                last.from_stage.as_str(),
                last.to_state.as_str()
            ),
            ("rollback", "live 10%", "held"),
            "{kind}"
        );
        assert!(
            last.reason
                .starts_with("live gate: failed swaps % 50 (needs ≤ 10)"),
            "{}",
            last.reason
        );
        let gate = last.gate.as_ref().unwrap();
        assert_eq!(gate["values"][0]["value"], json!("50"), "{kind}: {gate}");
        assert_eq!(gate["values"][0]["passed"], json!(false), "{kind}");
        store.close().await;
    }
}

#[tokio::test]
async fn an_unknown_rollout_is_named() {
    let db = TestDb::new("sqlite").await;
    let store = db.store().await;
    let e = store.get_rollout("nope").await.unwrap_err();
    assert_eq!(e.to_string(), "canary rollout \"nope\" not found");
    assert!(e.is_invalid_input());
}
