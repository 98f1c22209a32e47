//! Crash safety of transactions, on anvil: a swap signed and committed but never sent (the
//! process died in between) is sent again after a restart as the same transaction — the same
//! hash, mined once; one sent but not yet answered is found mined and never sent again; one whose
//! nonce another transaction took is marked dropped; and the nonces stay contiguous.
//!
//! The "crash" is a failpoint that stops the swap task for good at the chosen point; the test
//! drops that task, and a new swapper over the same database plays the restarted daemon. One test
//! in this file: it sets BSC_BOT_FAILPOINTS for the process.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/chain.rs"]
mod testchain;

use std::str::FromStr;
use std::time::Duration;

use alloy::network::TransactionBuilder;
use alloy::primitives::U256;
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use bsc_bot::chain::{ChainClient, Pool, SwapOrder, SwapResult, Swapper};
use bsc_bot::config::{ChainConfig, DexConfig};
use bsc_bot::model::order::Side;
use bsc_bot::store::Store;
use common::TestDb;
use rust_decimal::Decimal;
use testchain::{Market, TestChain};

fn buy(reference: &str) -> SwapOrder {
    SwapOrder {
        side: Side::Buy,
        amount_in: Decimal::from(500),
        limit: Decimal::from_str("101000").unwrap(),
        reference: reference.into(),
        origin: None,
    }
}

struct Setup {
    client: ChainClient,
    chain_cfg: ChainConfig,
    dex: DexConfig,
    pool: Pool,
    store: Store,
    key: PrivateKeySigner,
}

impl Setup {
    fn swapper(&self) -> Swapper {
        Swapper::new(
            self.client.clone(),
            self.key.clone(),
            self.store.clone(),
            self.chain_cfg.clone(),
            self.dex.clone(),
        )
        .unwrap()
    }

    /// A swap that "crashes" at `failpoint`: its task stops there and is dropped.
    async fn crash_at(&self, failpoint: &str, reference: &str) {
        std::env::set_var("BSC_BOT_FAILPOINTS", format!("{failpoint}=hang"));
        let s = self.swapper();
        let attempt =
            tokio::time::timeout(Duration::from_secs(3), s.swap(&self.pool, &buy(reference))).await;
        assert!(
            attempt.is_err(),
            "the swap should have stopped at {failpoint}"
        );
        std::env::remove_var("BSC_BOT_FAILPOINTS");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_settles_every_transaction_without_sending_one_twice() {
    let Some(chain) = TestChain::start().await else {
        return;
    };
    let u = chain.deploy_uniswap(10, 1_000_000).await;
    let db = TestDb::new("sqlite").await;
    let Market {
        chain_cfg,
        dex,
        client,
        pool,
    } = chain.market(&u, 10).await;
    let key = chain.bot_wallet(&u, 10_000).await;
    let me = key.address();
    let s = Setup {
        client,
        chain_cfg,
        dex,
        pool,
        store: db.store().await,
        key,
    };
    let reader = chain.reader();
    let quote_balance = || async { s.client.token_balance(&s.pool.quote, me).await.unwrap() };

    // 1. Signed and committed, never sent.
    s.crash_at("chain.before_broadcast.swap", "o1").await;
    let txs = s.store.chain_txs_of(56, me).await.unwrap();
    let last = txs.last().unwrap().clone();
    assert_eq!(
        (last.purpose.as_str(), last.status.as_str()),
        ("swap", "signed")
    );
    let sent_before = reader.get_transaction_count(me).await.unwrap();
    assert_eq!(
        sent_before, last.nonce as u64,
        "the approve went out, the swap did not"
    );
    let q0 = quote_balance().await;
    let restarted = s.swapper();
    let settled = restarted.reconcile().await.unwrap();
    assert_eq!(settled.len(), 1);
    assert_eq!(settled[0].status, "mined");
    assert_eq!(
        settled[0].tx_hash.to_string(),
        last.tx_hash,
        "the same transaction"
    );
    assert_eq!(
        reader.get_transaction_count(me).await.unwrap(),
        sent_before + 1
    );
    assert_eq!(
        quote_balance().await,
        q0 - Decimal::from(500),
        "swapped once"
    );
    assert!(
        restarted.reconcile().await.unwrap().is_empty(),
        "nothing left to settle"
    );

    // 2. Sent, crashed before the receipt: found mined, not sent again.
    s.crash_at("chain.after_broadcast.swap", "o2").await;
    let count = reader.get_transaction_count(me).await.unwrap();
    let q1 = quote_balance().await;
    assert_eq!(q1, q0 - Decimal::from(1000), "the second swap is on chain");
    let settled = s.swapper().reconcile().await.unwrap();
    assert_eq!(
        settled.iter().map(|r| r.status).collect::<Vec<_>>(),
        ["mined"]
    );
    assert_eq!(
        reader.get_transaction_count(me).await.unwrap(),
        count,
        "not sent again"
    );
    assert_eq!(quote_balance().await, q1);

    // 3. Signed, never sent, and its nonce taken by another transaction of the same key.
    s.crash_at("chain.before_broadcast.swap", "o3").await;
    let stray = TransactionRequest::default()
        .with_to(me)
        .with_value(U256::ZERO)
        .with_nonce(reader.get_transaction_count(me).await.unwrap())
        .with_gas_limit(21_000)
        .with_gas_price(2_000_000_000);
    let key_hex = alloy::hex::encode(s.key.to_bytes());
    let other = chain.signer(&format!("0x{key_hex}"));
    other
        .send_transaction(stray)
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let settled = s.swapper().reconcile().await.unwrap();
    assert_eq!(
        settled.iter().map(|r| r.status).collect::<Vec<_>>(),
        ["dropped"]
    );
    assert_eq!(quote_balance().await, q1, "the dropped swap moved nothing");

    // After all that, a new swap takes the next nonce: nonces on record are contiguous.
    let next = s.swapper().swap(&s.pool, &buy("o4")).await.unwrap();
    assert!(matches!(next, SwapResult::Filled { .. }), "{next:?}");
    let txs = s.store.chain_txs_of(56, me).await.unwrap();
    let nonces: Vec<i64> = txs.iter().map(|t| t.nonce).collect();
    // The dropped swap's nonce was taken by the stray transfer, which is not the bot's record.
    let mut expected: Vec<i64> = (0..=txs.last().unwrap().nonce).collect();
    expected.retain(|n| nonces.contains(n));
    assert_eq!(nonces, expected);
    assert_eq!(
        reader.get_transaction_count(me).await.unwrap(),
        txs.last().unwrap().nonce as u64 + 1
    );
    assert_eq!(
        txs.iter().map(|t| t.status.as_str()).collect::<Vec<_>>(),
        ["mined", "mined", "mined", "dropped", "mined"]
    );
}
