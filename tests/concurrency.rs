//! Eight CLI processes changing strategies at once on one database: no "database is locked",
//! and the final state is exactly what the successful commands imply.

#![allow(clippy::unwrap_used)]

mod common;

use std::thread;

use common::{backends, create_grid, TestDb};

const PROCESSES: usize = 8;
const ROUNDS: usize = 6;

#[tokio::test]
async fn eight_cli_processes_at_once() {
    for kind in backends() {
        let db = TestDb::new(kind).await;
        // Shared strategies every process fights over, plus one of its own each.
        let shared: Vec<i64> = (0..4)
            .map(|i| create_grid(&db, &format!("shared{i}")))
            .collect();
        let db = &db;
        let results: Vec<Vec<common::Run>> = thread::scope(|scope| {
            let handles: Vec<_> = (0..PROCESSES)
                .map(|p| {
                    let shared = shared.clone();
                    scope.spawn(move || {
                        let mut runs = Vec::new();
                        runs.push(db.run(&["strategy", "create", "-t", "grid", "-s", "ETH/USDT", "-n", &format!("own{p}"), "-p",
                            r#"{"lower_price":"2000","upper_price":"3000","grid_count":5,"base_order_size":"10"}"#]));
                        for round in 0..ROUNDS {
                            let target = shared[(p + round) % shared.len()].to_string();
                            let action = if (p + round) % 2 == 0 { "pause" } else { "resume" };
                            runs.push(db.run(&["strategy", action, &target]));
                            runs.push(db.run(&["strategy", "list", "--json"]));
                        }
                        runs.push(db.run(&["strategy", "stop", &format!("own{p}")]));
                        runs
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let all: Vec<&common::Run> = results.iter().flatten().collect();
        for r in &all {
            assert!(
                !r.stderr.to_lowercase().contains("locked"),
                "{kind}: {r:#?}"
            );
            assert!(!r.stderr.contains("busy"), "{kind}: {r:#?}");
            // pause/resume may legitimately lose a race (exit 1, invalid transition); nothing else may fail.
            match r.code {
                Some(0) => {}
                Some(1) => assert!(
                    r.stderr.contains("cannot pause") || r.stderr.contains("cannot resume"),
                    "{kind}: {r:#?}"
                ),
                _ => panic!("{kind}: unexpected failure {r:#?}"),
            }
        }
        for p in &results {
            assert_eq!(p[0].code, Some(0), "{kind}: create failed {:#?}", p[0]);
            assert_eq!(p.last().unwrap().code, Some(0), "{kind}: stop failed");
        }
        // Replaying the successful transitions from the audit log gives the stored status.
        let store = db.store().await;
        let audit = store.audit_log(10_000).await.unwrap();
        let ok_changes = audit
            .iter()
            .filter(|a| {
                a.outcome == "ok"
                    && (a.command == "strategy pause" || a.command == "strategy resume")
            })
            .count();
        let successes = all
            .iter()
            .filter(|r| {
                r.code == Some(0)
                    && (r.stdout.contains("-> paused") || r.stdout.contains("-> active"))
            })
            .count();
        assert_eq!(
            ok_changes, successes,
            "{kind}: audit log and command outcomes disagree"
        );
        for id in &shared {
            let s = store
                .get_strategy(&bsc_bot::store::StrategyRef::Id(*id))
                .await
                .unwrap();
            let last = audit.iter().find(|a| {
                a.outcome == "ok"
                    && a.arguments.get(2).map(String::as_str) == Some(id.to_string().as_str())
            });
            let expect = match last.map(|a| a.command.as_str()) {
                Some("strategy pause") => "paused",
                _ => "active",
            };
            assert_eq!(s.status.as_str(), expect, "{kind}: strategy {id}");
        }
        let own_stopped = store
            .list_strategies(Some(bsc_bot::strategy::StrategyStatus::Stopped))
            .await
            .unwrap();
        assert_eq!(own_stopped.len(), PROCESSES, "{kind}");
    }
}

/// Eight processes whose first ever command hits a database that does not exist yet: exactly one
/// applies the migrations, the others wait for it, none fails.
#[tokio::test]
async fn eight_first_starts_on_a_fresh_database() {
    for kind in backends() {
        let db = TestDb::new(kind).await;
        let db = &db;
        let runs: Vec<common::Run> = thread::scope(|scope| {
            let handles: Vec<_> = (0..PROCESSES)
                .map(|p| {
                    scope.spawn(move || {
                        db.run(&[
                            "strategy",
                            "create",
                            "-t",
                            "grid",
                            "-s",
                            "BTC/USDT",
                            "-n",
                            &format!("first{p}"),
                            "-p",
                            common::GRID_PARAMS,
                        ])
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in &runs {
            r.ok();
        }
        let store = db.store().await;
        assert_eq!(
            store.list_strategies(None).await.unwrap().len(),
            PROCESSES,
            "{kind}"
        );
    }
}
