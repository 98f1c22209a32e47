//! PancakeSwap V3 on the test chain: the real factory, pool, `SwapRouter`, `QuoterV2` and
//! `NonfungiblePositionManager` from npm (`@pancakeswap/v3-core@1.0.2`, `-periphery@1.0.2`), and the
//! one part the packages lack, a pool deployer (`tests/data/pancake-v3/TestPoolDeployer.sol`),
//! which creates pools from the npm pool code unchanged. Pools get concentrated liquidity in
//! several ranges through the position manager, so swaps cross initialized ticks.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::PathBuf;

use alloy::primitives::{aliases::I24, aliases::U24, Address, U160, U256};
use alloy::providers::DynProvider;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolValue;
use bsc_bot::chain::contracts::IERC20;
use rust_decimal::Decimal;

use super::testchain::{TestChain, Uniswap, DEPLOYER_KEY};

#[allow(clippy::too_many_arguments)]
mod abi {
    alloy::sol! {
        #[sol(rpc)]
        interface ITestPoolDeployer {
            function setFactoryAddress(address factory) external;
        }

        #[sol(rpc)]
        interface IPositionManager {
            struct MintParams {
                address token0;
                address token1;
                uint24 fee;
                int24 tickLower;
                int24 tickUpper;
                uint256 amount0Desired;
                uint256 amount1Desired;
                uint256 amount0Min;
                uint256 amount1Min;
                address recipient;
                uint256 deadline;
            }
            function createAndInitializePoolIfNecessary(address token0, address token1, uint24 fee, uint160 sqrtPriceX96) external payable returns (address pool);
            function mint(MintParams calldata params) external payable returns (uint256 tokenId, uint128 liquidity, uint256 amount0, uint256 amount1);
        }
    }
}
use abi::{IPositionManager, ITestPoolDeployer};

/// The deployed V3 contracts, beside a V2 deployment's tokens.
#[derive(Debug, Clone, Copy)]
pub struct PancakeV3 {
    pub factory: Address,
    pub deployer: Address,
    pub router: Address,
    pub quoter: Address,
    pub positions: Address,
    pub base: Address,
    pub quote: Address,
}

/// A concentrated-liquidity position: ticks relative to the pool's start tick (multiples of its
/// spacing) and how much of each token (whole tokens) it may take.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub lower: i32,
    pub upper: i32,
    pub tokens: u64,
}

fn hardhat_bytecode(path: PathBuf) -> Vec<u8> {
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap();
    let hex = doc["bytecode"].as_str().unwrap();
    assert!(hex.len() > 2, "{} has no bytecode", path.display());
    alloy::hex::decode(hex.trim_start_matches("0x")).unwrap()
}

async fn mined(r: alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>) {
    let receipt = r.get_receipt().await.unwrap();
    assert!(
        receipt.status(),
        "transaction reverted: {:?}",
        receipt.transaction_hash
    );
}

impl TestChain {
    fn pancake(&self, package: &str, contract: &str) -> Vec<u8> {
        let dir = self.artifacts_dir().parent().unwrap().join("@pancakeswap");
        let name = contract.rsplit('/').next().unwrap();
        hardhat_bytecode(
            dir.join(package)
                .join("artifacts/contracts")
                .join(format!("{contract}.sol"))
                .join(format!("{name}.json")),
        )
    }

    /// PancakeSwap V3 (factory with its pool deployer, swap router, QuoterV2, position manager)
    /// for `u`'s tokens and WETH.
    pub async fn deploy_pancake_v3(&self, u: &Uniswap) -> PancakeV3 {
        let p = self.signer(DEPLOYER_KEY);
        // A contract whose runtime code is the pool's creation code (23.5 KB, under EIP-170's
        // 24 KB): `PUSH2 len DUP1 PUSH1 12 PUSH1 0 CODECOPY PUSH1 0 RETURN` then the code.
        let pool_code = self.pancake("v3-core", "PancakeV3Pool");
        let len = u16::try_from(pool_code.len()).unwrap().to_be_bytes();
        let mut holder = vec![
            0x61, len[0], len[1], 0x80, 0x60, 0x0c, 0x60, 0x00, 0x39, 0x60, 0x00, 0xf3,
        ];
        holder.extend(pool_code);
        let holder = self.deploy(&p, holder, vec![]).await;
        let deployer_json = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/pancake-v3/TestPoolDeployer.json");
        let deployer = self
            .deploy(&p, hardhat_bytecode(deployer_json), holder.abi_encode())
            .await;
        let factory = self
            .deploy(
                &p,
                self.pancake("v3-core", "PancakeV3Factory"),
                deployer.abi_encode(),
            )
            .await;
        mined(
            ITestPoolDeployer::new(deployer, &p)
                .setFactoryAddress(factory)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let args = (deployer, factory, u.weth).abi_encode_params();
        let router = self
            .deploy(&p, self.pancake("v3-periphery", "SwapRouter"), args.clone())
            .await;
        let quoter = self
            .deploy(&p, self.pancake("v3-periphery", "lens/QuoterV2"), args)
            .await;
        let positions = self
            .deploy(
                &p,
                self.pancake("v3-periphery", "NonfungiblePositionManager"),
                (deployer, factory, u.weth, Address::ZERO).abi_encode_params(),
            )
            .await;
        for t in [u.base, u.quote] {
            mined(
                IERC20::new(t, &p)
                    .approve(positions, U256::MAX)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
        }
        PancakeV3 {
            factory,
            deployer,
            router,
            quoter,
            positions,
            base: u.base,
            quote: u.quote,
        }
    }

    /// A pool of fee tier `fee` at `price` (quote per base, both tokens 18 decimals) with the
    /// deployer's positions in `ranges`; returns the pool and its start tick.
    pub async fn v3_pool(
        &self,
        v3: &PancakeV3,
        fee: u32,
        price: Decimal,
        ranges: &[Range],
    ) -> (Address, i32) {
        let p = self.signer(DEPLOYER_KEY);
        let me = DEPLOYER_KEY.parse::<PrivateKeySigner>().unwrap().address();
        let base_is_token0 = v3.base < v3.quote;
        let (token0, token1) = if base_is_token0 {
            (v3.base, v3.quote)
        } else {
            (v3.quote, v3.base)
        };
        let sqrt = bsc_bot::amm::v3::sqrt_x96_from_price(price, 18, 18, base_is_token0).unwrap();
        let npm = IPositionManager::new(v3.positions, &p);
        mined(
            npm.createAndInitializePoolIfNecessary(
                token0,
                token1,
                U24::from(fee),
                U160::from(sqrt),
            )
            .gas(8_000_000)
            .send()
            .await
            .unwrap(),
        )
        .await;
        let pool = bsc_bot::chain::contracts::IPancakeV3Factory::new(v3.factory, &p)
            .getPool(token0, token1, U24::from(fee))
            .call()
            .await
            .unwrap();
        assert_ne!(pool, Address::ZERO, "the factory made no pool");
        let spacing = bsc_bot::amm::v3::tick_spacing_of(fee).unwrap();
        let start = bsc_bot::amm::v3::tick_math::tick_at_sqrt_ratio(sqrt).unwrap();
        let centre = start.div_euclid(spacing) * spacing;
        let whole = U256::from(10u8).pow(U256::from(18u8));
        for r in ranges {
            let amount = U256::from(r.tokens) * whole;
            mined(
                npm.mint(IPositionManager::MintParams {
                    token0,
                    token1,
                    fee: U24::from(fee),
                    tickLower: I24::try_from(centre + r.lower).unwrap(),
                    tickUpper: I24::try_from(centre + r.upper).unwrap(),
                    amount0Desired: amount,
                    amount1Desired: amount,
                    amount0Min: U256::ZERO,
                    amount1Min: U256::ZERO,
                    recipient: me,
                    deadline: U256::from(u64::MAX),
                })
                // A fixed limit: an estimate made in one second is short in the next, when the
                // pool also writes its price oracle.
                .gas(3_000_000)
                .send()
                .await
                .unwrap(),
            )
            .await;
        }
        (pool, start)
    }

    /// `key` lets the V3 router spend its `token`.
    pub async fn approve_v3_router(&self, v3: &PancakeV3, key: &str, token: Address) {
        let p: DynProvider = self.signer(key);
        mined(
            IERC20::new(token, &p)
                .approve(v3.router, U256::MAX)
                .send()
                .await
                .unwrap(),
        )
        .await;
    }
}

/// An exact-input swap of `amount` on the `fee` pool paid to `who`, with no bound and no
/// deadline (a test trader's).
fn exact_input(
    fee: u32,
    token_in: Address,
    token_out: Address,
    amount: U256,
    who: Address,
) -> bsc_bot::chain::contracts::IPancakeV3SwapRouter::ExactInputSingleParams {
    bsc_bot::chain::contracts::IPancakeV3SwapRouter::ExactInputSingleParams {
        tokenIn: token_in,
        tokenOut: token_out,
        fee: U24::from(fee),
        recipient: who,
        deadline: U256::from(u64::MAX),
        amountIn: amount,
        amountOutMinimum: U256::ZERO,
        sqrtPriceLimitX96: U160::ZERO,
    }
}

impl TestChain {
    /// The trader (second dev account) holds `base` and `quote` whole tokens and lets the V3
    /// router spend them: ready to walk V3 prices.
    pub async fn fund_v3_trader(&self, v3: &PancakeV3, base: u64, quote: u64) {
        let trader = super::testchain::TRADER_KEY
            .parse::<PrivateKeySigner>()
            .unwrap()
            .address();
        self.give_tokens(v3.base, trader, base).await;
        self.give_tokens(v3.quote, trader, quote).await;
        for t in [v3.base, v3.quote] {
            self.approve_v3_router(v3, super::testchain::TRADER_KEY, t)
                .await;
        }
    }

    /// `key`'s exact-input swap of `amount` through the real V3 router on the `fee` pool; returns
    /// what left the wallet and what reached it.
    pub async fn v3_swap(
        &self,
        v3: &PancakeV3,
        key: &str,
        fee: u32,
        token_in: Address,
        token_out: Address,
        amount: U256,
    ) -> (U256, U256) {
        use bsc_bot::chain::contracts::IPancakeV3SwapRouter;
        let p = self.signer(key);
        let who = key.parse::<PrivateKeySigner>().unwrap().address();
        let bal = |t: Address| {
            let p = p.clone();
            async move { IERC20::new(t, &p).balanceOf(who).call().await.unwrap() }
        };
        let (in_before, out_before) = (bal(token_in).await, bal(token_out).await);
        let r = IPancakeV3SwapRouter::new(v3.router, &p)
            .exactInputSingle(exact_input(fee, token_in, token_out, amount, who))
            // A fixed limit: the node's estimate is for the block it simulates in, and a swap
            // mined in the next second also writes the pool's price oracle (more gas).
            .gas(3_000_000)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(
            r.status(),
            "the V3 swap of {amount} reverted (gas used {})",
            r.gas_used
        );
        (
            in_before - bal(token_in).await,
            bal(token_out).await - out_before,
        )
    }

    /// The trader (second dev account, holding both tokens and letting the V3 router spend
    /// them) moves `pool`'s price to `target` (quote per base, 18-decimal tokens): the amount is
    /// found with the pool's own math, then swapped through the router.
    pub async fn walk_v3_to(
        &self,
        v3: &PancakeV3,
        client: &bsc_bot::chain::ChainClient,
        pool: &bsc_bot::chain::Pool,
        target: Decimal,
    ) {
        let bsc_bot::amm::PoolKind::V3 { fee } = pool.kind else {
            panic!("not a V3 pool");
        };
        let base0 = pool.base_is_token0;
        let state = client.v3_state(pool, 3, None).await.unwrap();
        let now =
            bsc_bot::amm::v3::price_from_sqrt_x96(state.sqrt_price_x96, 18, 18, base0).unwrap();
        let (base, quote) = (pool.base.address, pool.quote.address);
        let (token_in, token_out) = if target < now {
            (base, quote)
        } else {
            (quote, base)
        };
        let zero_for_one = (token_in == base) == base0;
        let target_sqrt = bsc_bot::amm::v3::sqrt_x96_from_price(target, 18, 18, base0).unwrap();
        let (mut lo, mut hi) = (U256::ZERO, U256::from(10u8).pow(U256::from(24u8)));
        for _ in 0..90 {
            let mid = (lo + hi) / U256::from(2u8);
            let reached = match state.swap_exact_in(zero_for_one, mid) {
                Ok(o) if zero_for_one => o.sqrt_price_after <= target_sqrt,
                Ok(o) => o.sqrt_price_after >= target_sqrt,
                Err(_) => true,
            };
            if reached {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        self.v3_swap(
            v3,
            super::testchain::TRADER_KEY,
            fee,
            token_in,
            token_out,
            hi,
        )
        .await;
    }
}

impl TestChain {
    /// A buy of `amount` of `token_out` for `token_in` by `key` on the `fee` pool at 100 gwei:
    /// first in the next block. Sent without waiting (automine may be off).
    pub async fn v3_front_run(
        &self,
        v3: &PancakeV3,
        key: &str,
        fee: u32,
        token_in: Address,
        token_out: Address,
        amount: U256,
    ) {
        use bsc_bot::chain::contracts::IPancakeV3SwapRouter;
        let p = self.signer(key);
        let who = key.parse::<PrivateKeySigner>().unwrap().address();
        let _pending = IPancakeV3SwapRouter::new(v3.router, &p)
            .exactInputSingle(exact_input(fee, token_in, token_out, amount, who))
            .gas_price(100_000_000_000u128)
            .gas(3_000_000)
            .send()
            .await
            .unwrap();
    }
}
