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
use alloy::signers::local::PrivateKeySigner;
use bsc_bot::chain::contracts::{IPancakeV3SwapRouter, IQuoterV2, IERC20};
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
    Range { lower: -4000, upper: 4000, tokens: 2_000 },
    Range { lower: -300, upper: 300, tokens: 20_000 },
    Range { lower: -60, upper: 90, tokens: 10_000 },
    Range { lower: 120, upper: 700, tokens: 8_000 },
    Range { lower: -900, upper: -150, tokens: 8_000 },
    Range { lower: 2600, upper: 3000, tokens: 5_000 },
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
    Some(V3Market { chain, u, v3, client, pool })
}

fn trader() -> Address {
    TRADER_KEY.parse::<PrivateKeySigner>().unwrap().address()
}

/// The trader's swap through the real V3 router; returns what left and what reached the wallet.
async fn router_swap(m: &V3Market, token_in: Address, token_out: Address, amount: U256) -> (U256, U256) {
    let p = m.chain.signer(TRADER_KEY);
    let bal = |t: Address| {
        let p = p.clone();
        async move { IERC20::new(t, &p).balanceOf(trader()).call().await.unwrap() }
    };
    let (in_before, out_before) = (bal(token_in).await, bal(token_out).await);
    let r = IPancakeV3SwapRouter::new(m.v3.router, &p)
        .exactInputSingle(IPancakeV3SwapRouter::ExactInputSingleParams {
            tokenIn: token_in,
            tokenOut: token_out,
            fee: U24::from(500u32),
            recipient: trader(),
            deadline: U256::from(u64::MAX),
            amountIn: amount,
            amountOutMinimum: U256::ZERO,
            sqrtPriceLimitX96: U160::ZERO,
        })
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status(), "swap reverted");
    (in_before - bal(token_in).await, bal(token_out).await - out_before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_math_equals_the_pool_to_the_wei() {
    let Some(m) = v3_market(500).await else {
        return;
    };
    m.chain.give_tokens(m.u.base, trader(), 5_000).await;
    m.chain.give_tokens(m.u.quote, trader(), 500_000).await;
    m.chain.approve_v3_router(&m.v3, TRADER_KEY, m.u.base).await;
    m.chain.approve_v3_router(&m.v3, TRADER_KEY, m.u.quote).await;
    let reader = m.chain.reader();
    let quoter = IQuoterV2::new(m.v3.quoter, &reader);
    let mut model = m.client.v3_state(&m.pool, 3, None).await.unwrap();
    assert!(model.ticks.len() >= 10, "the ranges' ticks were read: {:?}", model.ticks);
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
        assert_eq!(U256::from(q.sqrtPriceX96After), want.sqrt_price_after, "{side:?} {amount}");
        let (spent, got) = router_swap(&m, token_in, token_out, amount_in).await;
        assert_eq!(spent, want.amount_in, "{side:?} {amount}: taken from the wallet");
        assert_eq!(got, want.amount_out, "{side:?} {amount}: paid to the wallet");
        model.apply(&want);
        let now = m.client.v3_state(&m.pool, 3, None).await.unwrap();
        assert_eq!(
            (now.sqrt_price_x96, now.tick, now.liquidity),
            (model.sqrt_price_x96, model.tick, model.liquidity),
            "{side:?} {amount}: the pool after the swap"
        );
        eprintln!("{side:?} {amount}: tick {} liquidity {} crossed {}", want.tick_after, want.liquidity_after, want.ticks_crossed);
        crossings.push(want.ticks_crossed);
    }
    eprintln!("initialized ticks crossed per swap: {crossings:?}");
    assert!(crossings.iter().filter(|c| **c >= 2).count() >= 2, "{crossings:?}");
    assert!(crossings.contains(&0), "{crossings:?}");
    // The price as the bot reads it: from the sqrt price with decimals, and the virtual reserves.
    let (b, q) = m.client.reserves(&m.pool).await.unwrap();
    let price = bsc_bot::amm::v3::price_from_sqrt_x96(model.sqrt_price_x96, 18, 18, token0_is_base).unwrap();
    assert!(((q / b - price) / price).abs() < d("0.000000001"), "{} vs {price}", q / b);
}
