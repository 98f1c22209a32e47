//! The AMM fill model against the real thing: the same price path run live (the engine, the
//! grid and the DEX venue swapping on anvil's Uniswap V2 pair) and through the AMM-model venue
//! gives the same trades, amount for amount within 1e-9; and a backtest's pool read from the
//! chain by its pair address is the pool given by its reserves.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/chain.rs"]
mod testchain;

use std::str::FromStr;
use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use bsc_bot::amm::AmmPool;
use bsc_bot::chain::units::to_units;
use bsc_bot::engine::VenueReport;
use bsc_bot::engine::{Engine, Event, MemoryRecorder};
use bsc_bot::model::order::Fill;
use bsc_bot::model::PriceKey;
use bsc_bot::risk::{RiskGuard, RiskLimits};
use bsc_bot::strategy::{StrategyParams, StrategyStatus};
use bsc_bot::venue::dex::DexVenue;
use bsc_bot::venue::{SimVenue, SimVenueConfig};
use common::TestDb;
use rust_decimal::Decimal;
use testchain::{TestChain, Uniswap, DEPLOYER_KEY};
use tokio::sync::mpsc;

mod pair {
    alloy::sol! {
        #[sol(rpc)]
        interface ITestPair {
            function skim(address to) external;
            function sync() external;
        }
    }
}
use pair::ITestPair;

const GRID: &str = r#"{"lower_price":"95000","upper_price":"105000","grid_count":5,"base_order_size":"1000","fee_bps":30}"#;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// Put the pair at exactly these reserves (token units, 18 decimals): top its balances up,
/// write the reserves slot, skim the excess away and `sync` (which emits the `Sync` a live
/// market reads).
async fn set_reserves(chain: &TestChain, u: &Uniswap, base_is_token0: bool, b: U256, q: U256) {
    chain.give_tokens(u.base, u.pair, 1_000).await;
    chain.give_tokens(u.quote, u.pair, 50_000_000).await;
    let (r0, r1) = if base_is_token0 { (b, q) } else { (q, b) };
    // UniswapV2Pair slot 8: reserve0 (112 bits) | reserve1 (112 bits) | blockTimestampLast.
    let packed = r0 | (r1 << 112);
    let reader = chain.reader();
    let _: serde_json::Value = reader
        .raw_request(
            "anvil_setStorageAt".into(),
            (u.pair, U256::from(8u8), B256::from(packed)),
        )
        .await
        .unwrap();
    let p = chain.signer(DEPLOYER_KEY);
    let trash = Address::repeat_byte(0xee);
    for call in [
        ITestPair::new(u.pair, &p).skim(trash).send().await.unwrap(),
        ITestPair::new(u.pair, &p).sync().send().await.unwrap(),
    ] {
        assert!(call.get_receipt().await.unwrap().status());
    }
}

/// Apply the live venue's answers until nothing is in flight.
async fn settle(
    engine: &mut Engine<MemoryRecorder, DexVenue>,
    reports: &mut mpsc::Receiver<VenueReport>,
) {
    while engine.in_flight_count() > 0 {
        let r = tokio::time::timeout(Duration::from_secs(30), reports.recv())
            .await
            .expect("a swap never answered")
            .unwrap();
        engine.process(Event::Venue(r));
    }
}

#[track_caller]
fn close(live: Decimal, model: Decimal, what: &str) {
    let rel = ((live - model) / model).abs();
    assert!(
        rel <= Decimal::new(1, 9),
        "{what}: live {live} vs model {model} (relative {rel})"
    );
}

/// The live grid on anvil and its model twin after the same ticks (`path`), fills compared
/// trade for trade as they come.
struct Twins {
    live: Engine<MemoryRecorder, DexVenue>,
    model: Engine<MemoryRecorder, SimVenue>,
    store: bsc_bot::store::Store,
    me: Address,
    _db: TestDb,
}

/// The model charges `gas_quote` a swap beside it; its amounts never depend on it.
async fn live_and_model(
    chain: &TestChain,
    (base_liquidity, quote_liquidity): (u64, u64),
    path: &[&str],
    gas_quote: Decimal,
) -> Twins {
    let u = chain.deploy_uniswap(base_liquidity, quote_liquidity).await;
    let db = TestDb::new("sqlite").await;
    let store = db.store().await;
    let market = chain.market(&u, 30).await;
    let (client, pool) = (market.client.clone(), market.pool.clone());
    let bot = chain.bot_wallet(&u, 10_000).await;
    let me = bot.address();
    let (venue, mut reports) = market.dex_venue(bot, store.clone());
    let params = StrategyParams::parse("grid", &serde_json::from_str(GRID).unwrap()).unwrap();
    let mut live = Engine::new(
        1,
        venue,
        RiskGuard::new(RiskLimits::default()),
        MemoryRecorder::default(),
    );
    live.add_strategy(params.build(), 0, 30, StrategyStatus::Active, None);
    // The model: the same pool depth; gas beside the swaps (live gas is paid in BNB).
    let amm = AmmPool::from_reserves(
        Decimal::from(base_liquidity),
        Decimal::from(quote_liquidity),
        gas_quote,
    )
    .unwrap();
    let mut model = Engine::new(
        1,
        SimVenue::new(SimVenueConfig {
            slippage_bps: 0,
            amm: Some(amm),
        }),
        RiskGuard::new(RiskLimits::default()),
        MemoryRecorder::default(),
    );
    model.add_strategy(params.build(), 0, 30, StrategyStatus::Active, None);
    for (i, p) in path.iter().enumerate() {
        let price = d(p);
        if i > 0 {
            let (b, q) = amm.reserves_at(price);
            set_reserves(
                chain,
                &u,
                pool.base_is_token0,
                to_units(b, 18).unwrap(),
                to_units(q, 18).unwrap(),
            )
            .await;
        }
        let (b, q) = client.reserves(&pool).await.unwrap();
        close(q / b, price, &format!("pool price before tick {i}"));
        let ts = (i as i64 + 1) * 1_000_000;
        let key = PriceKey::floor_of(price);
        live.process(Event::Tick {
            symbol: 0,
            ts_us: ts,
            price: key,
        });
        settle(&mut live, &mut reports).await;
        model.process(Event::Tick {
            symbol: 0,
            ts_us: ts,
            price: key,
        });
        assert_eq!(
            live.recorder().fills.len(),
            model.recorder().fills.len(),
            "fills after {p}"
        );
    }
    let (lf, mf): (&[Fill], &[Fill]) = (&live.recorder().fills, &model.recorder().fills);
    for (n, (l, m)) in lf.iter().zip(mf).enumerate() {
        assert_eq!((l.side, l.tag), (m.side, m.tag), "trade {n}");
        close(l.base, m.base, &format!("trade {n} base"));
        close(l.quote, m.quote, &format!("trade {n} quote"));
        close(l.price, m.price, &format!("trade {n} price"));
    }
    close(
        live.ledger(0).realized_pnl,
        model.ledger(0).realized_pnl,
        "realized pnl",
    );
    Twins {
        live,
        model,
        store,
        me,
        _db: db,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_swaps_equal_the_amm_model_trade_for_trade() {
    let Some(chain) = TestChain::start().await else {
        return;
    };
    // 100 base against 10.2 M quote: the pool's price is exactly 102,000. One level at a time,
    // so each price fires at most one order and the pool is exactly at that order's trigger
    // when it swaps: the start buy of the top cell at 102,000, its sell at 105,000, buys at
    // 102,500, 100,000 and 97,500, sells at 100,000, 102,500 and 105,000.
    let path = [
        "102000", "105000", "102500", "100000", "97500", "100000", "102500", "105000",
    ];
    let gas = d("0.009");
    let Twins {
        live,
        model,
        store,
        me,
        ..
    } = live_and_model(&chain, (100, 10_200_000), &path, gas).await;
    assert_eq!(live.recorder().fills.len(), 8);
    // PnL gross and net of gas: the model charges its gas per swap beside the amounts; live
    // fills carry what each swap paid in BNB.
    let m = model.ledger(0);
    assert_eq!(m.gas, gas * Decimal::from(8));
    assert_eq!(
        m.total_pnl_net_of_gas(d("105000")),
        m.total_pnl(d("105000")) - m.gas
    );
    // Gas, trade by trade: what each swap cost on chain (its receipt: units × effective gas
    // price, in BNB, at a BNB price of 600) is what the model charges for a swap given those
    // units and that gas price (`--gas-units`, `--gas-price-gwei`, `--bnb-price 600`). The
    // model takes one figure for every swap; the chain's units differ from swap to swap
    // (calldata bytes, storage slots written fresh or emptied), printed below.
    let txs = store.chain_txs_of(56, me).await.unwrap();
    let swaps: Vec<_> = txs.iter().filter(|t| t.purpose == "swap").collect();
    assert_eq!(swaps.len(), 8);
    let paid: Decimal = swaps.iter().map(|t| d(t.fee_bnb.as_deref().unwrap())).sum();
    assert!(live
        .recorder()
        .fills
        .iter()
        .all(|f| f.gas_bnb > Decimal::ZERO));
    assert_eq!(
        live.ledger(0).gas_bnb,
        paid,
        "the live ledger holds every swap's gas"
    );
    let bnb_price = d("600");
    for (n, t) in swaps.iter().enumerate() {
        let receipt = chain
            .reader()
            .get_transaction_receipt(t.tx_hash.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(receipt.status());
        assert_eq!(t.gas_used, Some(receipt.gas_used as i64));
        let fee_bnb = Decimal::from(receipt.gas_used) * Decimal::from(receipt.effective_gas_price)
            / Decimal::from(10u64.pow(18));
        assert_eq!(d(t.fee_bnb.as_deref().unwrap()), fee_bnb.normalize());
        let gwei = Decimal::from(receipt.effective_gas_price) / Decimal::from(1_000_000_000u64);
        assert!(
            gwei > Decimal::ZERO,
            "a swap that paid no gas proves nothing"
        );
        close(
            fee_bnb * bnb_price,
            AmmPool::gas_quote_of(receipt.gas_used, gwei, bnb_price),
            &format!("swap {n} gas in quote"),
        );
    }
    eprintln!(
        "live swap gas used: {:?}",
        swaps
            .iter()
            .map(|t| t.gas_used.unwrap())
            .collect::<Vec<_>>()
    );
}

/// Two start buys at one price: on chain the second meets the pool the first moved; the model
/// applies their impact in the same order, trade for trade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consecutive_swaps_at_one_price_move_the_model_pool_as_on_chain() {
    let Some(chain) = TestChain::start().await else {
        return;
    };
    // At 100,000 the two cells above start bought, one swap after the other; then their sells.
    let twins = live_and_model(
        &chain,
        (100, 10_000_000),
        &["100000", "102500", "105000"],
        Decimal::ZERO,
    )
    .await;
    let fills = &twins.model.recorder().fills;
    assert_eq!(fills.len(), 4, "{fills:#?}");
    assert!(
        fills[1].base < fills[0].base,
        "the second start buy pays the first's impact"
    );
}

/// `--pool-pair ADDRESS` reads the pool's reserves from the configured node once: the backtest
/// equals one given those reserves by hand. Which token is the base comes from `[dex.assets]`;
/// without it, from the tokens' symbols (here both tokens say `UNI-V2`: refused, with the fix).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backtest_pool_read_from_the_chain_by_pair_address() {
    let Some(chain) = TestChain::start().await else {
        return;
    };
    let u = chain.deploy_uniswap(250, 28_750_000).await;
    let db = TestDb::new("sqlite").await;
    let chain_only = format!("[chain]\nchain_id = 56\nrpc_urls = [\"{}\"]\n", chain.url);
    let with_assets = format!(
        "{chain_only}\n[dex.assets]\nBTC = \"{}\"\nUSDT = \"{}\"\n",
        u.base, u.quote
    );
    let write = |name: &str, text: &str| {
        let p = db.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let (bare, full) = (
        write("bare.toml", &chain_only),
        write("full.toml", &with_assets),
    );
    let data = common::repo_path("tests/data/BTCUSDT-1m-2025-08-01_to_2025-08-11.csv");
    let params =
        r#"{"lower_price":"112000","upper_price":"119000","grid_count":8,"base_order_size":"100"}"#;
    let run = |config: &str, pool: &[&str]| {
        let mut args = vec![
            "--config",
            config,
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
        args.extend_from_slice(pool);
        db.run(&args)
    };
    let pair = u.pair.to_string();
    let strip = |mut v: serde_json::Value| {
        for k in ["id", "fills_csv", "chart"] {
            v.as_object_mut().unwrap().remove(k);
        }
        v
    };
    let from_chain = strip(run(&full, &["--pool-pair", &pair]).ok().json());
    let by_hand = strip(run(&full, &["--pool-reserves", "250:28750000"]).ok().json());
    assert_eq!(from_chain, by_hand);
    assert!(from_chain["swap_costs"]["price_impact"].as_str().is_some());
    assert!(from_chain["round_trips"].as_u64().unwrap() > 0);
    run(&bare, &["--pool-pair", &pair]).fails_with(1, "cannot tell which of its tokens");
    run(&full, &["--pool-pair", "0x12"]).fails_with(1, "not an address");
    run(&full, &["--pool-pair", &pair, "--pool-reserves", "1:1"])
        .fails_with(1, "cannot be used with");
}
