//! A live grid on a real pool: the engine and the grid strategy, the DEX venue and its executor,
//! on anvil with the Uniswap V2 contracts. A second account walks the pool price down through two
//! levels and up through three; every grid fill is an on-chain swap in flight from broadcast to
//! receipt, the strategy's ledger moves exactly as the wallet's balances do (to the wei), gas is
//! what the transactions on record say, and no fill is worse than its limit after the pool fee
//! and the slippage bound. Once on two 18-decimal tokens, once on tokens of 8 and 6 decimals.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/chain.rs"]
mod testchain;

use std::str::FromStr;
use std::time::Duration;

use bsc_bot::amm::reserves_price;
use bsc_bot::chain::{ChainClient, Pool};
use bsc_bot::engine::VenueReport;
use bsc_bot::engine::{Engine, Event, MemoryRecorder};
use bsc_bot::model::order::Side;
use bsc_bot::model::PriceKey;
use bsc_bot::risk::{RiskGuard, RiskLimits};
use bsc_bot::strategy::{StrategyParams, StrategyStatus};
use bsc_bot::venue::dex::DexVenue;
use common::TestDb;
use rust_decimal::Decimal;
use testchain::TestChain;
use tokio::sync::mpsc;

const GRID: &str = r#"{"lower_price":"95000","upper_price":"105000","grid_count":5,"base_order_size":"1000","fee_bps":30}"#;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

async fn price(client: &ChainClient, pool: &Pool) -> Decimal {
    let (b, q) = client.reserves(pool).await.unwrap();
    reserves_price(b, q).unwrap()
}

/// Tick the engine with the pool price, then apply the venue's answers until nothing is in flight.
async fn settle(
    engine: &mut Engine<MemoryRecorder, DexVenue>,
    reports: &mut mpsc::Receiver<VenueReport>,
    client: &ChainClient,
    pool: &Pool,
    ts: &mut i64,
) {
    *ts += 1_000_000;
    let p = price(client, pool).await;
    engine.process(Event::Tick {
        symbol: 0,
        ts_us: *ts,
        price: PriceKey::floor_of(p.round_dp(8)),
    });
    while engine.in_flight_count() > 0 {
        let r = tokio::time::timeout(Duration::from_secs(30), reports.recv())
            .await
            .expect("a swap never answered")
            .unwrap();
        engine.process(Event::Venue(r));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_grid_walks_the_pool_down_and_up() {
    walk_the_grid(18, 18).await;
}

/// The same on tokens of other decimals (8 like WBTC, 6 like USDC elsewhere): amounts convert
/// with each token's own decimals, read from its contract, and still reconcile to the unit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_grid_on_tokens_of_8_and_6_decimals() {
    walk_the_grid(8, 6).await;
}

async fn walk_the_grid(base_decimals: u8, quote_decimals: u8) {
    let Some(chain) = TestChain::start().await else {
        return;
    };
    let u = chain
        .deploy_uniswap_with_decimals(base_decimals, quote_decimals, 10, 1_000_000)
        .await;
    let db = TestDb::new("sqlite").await;
    let store = db.store().await;
    let market = chain.market(&u, 30).await;
    let (client, pool) = (market.client.clone(), market.pool.clone());
    assert_eq!(
        (pool.base.decimals, pool.quote.decimals),
        (base_decimals, quote_decimals),
        "decimals read from the token contracts"
    );
    assert_eq!(price(&client, &pool).await, d("100000"));
    chain.fund_trader(&u, 5, 500_000).await;
    let bot = chain.bot_wallet(&u, 10_000).await;
    let me = bot.address();
    let wallet_before = (
        client.native_balance(me).await.unwrap(),
        client.token_balance(&pool.base, me).await.unwrap(),
        client.token_balance(&pool.quote, me).await.unwrap(),
    );

    let (venue, mut reports) = market.dex_venue(bot, store.clone());
    let params = StrategyParams::parse("grid", &serde_json::from_str(GRID).unwrap()).unwrap();
    let mut engine = Engine::new(
        1,
        venue,
        RiskGuard::new(RiskLimits::default()),
        MemoryRecorder::default(),
    );
    engine.add_strategy(
        params.build(),
        0,
        params.fee_bps(),
        StrategyStatus::Active,
        None,
    );

    let mut ts = 0;
    // Start at 100,000: cells 100,000-102,500 and 102,500-105,000 buy at market.
    settle(&mut engine, &mut reports, &client, &pool, &mut ts).await;
    assert_eq!(engine.recorder().fills.len(), 2);
    // Down through 97,500 and 95,000, then up through 97,500 (sell), 100,000 (sell) and 102,500 (sell).
    for target in ["96500", "94000", "103600"] {
        chain.walk_to(&client, &pool, u.router, d(target)).await;
        settle(&mut engine, &mut reports, &client, &pool, &mut ts).await;
    }
    let fills = engine.recorder().fills.clone();
    let sides: Vec<Side> = fills.iter().map(|f| f.side).collect();
    assert_eq!(
        sides,
        [
            Side::Buy,
            Side::Buy,
            Side::Buy,
            Side::Buy,
            Side::Sell,
            Side::Sell,
            Side::Sell
        ],
        "{fills:#?}"
    );
    assert!(
        engine.recorder().failures.is_empty(),
        "{:?}",
        engine.recorder().failures
    );

    // Every fill is a mined swap; the ledger moved exactly as the wallet did.
    let txs = store.chain_txs_of(56, me).await.unwrap();
    let swaps: Vec<_> = txs.iter().filter(|t| t.purpose == "swap").collect();
    assert_eq!(swaps.len(), fills.len());
    assert!(swaps.iter().all(|t| t.status == "mined"));
    for f in &fills {
        let reference = format!("engine-order-{}", f.order_id);
        assert!(swaps
            .iter()
            .any(|t| t.reference.as_deref() == Some(&reference)));
    }
    let ledger = engine.ledger(0);
    let gas: Decimal = txs.iter().map(|t| d(t.fee_bnb.as_deref().unwrap())).sum();
    let wallet_after = (
        client.native_balance(me).await.unwrap(),
        client.token_balance(&pool.base, me).await.unwrap(),
        client.token_balance(&pool.quote, me).await.unwrap(),
    );
    assert_eq!(
        wallet_after.1 - wallet_before.1,
        ledger.base,
        "base to the wei"
    );
    assert_eq!(
        wallet_after.2 - wallet_before.2,
        ledger.quote - ledger.initial_quote,
        "quote to the wei"
    );
    assert_eq!(
        wallet_before.0 - wallet_after.0,
        gas,
        "gas on record = BNB spent"
    );
    assert_eq!(ledger.reserved_quote, Decimal::ZERO);

    // No limit fill worse than its limit after the fee and the slippage bound.
    let keep = (Decimal::ONE - d("0.003")) * (Decimal::ONE - d("0.005"));
    let levels = [
        d("95000"),
        d("97500"),
        d("100000"),
        d("102500"),
        d("105000"),
    ];
    for f in fills.iter().filter(|f| !f.market) {
        let fill_price = f.quote / f.base;
        match f.side {
            Side::Buy => assert!(levels
                .iter()
                .any(|l| fill_price <= *l / keep && fill_price >= *l * d("0.9"))),
            Side::Sell => assert!(levels
                .iter()
                .any(|l| fill_price >= *l * keep && fill_price <= *l * d("1.1"))),
        }
    }
    store.close().await;
}
