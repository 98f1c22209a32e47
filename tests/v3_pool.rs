//! PancakeSwap V3 on a real local chain (anvil, the npm PancakeSwap V3 contracts, concentrated
//! liquidity in several ranges): the bot's V3 math equals the pool to the wei, swap by swap,
//! across initialized ticks and bitmap words; the bot's swapper trades a V3 pool through
//! `exactInputSingle` with the same guarantees as V2.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/chain.rs"]
mod testchain;
#[path = "common/chain_v3.rs"]
mod testchain_v3;

use std::str::FromStr;

use alloy::primitives::{aliases::U24, Address, U160, U256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use bsc_bot::chain::contracts::IQuoterV2;
use bsc_bot::chain::units::to_units;
use bsc_bot::chain::{ChainClient, Pool};
use bsc_bot::model::order::Side;
use rust_decimal::Decimal;
use testchain::{TestChain, Uniswap, TRADER_KEY};
use testchain_v3::{PancakeV3, Range};

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// Positions that overlap and leave gaps of thin liquidity, so larger swaps cross several
/// initialized ticks and more than one bitmap word (tick spacing 10: a word is 2,560 ticks).
const RANGES: [Range; 6] = [
    Range {
        lower: -4000,
        upper: 4000,
        tokens: 2_000,
    },
    Range {
        lower: -300,
        upper: 300,
        tokens: 20_000,
    },
    Range {
        lower: -60,
        upper: 90,
        tokens: 10_000,
    },
    Range {
        lower: 120,
        upper: 700,
        tokens: 8_000,
    },
    Range {
        lower: -900,
        upper: -150,
        tokens: 8_000,
    },
    Range {
        lower: 2600,
        upper: 3000,
        tokens: 5_000,
    },
];

struct V3Market {
    chain: TestChain,
    u: Uniswap,
    v3: PancakeV3,
    client: ChainClient,
    pool: Pool,
}

async fn v3_market(fee: u32) -> Option<V3Market> {
    let chain = TestChain::start().await?;
    let u = chain.deploy_uniswap(1_000, 100_000).await;
    let v3 = chain.deploy_pancake_v3(&u).await;
    let (address, _) = chain.v3_pool(&v3, fee, d("100"), &RANGES).await;
    let cfg = bsc_bot::config::ChainConfig {
        rpc_urls: vec![chain.url.clone()],
        ..Default::default()
    };
    let client = ChainClient::connect(&cfg).await.unwrap();
    let base = client.token(u.base).await.unwrap();
    let quote = client.token(u.quote).await.unwrap();
    let pool = client.v3_pool(v3.factory, base, quote, fee).await.unwrap();
    assert_eq!(pool.pair, address, "the pool is where the factory says");
    Some(V3Market {
        chain,
        u,
        v3,
        client,
        pool,
    })
}

impl V3Market {
    /// `[dex]` for this chain: the V2 router and factory (30 bps) and PancakeSwap V3.
    fn dex(&self) -> bsc_bot::config::DexConfig {
        bsc_bot::config::DexConfig {
            router: self.u.router.to_string(),
            factory: self.u.factory.to_string(),
            fee_bps: 30,
            v3_factory: self.v3.factory.to_string(),
            v3_pool_deployer: self.v3.deployer.to_string(),
            v3_router: self.v3.router.to_string(),
            v3_quoter: self.v3.quoter.to_string(),
            ..Default::default()
        }
    }

    /// The bot's swapper for `bot`, recording in `store`.
    fn swapper(
        &self,
        bot: PrivateKeySigner,
        store: &bsc_bot::store::Store,
    ) -> std::sync::Arc<bsc_bot::chain::Swapper> {
        let chain_cfg = bsc_bot::config::ChainConfig {
            rpc_urls: vec![self.chain.url.clone()],
            receipt_timeout_secs: 30,
            ..Default::default()
        };
        std::sync::Arc::new(
            bsc_bot::chain::Swapper::new(
                self.client.clone(),
                bot,
                store.clone(),
                chain_cfg,
                self.dex(),
            )
            .unwrap(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_math_equals_the_pool_to_the_wei() {
    let Some(m) = v3_market(500).await else {
        return;
    };
    m.chain.fund_v3_trader(&m.v3, 5_000, 500_000).await;
    let reader = m.chain.reader();
    let quoter = IQuoterV2::new(m.v3.quoter, &reader);
    let mut model = m.client.v3_state(&m.pool, 3, None).await.unwrap();
    assert!(
        model.ticks.len() >= 10,
        "the ranges' ticks were read: {:?}",
        model.ticks
    );
    let token0_is_base = m.pool.base_is_token0;
    let mut crossings = Vec::new();
    let swaps = [
        (Side::Buy, "250"),
        (Side::Buy, "40000"),
        (Side::Sell, "3.7"),
        (Side::Sell, "0.000000000001"),
        (Side::Sell, "500"),
        (Side::Buy, "123.456789"),
        (Side::Buy, "20000"),
        (Side::Sell, "350"),
        (Side::Buy, "7"),
    ];
    for (side, amount) in swaps {
        let (token_in, token_out) = match side {
            Side::Buy => (m.u.quote, m.u.base),
            Side::Sell => (m.u.base, m.u.quote),
        };
        let amount_in = to_units(d(amount), 18).unwrap();
        let zero_for_one = (token_in == m.u.base) == token0_is_base;
        let want = model
            .swap_exact_in(zero_for_one, amount_in)
            .unwrap_or_else(|e| panic!("{side:?} {amount}: {e}"));
        // QuoterV2 simulates the same swap on chain: the same output and end price.
        let q = quoter
            .quoteExactInputSingle(IQuoterV2::QuoteExactInputSingleParams {
                tokenIn: token_in,
                tokenOut: token_out,
                amountIn: amount_in,
                fee: U24::from(500u32),
                sqrtPriceLimitX96: U160::ZERO,
            })
            .call()
            .await
            .unwrap();
        assert_eq!(q.amountOut, want.amount_out, "{side:?} {amount}: QuoterV2");
        assert_eq!(
            U256::from(q.sqrtPriceX96After),
            want.sqrt_price_after,
            "{side:?} {amount}"
        );
        let (spent, got) = m
            .chain
            .v3_swap(&m.v3, TRADER_KEY, 500, token_in, token_out, amount_in)
            .await;
        assert_eq!(
            spent, want.amount_in,
            "{side:?} {amount}: taken from the wallet"
        );
        assert_eq!(
            got, want.amount_out,
            "{side:?} {amount}: paid to the wallet"
        );
        model.apply(&want);
        let now = m.client.v3_state(&m.pool, 3, None).await.unwrap();
        assert_eq!(
            (now.sqrt_price_x96, now.tick, now.liquidity),
            (model.sqrt_price_x96, model.tick, model.liquidity),
            "{side:?} {amount}: the pool after the swap"
        );
        eprintln!(
            "{side:?} {amount}: tick {} liquidity {} crossed {}",
            want.tick_after, want.liquidity_after, want.ticks_crossed
        );
        crossings.push(want.ticks_crossed);
    }
    eprintln!("initialized ticks crossed per swap: {crossings:?}");
    assert!(
        crossings.iter().filter(|c| **c >= 2).count() >= 2,
        "{crossings:?}"
    );
    assert!(crossings.contains(&0), "{crossings:?}");
    // The price as the bot reads it: from the sqrt price with decimals, and the virtual reserves.
    let (b, q) = m.client.reserves(&m.pool).await.unwrap();
    let price = bsc_bot::amm::v3::price_from_sqrt_x96(model.sqrt_price_x96, 18, 18, token0_is_base)
        .unwrap();
    assert!(
        ((q / b - price) / price).abs() < d("0.000000001"),
        "{} vs {price}",
        q / b
    );
}

const V3_GRID: &str = r#"{"lower_price":"97","upper_price":"103","grid_count":7,"base_order_size":"300","fee_bps":5}"#;

/// Tick the engine with the 500 pool's price, then apply the venue's answers until nothing is in
/// flight.
async fn settle(
    engine: &mut bsc_bot::engine::Engine<
        bsc_bot::engine::MemoryRecorder,
        bsc_bot::venue::dex::DexVenue,
    >,
    reports: &mut tokio::sync::mpsc::Receiver<bsc_bot::engine::VenueReport>,
    m: &V3Market,
    ts: &mut i64,
) {
    *ts += 1_000_000;
    let (b, q) = m.client.reserves(&m.pool).await.unwrap();
    engine.process(bsc_bot::engine::Event::Tick {
        symbol: 0,
        ts_us: *ts,
        price: bsc_bot::model::PriceKey::floor_of((q / b).round_dp(8)),
    });
    while engine.in_flight_count() > 0 {
        let r = tokio::time::timeout(std::time::Duration::from_secs(30), reports.recv())
            .await
            .expect("a swap never answered")
            .unwrap();
        engine.process(bsc_bot::engine::Event::Venue(r));
    }
}

/// What each pool of `pools` would have paid for `amount_in` of `token_in` in the block before
/// `block`: V2 by its router's `getAmountsOut`, V3 by QuoterV2 — the chain's own answers, not the
/// bot's math (0 where a pool cannot fill it).
async fn chain_quotes(
    m: &V3Market,
    pools: &[Pool],
    token_in: Address,
    token_out: Address,
    amount_in: U256,
    block: u64,
) -> Vec<(String, U256)> {
    let reader = m.chain.reader();
    let at = alloy::eips::BlockId::number(block - 1);
    let mut out = Vec::new();
    for p in pools {
        let got = match p.kind {
            bsc_bot::amm::PoolKind::V2 => {
                bsc_bot::chain::contracts::IUniswapV2Router02::new(m.u.router, &reader)
                    .getAmountsOut(amount_in, vec![token_in, token_out])
                    .block(at)
                    .call()
                    .await
                    .map(|a| a[1])
                    .unwrap_or_default()
            }
            bsc_bot::amm::PoolKind::V3 { fee } => IQuoterV2::new(m.v3.quoter, &reader)
                .quoteExactInputSingle(IQuoterV2::QuoteExactInputSingleParams {
                    tokenIn: token_in,
                    tokenOut: token_out,
                    amountIn: amount_in,
                    fee: U24::from(fee),
                    sqrtPriceLimitX96: U160::ZERO,
                })
                .block(at)
                .call()
                .await
                .map(|q| q.amountOut)
                .unwrap_or_default(),
        };
        out.push((p.kind.to_string(), got));
    }
    out
}

/// A live grid whose market may trade `kinds`, on the 500 pool's walked price. Returns, per
/// swap, the pool the records name and every pool's quote from the chain just before it.
async fn live_grid_over(
    kinds: &[bsc_bot::amm::PoolKind],
) -> Option<Vec<(String, Vec<(String, U256)>)>> {
    use bsc_bot::amm::PoolKind;
    let m = v3_market(500).await?;
    // A thinner 25 bps pool beside the 5 bps one and the V2 pair (30 bps, 1,000 / 100,000).
    m.chain
        .v3_pool(
            &m.v3,
            2500,
            d("100"),
            &[Range {
                lower: -3000,
                upper: 3000,
                tokens: 3_000,
            }],
        )
        .await;
    m.chain.fund_v3_trader(&m.v3, 5_000, 500_000).await;
    let db = common::TestDb::new("sqlite").await;
    let store = db.store().await;
    let bot = m.chain.bot_wallet(&m.u, 10_000).await;
    let me = bot.address();
    let dex = m.dex();
    let mut pools = Vec::new();
    for kind in kinds {
        pools.push(
            m.client
                .pool_of_kind(&dex, *kind, m.pool.base.clone(), m.pool.quote.clone())
                .await
                .unwrap(),
        );
    }
    let wallet_before = (
        m.client.native_balance(me).await.unwrap(),
        m.client.token_balance(&m.pool.base, me).await.unwrap(),
        m.client.token_balance(&m.pool.quote, me).await.unwrap(),
    );
    let swapper = m.swapper(bot, &store);
    let (reports_tx, mut reports) = tokio::sync::mpsc::channel(1024);
    let (venue, executor) = bsc_bot::venue::dex::dex_venue(
        swapper,
        std::collections::HashMap::from([(0, m.pool.clone())]),
        30,
        reports_tx,
        Box::new(|o| (format!("engine-order-{}", o.order_id), 1)),
    );
    let routes: bsc_bot::chain::pool_state::SharedRoutes = std::sync::Arc::new(
        std::sync::RwLock::new(std::collections::HashMap::from([(0, pools.clone())])),
    );
    let states = std::sync::Arc::new(bsc_bot::chain::pool_state::PoolStates::default());
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    tokio::spawn(bsc_bot::chain::pool_state::follow_pool_states(
        m.client.clone(),
        routes.clone(),
        states.clone(),
        30,
        std::time::Duration::from_millis(20),
        shutdown,
    ));
    tokio::spawn(
        executor
            .with_routing(bsc_bot::venue::dex::Routing {
                routes,
                states: states.clone(),
                pins: Default::default(),
            })
            .run(),
    );
    let params =
        bsc_bot::strategy::StrategyParams::parse("grid", &serde_json::from_str(V3_GRID).unwrap())
            .unwrap();
    let mut engine = bsc_bot::engine::Engine::new(
        1,
        venue,
        bsc_bot::risk::RiskGuard::new(bsc_bot::risk::RiskLimits::default()),
        bsc_bot::engine::MemoryRecorder::default(),
    );
    engine.add_strategy(
        params.build(),
        0,
        params.fee_bps(),
        bsc_bot::strategy::StrategyStatus::Active,
        None,
    );
    // Trading starts once every pool's state has been read (as the daemon's start does).
    for _ in 0..500 {
        if pools.iter().all(|p| states.get(p.pair).is_some()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let mut ts = 0;
    settle(&mut engine, &mut reports, &m, &mut ts).await;
    for target in ["98.6", "97.4", "99.2", "101.3", "102.6", "100.4"] {
        m.chain
            .walk_v3_to(&m.v3, &m.client, &m.pool, d(target))
            .await;
        // The follower reads the pools at each new block; read them now so this step does not
        // wait for its next poll.
        states.refresh(&m.client, &pools, 30).await;
        settle(&mut engine, &mut reports, &m, &mut ts).await;
    }
    let fills = engine.recorder().fills.clone();
    assert!(fills.len() >= 6, "{fills:#?}");
    assert!(
        engine.recorder().failures.is_empty(),
        "{:?}",
        engine.recorder().failures
    );
    // The wallet moved exactly as the ledger did, to the wei; gas on record = BNB spent.
    let txs = store.chain_txs_of(56, me).await.unwrap();
    let ledger = engine.ledger(0);
    let gas: Decimal = txs.iter().map(|t| d(t.fee_bnb.as_deref().unwrap())).sum();
    let after = (
        m.client.native_balance(me).await.unwrap(),
        m.client.token_balance(&m.pool.base, me).await.unwrap(),
        m.client.token_balance(&m.pool.quote, me).await.unwrap(),
    );
    assert_eq!(after.1 - wallet_before.1, ledger.base, "base to the wei");
    assert_eq!(
        after.2 - wallet_before.2,
        ledger.quote - ledger.initial_quote,
        "quote to the wei"
    );
    assert_eq!(wallet_before.0 - after.0, gas, "gas on record = BNB spent");
    // Each swap: the pool on record, and every pool's quote from the chain just before it.
    let mut out = Vec::new();
    for f in &fills {
        let reference = format!("engine-order-{}", f.order_id);
        let tx = txs
            .iter()
            .find(|t| {
                t.purpose == "swap"
                    && t.status == "mined"
                    && t.reference.as_deref() == Some(&reference)
            })
            .unwrap_or_else(|| panic!("no mined swap for {reference}"));
        let trade = tx;
        let kind = trade
            .pool_kind
            .clone()
            .unwrap_or_else(|| panic!("trade {} names no pool", tx.tx_hash));
        let chosen = pools.iter().find(|p| p.kind.to_string() == kind).unwrap();
        assert_eq!(
            trade.pool_address.as_deref(),
            Some(chosen.pair.to_string().as_str())
        );
        let receipt = m
            .chain
            .reader()
            .get_transaction_receipt(tx.tx_hash.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        let (token_in, token_out, amount_in, amount_out) = match f.side {
            Side::Buy => (m.u.quote, m.u.base, f.quote, f.base),
            Side::Sell => (m.u.base, m.u.quote, f.base, f.quote),
        };
        let quotes = chain_quotes(
            &m,
            &pools,
            token_in,
            token_out,
            to_units(amount_in, 18).unwrap(),
            receipt.block_number.unwrap(),
        )
        .await;
        // The pool on record paid what the chain quoted for it.
        let on_record = quotes.iter().find(|(k, _)| *k == kind).unwrap().1;
        assert_eq!(
            to_units(amount_out, 18).unwrap(),
            on_record,
            "{reference} on {kind}: {quotes:?}"
        );
        if matches!(chosen.kind, PoolKind::V3 { .. }) {
            assert!(
                trade.ticks_crossed.is_some(),
                "{reference}: ticks crossed on record"
            );
        }
        out.push((kind, quotes));
    }
    Some(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn best_execution_sends_each_swap_to_the_pool_that_pays_most() {
    use bsc_bot::amm::PoolKind;
    let kinds = [
        PoolKind::V2,
        PoolKind::V3 { fee: 500 },
        PoolKind::V3 { fee: 2500 },
    ];
    let Some(swaps) = live_grid_over(&kinds).await else {
        return;
    };
    let mut chosen = std::collections::BTreeSet::new();
    for (kind, quotes) in &swaps {
        let best = quotes.iter().map(|(_, q)| *q).max().unwrap();
        let on_record = quotes.iter().find(|(k, _)| k == kind).unwrap().1;
        assert_eq!(
            on_record, best,
            "{kind} paid less than the best pool: {quotes:?}"
        );
        chosen.insert(kind.clone());
    }
    eprintln!("pools chosen: {chosen:?} over {} swaps", swaps.len());
    assert!(
        chosen.len() >= 2,
        "the pools' prices diverge as the 500 pool is walked: {swaps:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_grid_pinned_to_the_v3_500_pool_never_leaves_it() {
    use bsc_bot::amm::PoolKind;
    let Some(swaps) = live_grid_over(&[PoolKind::V3 { fee: 500 }]).await else {
        return;
    };
    assert!(swaps.iter().all(|(k, _)| k == "v3:500"), "{swaps:?}");
}

/// The bot's swapper on a V3 pool: a buy through `exactInputSingle` spends exactly its quote and
/// receives what the model says to the wei; a buy front-run past its bound in the same block
/// reverts with only gas lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_swaps_through_the_swapper_and_a_front_run_reverts() {
    use alloy::providers::Provider;
    use bsc_bot::chain::{SwapOrder, SwapResult};
    let Some(m) = v3_market(500).await else {
        return;
    };
    m.chain.fund_v3_trader(&m.v3, 0, 500_000).await;
    let db = common::TestDb::new("sqlite").await;
    let store = db.store().await;
    let bot = m.chain.bot_wallet(&m.u, 10_000).await;
    let me = bot.address();
    let swapper = m.swapper(bot, &store);
    let balances = || async {
        (
            m.client.native_balance(me).await.unwrap(),
            m.client.token_balance(&m.pool.base, me).await.unwrap(),
            m.client.token_balance(&m.pool.quote, me).await.unwrap(),
        )
    };
    let price_now = || async {
        let (b, q) = m.client.reserves(&m.pool).await.unwrap();
        q / b
    };

    // A buy of 1,234.5 quote: exactly that leaves, exactly the model's output arrives.
    let state = m.client.v3_state(&m.pool, 3, None).await.unwrap();
    let zero_for_one = !m.pool.base_is_token0;
    let want = state
        .swap_exact_in(zero_for_one, to_units(d("1234.5"), 18).unwrap())
        .unwrap();
    let before = balances().await;
    let order = SwapOrder {
        side: Side::Buy,
        amount_in: d("1234.5"),
        limit: price_now().await * d("1.003"),
        reference: "v3-o1".into(),
        origin: None,
    };
    let SwapResult::Filled {
        base,
        quote,
        fee_bnb,
        impact,
        ..
    } = swapper.swap(&m.pool, &order).await.unwrap()
    else {
        panic!("the V3 buy did not fill");
    };
    assert_eq!(quote, d("1234.5"));
    assert_eq!(
        to_units(base, 18).unwrap(),
        want.amount_out,
        "the model's output to the wei"
    );
    let after = balances().await;
    assert_eq!(after.1 - before.1, base);
    assert_eq!(before.2 - after.2, quote);
    assert_eq!(
        before.0 - after.0,
        fee_bnb + {
            // The first swap also paid its approval's gas.
            let txs = store.chain_txs_of(56, me).await.unwrap();
            txs.iter()
                .filter(|t| t.purpose == "approve")
                .map(|t| d(t.fee_bnb.as_deref().unwrap()))
                .sum::<Decimal>()
        }
    );
    let (mid, bps) = impact.expect("the pool's Swap event gives the price before and the impact");
    assert!(
        (mid - d("100")).abs() < d("0.5") && bps >= Decimal::ZERO,
        "{mid} {bps}"
    );

    // Front-run: the trader's large buy lands first in the same block; the bot's buy reverts at
    // its bound (`Too little received`) with only its gas spent.
    let reader = m.chain.reader();
    let _: serde_json::Value = reader
        .raw_request("evm_setAutomine".into(), (false,))
        .await
        .unwrap();
    let before = balances().await;
    let nonce_before = reader.get_transaction_count(me).pending().await.unwrap();
    let limit = price_now().await * d("1.003");
    let (s2, p2) = (swapper.clone(), m.pool.clone());
    let victim = tokio::spawn(async move {
        let order = SwapOrder {
            side: Side::Buy,
            amount_in: d("1000"),
            limit,
            reference: "v3-o2".into(),
            origin: None,
        };
        s2.swap(&p2, &order).await
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while reader.get_transaction_count(me).pending().await.unwrap() == nonce_before {
        assert!(
            std::time::Instant::now() < deadline,
            "the bot never sent its swap"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    m.chain
        .v3_front_run(
            &m.v3,
            TRADER_KEY,
            500,
            m.u.quote,
            m.u.base,
            to_units(d("30000"), 18).unwrap(),
        )
        .await;
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
        panic!("the front-run swap did not fail: {result:?}")
    };
    assert!(fee_bnb > Decimal::ZERO, "{reason}");
    let after = balances().await;
    assert_eq!((after.1, after.2), (before.1, before.2), "no token moved");
    assert_eq!(after.0, before.0 - fee_bnb, "only gas lost");
    let txs = store.chain_txs_of(56, me).await.unwrap();
    assert_eq!(txs.last().unwrap().status, "reverted");
}

/// The V3 fill model against the real pool: the same grid on the same walked price path, live
/// (the engine and the DEX venue swapping on anvil's 5 bps pool) and through the simulated
/// venue with the pool's liquidity profile read from the chain before trading, gives the same
/// trades: side and cell equal, amounts within 1e-6 relative.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_v3_fill_model_agrees_with_live_swaps_trade_for_trade() {
    use bsc_bot::amm::v3::{V3FillModel, V3Profile};
    use bsc_bot::engine::{Engine, MemoryRecorder};
    use bsc_bot::venue::{SimVenue, SimVenueConfig};
    let Some(m) = v3_market(500).await else {
        return;
    };
    m.chain.fund_v3_trader(&m.v3, 5_000, 500_000).await;
    // The profile, read once before trading (as `backtest --pool-pair POOL --pool-block N` does).
    let state = m.client.v3_state(&m.pool, 8, None).await.unwrap();
    let profile = V3Profile::of(&state, m.pool.base_is_token0, 18, 18);
    let db = common::TestDb::new("sqlite").await;
    let store = db.store().await;
    let bot = m.chain.bot_wallet(&m.u, 10_000).await;
    let swapper = m.swapper(bot, &store);
    let (reports_tx, mut reports) = tokio::sync::mpsc::channel(1024);
    let (venue, executor) = bsc_bot::venue::dex::dex_venue(
        swapper,
        std::collections::HashMap::from([(0, m.pool.clone())]),
        30,
        reports_tx,
        Box::new(|o| (format!("engine-order-{}", o.order_id), 1)),
    );
    tokio::spawn(executor.run());
    let params =
        bsc_bot::strategy::StrategyParams::parse("grid", &serde_json::from_str(V3_GRID).unwrap())
            .unwrap();
    let guard = || bsc_bot::risk::RiskGuard::new(bsc_bot::risk::RiskLimits::default());
    let mut live = Engine::new(1, venue, guard(), MemoryRecorder::default());
    live.add_strategy(
        params.build(),
        0,
        params.fee_bps(),
        bsc_bot::strategy::StrategyStatus::Active,
        None,
    );
    let sim = SimVenue::new(SimVenueConfig::default()).with_v3(Some(
        V3FillModel::new(profile, Decimal::ZERO)
            .unwrap()
            .with_bound(50),
    ));
    let mut model = Engine::new(1, sim, guard(), MemoryRecorder::default());
    model.add_strategy(
        params.build(),
        0,
        params.fee_bps(),
        bsc_bot::strategy::StrategyStatus::Active,
        None,
    );
    let mut ts = 0;
    for target in [
        None,
        Some("98.6"),
        Some("97.4"),
        Some("99.2"),
        Some("101.3"),
        Some("102.6"),
        Some("100.4"),
    ] {
        if let Some(t) = target {
            m.chain.walk_v3_to(&m.v3, &m.client, &m.pool, d(t)).await;
        }
        settle(&mut live, &mut reports, &m, &mut ts).await;
        // The model sees the tick the live engine saw.
        let key = live
            .last_price(0)
            .map(bsc_bot::model::PriceKey::floor_of)
            .unwrap();
        model.process(bsc_bot::engine::Event::Tick {
            symbol: 0,
            ts_us: ts,
            price: key,
        });
        assert_eq!(
            live.recorder().fills.len(),
            model.recorder().fills.len(),
            "fills after the walk to {target:?}"
        );
    }
    let (lf, mf) = (&live.recorder().fills, &model.recorder().fills);
    assert!(lf.len() >= 8, "{lf:#?}");
    assert!(
        model.recorder().failures.is_empty(),
        "{:?}",
        model.recorder().failures
    );
    let close = |l: Decimal, m: Decimal, what: String| {
        let rel = ((l - m) / m).abs();
        assert!(
            rel <= d("0.000001"),
            "{what}: live {l} vs model {m} (relative {rel})"
        );
        rel
    };
    let mut worst = Decimal::ZERO;
    for (n, (l, mo)) in lf.iter().zip(mf.iter()).enumerate() {
        assert_eq!((l.side, l.tag), (mo.side, mo.tag), "trade {n}");
        worst = worst.max(close(l.base, mo.base, format!("trade {n} base")));
        worst = worst.max(close(l.quote, mo.quote, format!("trade {n} quote")));
    }
    eprintln!("{} trades, largest relative difference {worst}", lf.len());
}

/// `backtest run --fill-model amm --pool-pair V3_POOL` reads the pool's liquidity profile from
/// the configured node once and fills through V3's math; `--save-pool-profile` keeps it and
/// `--pool-profile FILE` runs the same backtest again without the node, to the byte. A pool with
/// no liquidity at its price and a file that is no profile are refused, naming the cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v3_backtest_reads_its_liquidity_profile_from_the_chain_or_a_file() {
    let Some(chain) = TestChain::start().await else {
        return;
    };
    let u = chain.deploy_uniswap(10, 1_150_000).await;
    let v3 = chain.deploy_pancake_v3(&u).await;
    let ranges = [
        Range {
            lower: -3000,
            upper: 3000,
            tokens: 1_000_000,
        },
        Range {
            lower: -400,
            upper: 400,
            tokens: 5_000_000,
        },
    ];
    let (pool, _) = chain.v3_pool(&v3, 500, d("115000"), &ranges).await;
    let (empty, _) = chain.v3_pool(&v3, 2500, d("115000"), &[]).await;
    let db = common::TestDb::new("sqlite").await;
    let config = db.dir.path().join("bsc-bot.toml");
    std::fs::write(
        &config,
        format!(
            "[chain]\nchain_id = 56\nrpc_urls = [\"{}\"]\n\n[dex.assets]\nBTC = \"{}\"\nUSDT = \"{}\"\n",
            chain.url, u.base, u.quote
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap().to_string();
    let data = common::repo_path("tests/data/BTCUSDT-1m-2025-08-01_to_2025-08-11.csv");
    let params = r#"{"lower_price":"112000","upper_price":"119000","grid_count":29,"base_order_size":"100","fee_bps":5}"#;
    let run = |pool_args: &[&str]| {
        let mut args = vec![
            "--config",
            &config,
            "--json",
            "backtest",
            "run",
            "-t",
            "grid",
            "-s",
            "BTC/USDT",
            "-p",
            params,
            "--data",
            data.to_str().unwrap(),
            "--fill-model",
            "amm",
        ];
        args.extend_from_slice(pool_args);
        db.run(&args)
    };
    let strip = |mut v: serde_json::Value| {
        for k in ["id", "fills_csv", "chart"] {
            v.as_object_mut().unwrap().remove(k);
        }
        v
    };
    let profile = db.dir.path().join("pool-profile.json");
    let profile = profile.to_str().unwrap();
    let pool = pool.to_string();
    let from_chain = strip(
        run(&["--pool-pair", &pool, "--save-pool-profile", profile])
            .ok()
            .json(),
    );
    let from_file = strip(run(&["--pool-profile", profile]).ok().json());
    assert_eq!(
        from_chain, from_file,
        "the same pool, read from the chain or the file"
    );
    assert!(
        from_chain["round_trips"].as_u64().unwrap() > 0,
        "{from_chain}"
    );
    let costs = &from_chain["swap_costs"];
    assert!(
        d(costs["price_impact"].as_str().unwrap()) > Decimal::ZERO,
        "{costs}"
    );
    // The profile on file: the 5 bps tier and the positions' initialized ticks.
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(profile).unwrap()).unwrap();
    assert_eq!(doc["fee"], 500);
    assert!(doc["ticks"].as_array().unwrap().len() >= 4);
    // A V3 pool with no liquidity at its price, and a file that is no profile.
    run(&["--pool-pair", &empty.to_string()]).fails_with(1, "no liquidity");
    let junk = db.dir.path().join("junk.json");
    std::fs::write(&junk, "{\"fee\": 500}").unwrap();
    run(&["--pool-profile", junk.to_str().unwrap()]).fails_with(1, "not a V3 profile");
}
