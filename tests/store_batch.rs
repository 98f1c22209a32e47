//! The daemon writer's multi-row statements on both databases: batches that cross the
//! statement-size steps (64, 32, …, 1 rows) insert, update and map every row exactly once.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;

use bsc_bot::store::paper::{self, PlacedOrder, TradeRow};
use common::{backends, create_grid, TestDb};

fn order(strategy_id: i64, n: i64, status: &'static str) -> PlacedOrder {
    PlacedOrder {
        strategy_id,
        client_order_id: format!("s{strategy_id}-batch-o{n}"),
        kind: "limit".into(),
        side: if n % 2 == 0 { "buy" } else { "sell" }.into(),
        trigger_price: Some(format!("{}.5", 100 + n)),
        quote_amount: Some("10".into()),
        base_amount: None,
        cell: Some(n % 7),
        tag: Some(n),
        status,
    }
}

#[tokio::test]
async fn multi_row_writes_cover_every_row_once() {
    for kind in backends() {
        let db = TestDb::new(kind).await;
        let sids: Vec<i64> = (0..3).map(|i| create_grid(&db, &format!("b{i}"))).collect();
        let store = db.store().await;

        // 100 orders = 64 + 32 + 4 rows; one already filled.
        let rows: Vec<(PlacedOrder, i64)> = (0..100)
            .map(|n| {
                let status = if n == 5 { "filled" } else { "pending" };
                (order(sids[(n % 3) as usize], n, status), 1_000 + n)
            })
            .collect();
        let mut tx = store.begin_write().await.unwrap();
        let ids = paper::insert_orders(&mut tx, &rows).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(ids.len(), 100, "{kind}");
        let on_record: Vec<(i64, String, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT id, client_order_id, trigger_price, created_at, cell FROM orders ORDER BY id",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert_eq!(on_record.len(), 100, "{kind}");
        for (id, client, trigger, created, cell) in &on_record {
            let n: i64 = client.rsplit('o').next().unwrap().parse().unwrap();
            assert_eq!(ids[client], *id, "{kind}: {client}");
            assert_eq!(trigger, &format!("{}.5", 100 + n), "{kind}: {client}");
            assert_eq!(*created, 1_000 + n, "{kind}: {client}");
            assert_eq!(*cell, Some(n % 7), "{kind}: {client}");
        }

        // Cancel 70 of them (64 + 4 + 2 ids): pending ones change, the filled one keeps its status.
        let cancel: Vec<i64> = (0..70)
            .map(|n| ids[&format!("s{}-batch-o{n}", sids[n % 3])])
            .collect();
        let mut tx = store.begin_write().await.unwrap();
        paper::set_orders_status(&mut tx, &cancel, "cancelled", Some("drill"), 9_000)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let counts: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM orders GROUP BY status ORDER BY status")
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert_eq!(
            counts,
            vec![
                ("cancelled".to_string(), 69),
                ("filled".to_string(), 1),
                ("pending".to_string(), 30)
            ],
            "{kind}"
        );

        // 65 trades (64 + 1).
        let trades: Vec<TradeRow> = (0..65)
            .map(|n| TradeRow {
                strategy_id: sids[0],
                order_id: on_record[n].0,
                side: "buy".into(),
                price: format!("{n}.25"),
                base_amount: "0.1".into(),
                quote_amount: "10".into(),
                fee_quote: "0.01".into(),
                realized_pnl: (n % 2 == 0).then(|| "0.5".to_string()),
                executed_at: 5_000 + n as i64,
                gas_quote: None,
                gas_bnb_price: None,
            })
            .collect();
        let mut tx = store.begin_write().await.unwrap();
        paper::insert_trades(&mut tx, &trades).await.unwrap();
        tx.commit().await.unwrap();
        let (count, sum_at): (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), CAST(SUM(executed_at) AS BIGINT) FROM trades")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!((count, sum_at), (65, (5_000..5_065).sum::<i64>()), "{kind}");

        // Three strategies' states in one statement; each version moves by one.
        let before: HashMap<i64, i64> = versions(&store).await;
        let states: Vec<(i64, String, i64)> = sids
            .iter()
            .map(|id| (*id, format!("{{\"cells\":{id}}}"), 7_000 + id))
            .collect();
        let mut tx = store.begin_write().await.unwrap();
        paper::save_states(&mut tx, &states).await.unwrap();
        tx.commit().await.unwrap();
        let after = versions(&store).await;
        for id in &sids {
            assert_eq!(after[id], before[id] + 1, "{kind}");
            let (state, updated): (String, i64) =
                sqlx::query_as("SELECT state, updated_at FROM strategies WHERE id = $1")
                    .bind(*id)
                    .fetch_one(store.pool())
                    .await
                    .unwrap();
            assert_eq!(state, format!("{{\"cells\":{id}}}"), "{kind}");
            assert_eq!(updated, 7_000 + id, "{kind}");
        }
        store.close().await;
    }
}

async fn versions(store: &bsc_bot::store::Store) -> HashMap<i64, i64> {
    sqlx::query_as::<_, (i64, i64)>("SELECT id, state_version FROM strategies")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// The restart's write that matches re-issued orders with those on record fails once (after its
/// orders were written, then rolled back) and is retried in a later batch than the restore's
/// start: the retry must match the same orders again, not insert copies.
#[tokio::test]
async fn writer_retry_matches_restored_orders_again() {
    use bsc_bot::daemon::recorder::PersistOp;
    use bsc_bot::daemon::writer::Writer;
    use bsc_bot::metrics::Metrics;
    use bsc_bot::model::order::{Amount, LimitRequest, RestingKind, RestingOrder, Side};
    use bsc_bot::model::PriceKey;
    use rust_decimal::Decimal;

    for kind in backends() {
        let db = TestDb::new(kind).await;
        let sid = create_grid(&db, "restored");
        let store = db.store().await;
        let on_record: Vec<(PlacedOrder, i64)> = (1..=2)
            .map(|tag| {
                let mut o = order(sid, tag, "pending");
                o.side = "buy".into();
                o.trigger_price = Some(format!("{}", 100 + tag));
                o.tag = Some(tag);
                (o, 1_000)
            })
            .collect();
        let mut tx = store.begin_write().await.unwrap();
        let before = paper::insert_orders(&mut tx, &on_record).await.unwrap();
        tx.commit().await.unwrap();

        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let writer = Writer::new(
            store.clone(),
            77,
            Default::default(),
            Metrics::default().into(),
        );
        let task = tokio::spawn(writer.run(rx));
        let flush = |tx: &tokio::sync::mpsc::UnboundedSender<PersistOp>| {
            let (ack, done) = tokio::sync::oneshot::channel();
            tx.send(PersistOp::Flush(ack)).unwrap();
            done
        };
        tx.send(PersistOp::BeginRestore {
            strategy_ids: vec![sid],
        })
        .unwrap();
        flush(&tx).await.unwrap();
        // Armed only now, for the next batch. Only this test in this binary uses failpoints; a new
        // value arms it again for the next backend.
        std::env::set_var(
            "BSC_BOT_FAILPOINTS",
            format!("writer.after_orders=fail_once,round={kind}"),
        );
        for tag in 1..=2u64 {
            let limit = Decimal::from(100 + tag);
            let order = RestingOrder {
                id: tag,
                strategy: 0,
                kind: RestingKind::Limit(LimitRequest {
                    tag,
                    side: Side::Buy,
                    limit,
                    amount: Amount::Quote(Decimal::TEN),
                    lot_cost: None,
                }),
                trigger: PriceKey::floor_of(limit),
                below: true,
            };
            tx.send(PersistOp::OrderPlaced {
                strategy_id: sid,
                order,
                ts_ms: 2_000,
            })
            .unwrap();
        }
        tx.send(PersistOp::EndRestore).unwrap();
        flush(&tx).await.unwrap();
        drop(tx);
        task.await.unwrap();

        let rows: Vec<(i64, String)> = sqlx::query_as("SELECT id, status FROM orders ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
        let mut expected: Vec<(i64, String)> = before
            .values()
            .map(|id| (*id, "pending".to_string()))
            .collect();
        expected.sort();
        assert_eq!(
            rows, expected,
            "{kind}: restored orders not matched again after the retry"
        );
        store.close().await;
    }
}

/// The writer's engine-id ↔ order-id maps hold pending orders only: a filled and a cancelled
/// order leave them once on record (a daemon runs for months).
#[tokio::test]
async fn writer_forgets_finished_orders() {
    use bsc_bot::daemon::recorder::PersistOp;
    use bsc_bot::daemon::writer::{OrderIndex, Writer};
    use bsc_bot::metrics::Metrics;
    use bsc_bot::model::order::{Amount, Fill, LimitRequest, RestingKind, RestingOrder, Side};
    use bsc_bot::model::PriceKey;
    use rust_decimal::Decimal;

    for kind in backends() {
        let db = TestDb::new(kind).await;
        let sid = create_grid(&db, "maps");
        let store = db.store().await;
        let index: OrderIndex = Default::default();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let writer = Writer::new(store.clone(), 9, index.clone(), Metrics::default().into());
        let task = tokio::spawn(writer.run(rx));
        let resting = |id: u64| RestingOrder {
            id,
            strategy: 0,
            kind: RestingKind::Limit(LimitRequest {
                tag: id,
                side: Side::Buy,
                limit: Decimal::from(100),
                amount: Amount::Quote(Decimal::TEN),
                lot_cost: None,
            }),
            trigger: PriceKey::floor_of(Decimal::from(100)),
            below: true,
        };
        for id in 1..=3 {
            tx.send(PersistOp::OrderPlaced {
                strategy_id: sid,
                order: resting(id),
                ts_ms: 1,
            })
            .unwrap();
        }
        let (ack, done) = tokio::sync::oneshot::channel();
        tx.send(PersistOp::Flush(ack)).unwrap();
        done.await.unwrap();
        assert_eq!(index.len(), 3, "{kind}");
        tx.send(PersistOp::Filled {
            strategy_id: sid,
            fill: Fill {
                order_id: 1,
                strategy: 0,
                tag: 1,
                side: Side::Buy,
                market: false,
                price: Decimal::from(100),
                base: Decimal::new(1, 1),
                quote: Decimal::TEN,
                fee: Decimal::ZERO,
                impact: Decimal::ZERO,
                gas: Decimal::ZERO,
                gas_bnb: Decimal::ZERO,
                bnb_price: None,
                lot_cost: None,
                ts_us: 2_000,
            },
            ts_ms: 2,
        })
        .unwrap();
        tx.send(PersistOp::OrderCancelled {
            engine_id: 2,
            reason: "drill".into(),
            ts_ms: 3,
        })
        .unwrap();
        let (ack, done) = tokio::sync::oneshot::channel();
        tx.send(PersistOp::Flush(ack)).unwrap();
        done.await.unwrap();
        drop(tx);
        task.await.unwrap();
        let left: Vec<u64> = index.iter().map(|e| *e.value()).collect();
        assert_eq!(
            left,
            vec![3],
            "{kind}: only the pending order is still mapped"
        );
        let statuses: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM orders GROUP BY status ORDER BY status")
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert_eq!(
            statuses,
            vec![
                ("cancelled".to_string(), 1),
                ("filled".to_string(), 1),
                ("pending".to_string(), 1)
            ],
            "{kind}"
        );
        store.close().await;
    }
}

/// Every query that stores or filters by an address finds the same rows whether the address
/// was written checksummed, in lower or in upper case (one spelling on record, by construction).
#[tokio::test]
async fn address_queries_ignore_the_case_the_address_was_written_in() {
    use alloy::primitives::Address;
    use bsc_bot::store::chain_txs::{SignedTx, TxOutcome};
    let checksummed = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
    let spellings: Vec<Address> = [
        checksummed.to_string(),
        checksummed.to_lowercase(),
        format!("0x{}", checksummed[2..].to_uppercase()),
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    for kind in backends() {
        let db = TestDb::new(kind).await;
        let store = db.store().await;
        let signed = |nonce: u64, hash: &str| SignedTx {
            chain_id: 56,
            wallet: checksummed.parse().unwrap(),
            nonce,
            tx_hash: hash.to_string(),
            raw_tx: "0x00".into(),
            purpose: "swap".into(),
            reference: None,
            gas_price_wei: 1_000_000_000,
            gas_limit: 21_000,
            origin: None,
        };
        let mined = store
            .record_signed_tx(&signed(0, &format!("0x{}", "a".repeat(64))), 1_000)
            .await
            .unwrap();
        store
            .set_tx_outcome(
                mined,
                &TxOutcome {
                    status: "mined",
                    gas_used: Some(21_000),
                    fee_bnb: Some("0.000021".into()),
                    ..TxOutcome::default()
                },
                2_000,
            )
            .await
            .unwrap();
        store
            .record_signed_tx(&signed(1, &format!("0x{}", "b".repeat(64))), 3_000)
            .await
            .unwrap();
        let raw: String = sqlx::query_scalar("SELECT wallet FROM chain_txs WHERE nonce = 0")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(
            raw,
            checksummed.to_lowercase(),
            "{kind}: one spelling on record"
        );
        for who in &spellings {
            assert_eq!(
                store.chain_txs_of(56, *who).await.unwrap().len(),
                2,
                "{kind}: chain_txs_of"
            );
            assert_eq!(
                store.unresolved_txs(56, *who).await.unwrap().len(),
                1,
                "{kind}: unresolved_txs"
            );
            assert_eq!(
                store.next_recorded_nonce(56, *who).await.unwrap(),
                Some(2),
                "{kind}: next_recorded_nonce"
            );
            assert_eq!(
                store.gas_spent_since(*who, 0).await.unwrap(),
                "0.000021".parse::<rust_decimal::Decimal>().unwrap(),
                "{kind}: gas_spent_since"
            );
        }
        // A funds operation's destination is stored in the same spelling.
        store
            .insert_funds_operation(
                "sweep",
                "hot",
                checksummed,
                "USDT",
                rust_decimal::Decimal::ONE,
                None,
                "refused",
                Some("test"),
                4_000,
            )
            .await
            .unwrap();
        let ops = store.funds_operations(Some("sweep"), 10).await.unwrap();
        assert_eq!(ops[0].destination, checksummed.to_lowercase(), "{kind}");
        store.close().await;
    }
}
