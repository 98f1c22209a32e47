//! Swaps on a real local chain (anvil, the Uniswap V2 router and a pair with liquidity), through
//! the bot's swapper, on SQLite and PostgreSQL: a buy that spends exactly its quote and a sell
//! that sends exactly its lot, amounts equal to the pool's own arithmetic and to the wallet's
//! balance changes to the wei (gas included); a swap past its bound refused before anything is
//! signed; a swap front-run past its slippage bound reverting with only gas lost; nonces contiguous
//! and every transaction on record.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/proxy.rs"]
mod proxy;
#[path = "common/chain.rs"]
mod testchain;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::Address;
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use bsc_bot::amm::swap_math::amount_out;
use bsc_bot::chain::{ChainClient, SwapOrder, SwapResult, Swapper};
use bsc_bot::model::order::Side;
use common::{backends, TestDb};
use rust_decimal::Decimal;
use testchain::{Market, TestChain, TRADER_KEY};

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn wei(d: Decimal) -> Decimal {
    d.trunc_with_scale(18)
}

struct Balances {
    bnb: Decimal,
    base: Decimal,
    quote: Decimal,
}

async fn balances(c: &ChainClient, pool: &bsc_bot::chain::Pool, who: Address) -> Balances {
    Balances {
        bnb: c.native_balance(who).await.unwrap(),
        base: c.token_balance(&pool.base, who).await.unwrap(),
        quote: c.token_balance(&pool.quote, who).await.unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_on_a_real_pool() {
    for kind in backends() {
        let Some(chain) = TestChain::start().await else {
            return;
        };
        let u = chain.deploy_uniswap(10, 1_000_000).await;
        let db = TestDb::new(kind).await;
        let store = db.store().await;
        let Market {
            mut chain_cfg,
            dex,
            client,
            pool,
        } = chain.market(&u, 20).await;
        // The opt-in `eth_call` before each swap (off by default): its refusal is tested below.
        chain_cfg.simulate_swaps = true;
        let signer = chain.bot_wallet(&u, 10_000).await;
        let me = signer.address();
        let swapper = Arc::new(
            Swapper::new(
                client.clone(),
                signer,
                store.clone(),
                chain_cfg.clone(),
                dex.clone(),
            )
            .unwrap(),
        );

        // A buy spends exactly 1,000 quote and receives what the pool's formula gives.
        let (rb, rq) = client.reserves(&pool).await.unwrap();
        let before = balances(&client, &pool, me).await;
        let buy = SwapOrder {
            side: Side::Buy,
            amount_in: d("1000"),
            limit: d("101000"),
            reference: "s1-o1".into(),
            origin: None,
        };
        let SwapResult::Filled {
            base: bought,
            quote: spent,
            fee_bnb: buy_fee,
            ..
        } = swapper.swap(&pool, &buy).await.unwrap()
        else {
            panic!("{kind}: buy did not fill")
        };
        assert_eq!(spent, d("1000"), "{kind}");
        assert_eq!(bought, wei(amount_out(d("1000"), rq, rb, 30)), "{kind}");
        let after = balances(&client, &pool, me).await;
        let txs = store.chain_txs_of(56, me).await.unwrap();
        assert_eq!(
            txs.iter()
                .map(|t| (t.purpose.as_str(), t.status.as_str()))
                .collect::<Vec<_>>(),
            [("approve", "mined"), ("swap", "mined")],
            "{kind}"
        );
        let fees: Decimal = txs.iter().map(|t| d(t.fee_bnb.as_deref().unwrap())).sum();
        assert_eq!(d(txs[1].fee_bnb.as_deref().unwrap()), buy_fee);
        assert_eq!(
            after.quote,
            before.quote - spent,
            "{kind}: quote to the wei"
        );
        assert_eq!(after.base, before.base + bought, "{kind}: base to the wei");
        assert_eq!(after.bnb, before.bnb - fees, "{kind}: gas to the wei");
        assert_eq!(txs[1].reference.as_deref(), Some("s1-o1"));

        // A sell sends exactly the lot.
        let (rb, rq) = client.reserves(&pool).await.unwrap();
        let sell = SwapOrder {
            side: Side::Sell,
            amount_in: bought,
            limit: d("99000"),
            reference: "s1-o2".into(),
            origin: None,
        };
        let SwapResult::Filled {
            base: sold,
            quote: got,
            ..
        } = swapper.swap(&pool, &sell).await.unwrap()
        else {
            panic!("{kind}: sell did not fill")
        };
        assert_eq!(sold, bought, "{kind}");
        assert_eq!(got, wei(amount_out(bought, rb, rq, 30)), "{kind}");
        let after_sell = balances(&client, &pool, me).await;
        assert_eq!(
            after_sell.base, before.base,
            "{kind}: the lot is gone, exactly"
        );
        assert_eq!(after_sell.quote, after.quote + got, "{kind}");

        // A limit the pool cannot meet: refused by the simulation, nothing sent, no gas.
        let signed = store.chain_txs_of(56, me).await.unwrap().len();
        let greedy = SwapOrder {
            side: Side::Sell,
            amount_in: d("0.001"),
            limit: d("150000"),
            reference: "s1-o3".into(),
            origin: None,
        };
        chain.give_tokens(u.base, me, 1).await;
        match swapper.swap(&pool, &greedy).await.unwrap() {
            SwapResult::Failed {
                tx_hash: None,
                fee_bnb,
                ..
            } => assert_eq!(fee_bnb, Decimal::ZERO),
            other => panic!("{kind}: {other:?}"),
        }
        // The base token's approve (the first sell used up the last one), then the swap: simulated
        // by `eth_call` while it was signed and committed, never sent, on record as rejected with
        // its nonce unused.
        let txs = store.chain_txs_of(56, me).await.unwrap();
        assert_eq!(txs.len(), signed + 2, "{kind}");
        assert_eq!(txs[signed].purpose, "approve");
        let refused = &txs[signed + 1];
        assert_eq!(
            (refused.purpose.as_str(), refused.status.as_str()),
            ("swap", "rejected")
        );
        assert!(refused
            .error
            .as_deref()
            .unwrap()
            .starts_with("simulation failed"));
        assert_eq!(
            chain
                .reader()
                .get_transaction_count(me)
                .pending()
                .await
                .unwrap() as i64,
            refused.nonce,
            "{kind}: its nonce is the next one still"
        );

        // Front-run: the bot's buy waits in the mempool, a bigger buy at a higher gas price goes
        // first in the same block, the bot's swap reverts past its bound; only gas is lost.
        let trader: Address = TRADER_KEY.parse::<PrivateKeySigner>().unwrap().address();
        chain.give_tokens(u.quote, trader, 50_000).await;
        let reader = chain.reader();
        let _: serde_json::Value = reader
            .raw_request("evm_setAutomine".into(), (false,))
            .await
            .unwrap();
        let before = balances(&client, &pool, me).await;
        let nonce_before = reader.get_transaction_count(me).pending().await.unwrap();
        let price_now = {
            let (b, q) = client.reserves(&pool).await.unwrap();
            q / b
        };
        let s2 = swapper.clone();
        let p2 = pool.clone();
        let victim = tokio::spawn(async move {
            let order = SwapOrder {
                side: Side::Buy,
                amount_in: d("1000"),
                limit: price_now * d("1.003"),
                reference: "s1-o4".into(),
                origin: None,
            };
            s2.swap(&p2, &order).await
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while reader.get_transaction_count(me).pending().await.unwrap() == nonce_before {
            assert!(
                std::time::Instant::now() < deadline,
                "{kind}: the bot never sent its swap"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        chain.front_run_buy(&u, TRADER_KEY, 50_000).await;
        let _: serde_json::Value = reader.raw_request("evm_mine".into(), ()).await.unwrap();
        let _: serde_json::Value = reader
            .raw_request("evm_setAutomine".into(), (true,))
            .await
            .unwrap();
        let result = victim.await.unwrap().unwrap();
        let SwapResult::Failed {
            tx_hash: Some(_),
            retryable: true,
            fee_bnb,
            reason,
        } = result
        else {
            panic!("{kind}: the front-run swap did not fail: {result:?}")
        };
        assert!(fee_bnb > Decimal::ZERO, "{kind}: {reason}");
        let after = balances(&client, &pool, me).await;
        assert_eq!(after.quote, before.quote, "{kind}: no token moved");
        assert_eq!(after.base, before.base, "{kind}");
        assert_eq!(after.bnb, before.bnb - fee_bnb, "{kind}: only gas lost");
        let txs = store.chain_txs_of(56, me).await.unwrap();
        assert_eq!(txs.last().unwrap().status, "reverted", "{kind}");

        // Every nonce used once, in order, and every one on record (a rejected transaction used
        // none: the next one took its nonce).
        let nonces: Vec<i64> = txs
            .iter()
            .filter(|t| t.status != "rejected")
            .map(|t| t.nonce)
            .collect();
        let expected: Vec<i64> = (0..nonces.len() as i64).collect();
        assert_eq!(nonces, expected, "{kind}");
        assert_eq!(
            reader.get_transaction_count(me).await.unwrap(),
            nonces.len() as u64,
            "{kind}"
        );
        store.close().await;
    }
}

/// A wallet whose swap is stuck: blocks stop being mined after a warm-up swap (so only the stuck
/// one waits), `receipt_timeout_secs` = 1 and the given swap deadline.
/// A chain, its record, the wallet, the swap in flight, the wallet's nonce before it, its quote
/// balance before it, the pool and a client.
type Stuck = (
    TestChain,
    TestDb,
    bsc_bot::store::Store,
    Address,
    tokio::task::JoinHandle<Result<SwapResult, bsc_bot::chain::swap::SwapError>>,
    u64,
    Decimal,
    bsc_bot::chain::Pool,
    ChainClient,
);

async fn stuck_swap(deadline_secs: u64) -> Option<Stuck> {
    stuck_order(deadline_secs, Side::Buy).await
}

/// A swap sent while blocks stop: a buy of 500 USDT (its approval is done by the warm-up), or
/// a sell of half the warm-up's base, whose first step, the base token's approval, is stuck.
async fn stuck_order(deadline_secs: u64, side: Side) -> Option<Stuck> {
    let chain = TestChain::start().await?;
    let u = chain.deploy_uniswap(10, 1_000_000).await;
    let db = TestDb::new("sqlite").await;
    let store = db.store().await;
    let Market {
        mut chain_cfg,
        dex,
        client,
        pool,
    } = chain.market(&u, 1).await;
    chain_cfg.swap_deadline_secs = deadline_secs;
    let signer = chain.bot_wallet(&u, 10_000).await;
    let me = signer.address();
    let swapper =
        Arc::new(Swapper::new(client.clone(), signer, store.clone(), chain_cfg, dex).unwrap());
    let warm = SwapOrder {
        side: Side::Buy,
        amount_in: d("10"),
        limit: d("101000"),
        reference: "warm".into(),
        origin: None,
    };
    assert!(matches!(
        swapper.swap(&pool, &warm).await.unwrap(),
        SwapResult::Filled { .. }
    ));
    let quote_before = client.token_balance(&pool.quote, me).await.unwrap();
    let reader = chain.reader();
    let _: serde_json::Value = reader
        .raw_request("evm_setAutomine".into(), (false,))
        .await
        .unwrap();
    let count = reader.get_transaction_count(me).await.unwrap();
    let s2 = swapper.clone();
    let p2 = pool.clone();
    let base_held = client.token_balance(&pool.base, me).await.unwrap();
    let swap = tokio::spawn(async move {
        let order = match side {
            Side::Buy => SwapOrder {
                side: Side::Buy,
                amount_in: d("500"),
                limit: d("101000"),
                reference: "slow".into(),
                origin: None,
            },
            Side::Sell => SwapOrder {
                side: Side::Sell,
                amount_in: base_held / d("2"),
                limit: d("90000"),
                reference: "slow".into(),
                origin: None,
            },
        };
        s2.swap(&p2, &order).await
    });
    Some((
        chain,
        db,
        store,
        me,
        swap,
        count,
        quote_before,
        pool,
        client,
    ))
}

/// Waits (up to 20 s: a loaded machine sends late, the chain waits for it) until `me`'s recorded
/// transactions satisfy `done` and the node holds the newest of them (it is recorded before it is
/// sent); what the test then asserts is the order of events, not a speed.
async fn until_txs(
    chain: &TestChain,
    store: &bsc_bot::store::Store,
    me: Address,
    what: &str,
    done: impl Fn(&[bsc_bot::store::chain_txs::ChainTxRecord]) -> bool,
) {
    let reader = chain.reader();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let txs = store.chain_txs_of(56, me).await.unwrap();
        if done(&txs) {
            let newest = txs.last().map(|t| t.tx_hash.parse().unwrap()).unwrap();
            if reader
                .get_transaction_by_hash(newest)
                .await
                .unwrap()
                .is_some()
            {
                return;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not within 20 s: {what}: {txs:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Mine one block and mine on every transaction again.
async fn mine_again(chain: &TestChain) {
    let reader = chain.reader();
    let _: serde_json::Value = reader.raw_request("evm_mine".into(), ()).await.unwrap();
    let _: serde_json::Value = reader
        .raw_request("evm_setAutomine".into(), (true,))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_swap_is_sped_up_at_its_nonce_and_fills_once() {
    let Some((chain, _db, store, me, swap, count, quote_before, pool, client)) =
        stuck_swap(60).await
    else {
        return;
    };
    // Receipt timeouts pass without a block: the swap stays in flight, replaced at its nonce by
    // the same call for ≥ 10 % more gas price each time (its deadline is far).
    until_txs(&chain, &store, me, "the swap and two speed-ups", |txs| {
        txs.iter()
            .filter(|t| t.reference.as_deref() == Some("slow"))
            .count()
            >= 3
    })
    .await;
    assert!(!swap.is_finished(), "the order stays in flight");
    let reader = chain.reader();
    assert_eq!(
        reader.get_transaction_count(me).pending().await.unwrap(),
        count + 1,
        "one nonce"
    );
    mine_again(&chain).await;
    let result = tokio::time::timeout(Duration::from_secs(10), swap)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let SwapResult::Filled { tx_hash, quote, .. } = result else {
        panic!("{result:?}");
    };
    assert_eq!(quote, d("500"));
    let slow: Vec<_> = store
        .chain_txs_of(56, me)
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.reference.as_deref() == Some("slow"))
        .collect();
    assert!(slow.len() >= 3, "the original and its speed-ups: {slow:?}");
    assert!(slow
        .iter()
        .all(|t| t.purpose == "swap" && t.nonce == slow[0].nonce));
    for pair in slow.windows(2) {
        let (a, b): (u128, u128) = (
            pair[0].gas_price_wei.parse().unwrap(),
            pair[1].gas_price_wei.parse().unwrap(),
        );
        assert!(
            b * 10 >= a * 11,
            "each replacement pays ≥ 10 % more: {a} → {b}"
        );
    }
    let mined: Vec<_> = slow.iter().filter(|t| t.status == "mined").collect();
    assert_eq!(mined.len(), 1, "exactly one of them mined: {slow:?}");
    assert_eq!(mined[0].tx_hash, tx_hash.to_string());
    assert!(slow
        .iter()
        .filter(|t| t.status != "mined")
        .all(|t| t.status == "dropped"
            && t.error.as_deref() == Some(&format!("replaced at its nonce by {tx_hash}"))));
    assert_eq!(reader.get_transaction_count(me).await.unwrap(), count + 1);
    let quote_after = client.token_balance(&pool.quote, me).await.unwrap();
    assert_eq!(quote_before - quote_after, d("500"), "spent once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_approval_is_sped_up_never_cancelled_and_the_sell_fills() {
    let Some((chain, _db, store, me, swap, count, _quote, _pool, _client)) =
        stuck_order(60, Side::Sell).await
    else {
        return;
    };
    // Receipt timeouts pass without a block: the approval is replaced at its nonce.
    until_txs(&chain, &store, me, "the approval and a speed-up", |txs| {
        txs.iter()
            .filter(|t| t.reference.is_none() && t.nonce >= count as i64)
            .count()
            >= 2
    })
    .await;
    assert!(!swap.is_finished(), "the sell waits for its approval");
    mine_again(&chain).await;
    let result = tokio::time::timeout(Duration::from_secs(10), swap)
        .await
        .unwrap()
        .unwrap();
    let result = match result {
        Ok(r) => r,
        Err(e) => panic!("the sell failed: {e}"),
    };
    assert!(matches!(result, SwapResult::Filled { .. }), "{result:?}");
    let txs = store.chain_txs_of(56, me).await.unwrap();
    // The warm-up's own approval (of the quote token) came before `count`.
    let approvals: Vec<_> = txs
        .iter()
        .filter(|t| t.reference.is_none() && t.nonce >= count as i64)
        .collect();
    assert!(
        approvals.len() >= 2,
        "the stuck approval and its speed-up: {approvals:?}"
    );
    assert!(
        approvals.iter().all(|t| t.purpose == "approve"),
        "sped up, never cancelled: {approvals:?}"
    );
    assert_eq!(
        approvals.iter().filter(|t| t.status == "mined").count(),
        1,
        "{approvals:?}"
    );
}

#[test]
fn an_approval_replaced_by_a_cancel_is_not_called_reverted() {
    let e = bsc_bot::chain::swap::SwapError::ApproveNotMined {
        token: "BTCB".into(),
        detail: "no receipt within 30 s, replaced at its nonce by cancel 0xabc".into(),
    };
    let text = e.to_string();
    assert!(!text.contains("reverted"), "{text}");
    assert!(
        text.contains("replaced at its nonce by cancel 0xabc"),
        "{text}"
    );
    assert!(text.contains("nothing was approved"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_swap_past_its_deadline_is_cancelled_and_spends_only_gas() {
    let Some((chain, _db, store, me, swap, count, quote_before, pool, client)) =
        stuck_swap(2).await
    else {
        return;
    };
    // Past its deadline the swap is cancelled at its nonce (sent, not yet mined).
    until_txs(&chain, &store, me, "the cancel", |txs| {
        txs.iter().any(|t| t.purpose == "cancel")
    })
    .await;
    assert!(!swap.is_finished(), "the order stays in flight");
    mine_again(&chain).await;
    let result = tokio::time::timeout(Duration::from_secs(10), swap)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let SwapResult::Failed {
        tx_hash: Some(hash),
        reason,
        retryable: true,
        fee_bnb,
    } = result
    else {
        panic!("{result:?}");
    };
    assert!(reason.contains("cancelled"), "{reason}");
    let txs = store.chain_txs_of(56, me).await.unwrap();
    let cancel = txs.iter().find(|t| t.tx_hash == hash.to_string()).unwrap();
    assert_eq!(cancel.purpose, "cancel");
    assert_eq!(cancel.status, "mined");
    assert_eq!(cancel.gas_used, Some(21_000));
    assert_eq!(fee_bnb, d(cancel.fee_bnb.as_deref().unwrap()));
    let swap_tx = txs
        .iter()
        .find(|t| t.reference.as_deref() == Some("slow") && t.purpose == "swap")
        .unwrap();
    assert_eq!(swap_tx.status, "dropped");
    assert_eq!(swap_tx.nonce, cancel.nonce);
    let reader = chain.reader();
    assert_eq!(reader.get_transaction_count(me).await.unwrap(), count + 1);
    let quote_after = client.token_balance(&pool.quote, me).await.unwrap();
    assert_eq!(quote_before, quote_after, "nothing but gas spent");
}

/// With `chain.private_tx_url` set, swaps go there and never to the public endpoints (which still
/// serve everything else: reads, the approve, receipts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_go_only_to_the_private_endpoint() {
    let Some(chain) = TestChain::start().await else {
        return;
    };
    let u = chain.deploy_uniswap(10, 1_000_000).await;
    let public = proxy::RpcProxy::start(&chain.url).await;
    let mut private = proxy::RpcProxy::start(&chain.url).await;
    let db = TestDb::new("sqlite").await;
    let store = db.store().await;
    let Market {
        mut chain_cfg, dex, ..
    } = chain.market(&u, 1).await;
    chain_cfg.rpc_urls = vec![public.url.clone()];
    chain_cfg.private_tx_url = private.url.clone();
    let client = ChainClient::connect(&chain_cfg).await.unwrap();
    let base = client.token(u.base).await.unwrap();
    let quote = client.token(u.quote).await.unwrap();
    let pool = client.pool(u.factory, base, quote).await.unwrap();
    let signer = chain.bot_wallet(&u, 10_000).await;
    let swapper = Swapper::new(client.clone(), signer, store.clone(), chain_cfg, dex).unwrap();
    for (i, side, amount, limit) in [
        (1, Side::Buy, "1000", "101000"),
        (2, Side::Buy, "500", "101500"),
    ] {
        let order = SwapOrder {
            side,
            amount_in: d(amount),
            limit: d(limit),
            reference: format!("p-{i}"),
            origin: None,
        };
        assert!(matches!(
            swapper.swap(&pool, &order).await.unwrap(),
            SwapResult::Filled { .. }
        ));
    }
    assert_eq!(
        private.raw_sends(),
        2,
        "both swaps through the private endpoint"
    );
    assert_eq!(
        public.raw_sends(),
        1,
        "only the approve through the public one"
    );

    // The private endpoint refuses connections for a while: the swap was not sent, so it is
    // neither settled by its hash nor replaced at higher prices that reach no node; the same
    // bytes go there again once it is back.
    private.down();
    let swapper = Arc::new(swapper);
    let (s2, p2) = (swapper.clone(), pool.clone());
    let swap = tokio::spawn(async move {
        let order = SwapOrder {
            side: Side::Buy,
            amount_in: d("300"),
            limit: d("102000"),
            reference: "p-3".into(),
            origin: None,
        };
        s2.swap(&p2, &order).await
    });
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!swap.is_finished(), "the swap waits for its endpoint");
    private.up().await;
    let result = tokio::time::timeout(Duration::from_secs(20), swap)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(result, SwapResult::Filled { .. }), "{result:?}");
    let me = swapper.address();
    let third: Vec<_> = store
        .chain_txs_of(56, me)
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.reference.as_deref() == Some("p-3"))
        .collect();
    assert_eq!(third.len(), 1, "one transaction, never replaced: {third:?}");
    assert_eq!(third[0].status, "mined");
    assert_eq!(public.raw_sends(), 1, "never through the public endpoint");
}
