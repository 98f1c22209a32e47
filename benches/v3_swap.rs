//! The cost of the bot's own V3 quote: one exact-input swap through a concentrated-liquidity
//! pool in the pool's integer arithmetic (the fill model's cost per swap, and best execution's
//! per pool quoted), inside one range and across initialized ticks; and best execution over a V2
//! pair and three V3 pools. Run: `cargo bench --bench v3_swap`.

use std::collections::BTreeMap;

use alloy::primitives::U256;
use bsc_bot::amm::quote::{best_pool, PoolState};
use bsc_bot::amm::v3::tick_math::sqrt_ratio_at_tick;
use bsc_bot::amm::v3::V3Pool;
use bsc_bot::amm::PoolKind;
use criterion::{criterion_group, criterion_main, Criterion};

/// A 5 bps pool at tick 46054 (price ≈ 100) with positions every 30 ticks around the price, as
/// a pool with many LPs looks: a large swap crosses many initialized ticks.
fn pool(fee: u32, spacing: i32) -> V3Pool {
    let tick: i32 = 46_054;
    let mut ticks = BTreeMap::new();
    let base = tick.div_euclid(spacing) * spacing;
    let l = 10i128.pow(22);
    for i in 1..=40 {
        *ticks.entry(base - i * 3 * spacing).or_insert(0) += l;
        *ticks.entry(base + i * 3 * spacing).or_insert(0) -= l;
    }
    V3Pool {
        fee,
        tick_spacing: spacing,
        sqrt_price_x96: sqrt_ratio_at_tick(tick).expect("tick"),
        tick,
        liquidity: (l * 40) as u128,
        ticks,
        known_words: (
            V3Pool::word_of(base / spacing) - 40,
            V3Pool::word_of(base / spacing) + 40,
        ),
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("v3_swap");
    let p = pool(500, 10);
    let e18 = U256::from(10u64).pow(U256::from(18u8));
    let small = p
        .swap_exact_in(false, e18 * U256::from(100u64))
        .expect("small");
    let large = p
        .swap_exact_in(false, e18 * U256::from(40_000u64))
        .expect("large");
    eprintln!(
        "ticks crossed: small swap {}, large swap {}",
        small.ticks_crossed, large.ticks_crossed
    );
    group.bench_function("inside_one_range", |b| {
        b.iter(|| p.swap_exact_in(false, std::hint::black_box(e18 * U256::from(100u64))))
    });
    group.bench_function("across_ticks", |b| {
        b.iter(|| p.swap_exact_in(false, std::hint::black_box(e18 * U256::from(40_000u64))))
    });
    let v2 = PoolState::V2 {
        reserve0: e18 * U256::from(1_000u64),
        reserve1: e18 * U256::from(100_000u64),
        fee_bps: 25,
    };
    let states = [
        (PoolKind::V2, v2),
        (PoolKind::V3 { fee: 100 }, PoolState::V3(pool(100, 1))),
        (PoolKind::V3 { fee: 500 }, PoolState::V3(p.clone())),
        (PoolKind::V3 { fee: 2500 }, PoolState::V3(pool(2500, 50))),
    ];
    group.bench_function("best_of_four_pools", |b| {
        b.iter(|| {
            best_pool(
                states.iter().map(|(k, s)| (*k, s, false)),
                std::hint::black_box(e18 * U256::from(300u64)),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
