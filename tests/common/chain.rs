//! A real local EVM chain for the live-trading tests: anvil on loopback with chain id 56 and a
//! zero base fee, the Uniswap V2 contracts (PancakeSwap V2's interface) deployed from their npm
//! artifacts, two ERC-20 tokens and a pair with liquidity.
//!
//! `scripts/test.sh` installs anvil and the artifacts and sets ANVIL_BIN / UNISWAP_ARTIFACTS.
//! In CI their absence is a failure; elsewhere a test that needs them says so and does not run.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::zombie_processes
)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolValue;
use bsc_bot::chain::contracts::{IUniswapV2Router02, IERC20};
use rust_decimal::MathematicalOps;

/// anvil's first dev account (a public, well-known test key).
pub const DEPLOYER_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// anvil's second dev account: moves the pool price in tests.
pub const TRADER_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

#[allow(clippy::too_many_arguments)]
mod router {
    alloy::sol! {
        #[sol(rpc)]
        interface ITestRouter {
            function addLiquidity(
                address tokenA, address tokenB, uint amountADesired, uint amountBDesired,
                uint amountAMin, uint amountBMin, address to, uint deadline
            ) external returns (uint amountA, uint amountB, uint liquidity);
        }
    }
}
use router::ITestRouter;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Where anvil and the artifacts are, if installed.
pub fn tools() -> Option<(PathBuf, PathBuf)> {
    let home = std::env::var("HOME").unwrap_or_default();
    let cache = PathBuf::from(home).join(".cache/bsc-bot/testchain/node_modules");
    let anvil = std::env::var("ANVIL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| cache.join("@foundry-rs/anvil-linux-amd64/bin/anvil"));
    let artifacts = std::env::var("UNISWAP_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| cache.join("@uniswap"));
    let pancake_v3 = artifacts.parent().map(|m| {
        m.join("@pancakeswap/v3-core/artifacts/contracts/PancakeV3Pool.sol/PancakeV3Pool.json")
    });
    if anvil.exists()
        && artifacts
            .join("v2-core/build/UniswapV2Factory.json")
            .exists()
        && pancake_v3.is_some_and(|p| p.exists())
    {
        return Some((anvil, artifacts));
    }
    assert!(
        !in_ci(),
        "CI=true but anvil / the Uniswap V2 or PancakeSwap V3 artifacts are missing (run scripts/test.sh): {} {}",
        anvil.display(),
        artifacts.display()
    );
    eprintln!(
        "NOTE: anvil or the Uniswap V2 / PancakeSwap V3 artifacts are missing; run scripts/test.sh to install them"
    );
    None
}

pub struct TestChain {
    child: Child,
    pub url: String,
    artifacts: PathBuf,
}

impl Drop for TestChain {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The deployed contracts.
#[derive(Debug, Clone, Copy)]
pub struct Uniswap {
    pub weth: Address,
    pub factory: Address,
    pub router: Address,
    /// The traded asset (18 decimals) and the quote token (18 decimals).
    pub base: Address,
    pub quote: Address,
    pub pair: Address,
}

impl TestChain {
    /// anvil on a free loopback port (`None` outside CI when it is not installed), mining each
    /// transaction as it arrives.
    pub async fn start() -> Option<TestChain> {
        Self::start_with(None).await
    }

    /// anvil mining a block every `block_secs` (several transactions a block; a swap stays in
    /// flight until the next one).
    pub async fn start_with_block_time(block_secs: u64) -> Option<TestChain> {
        Self::start_with(Some(block_secs)).await
    }

    async fn start_with(block_secs: Option<u64>) -> Option<TestChain> {
        let (anvil, artifacts) = tools()?;
        // anvil picks its own free port and says which (`Listening on 127.0.0.1:PORT`): a port
        // chosen here and released first could be taken by a test starting beside this one, and
        // two tests would share one chain.
        let mut child = Command::new(anvil)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(["--chain-id", "56", "--block-base-fee-per-gas", "0"])
            .args(
                block_secs
                    .map(|b| vec!["--block-time".to_string(), b.to_string()])
                    .unwrap_or_default(),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut port_tx = Some(port_tx);
            // Read (and drop) everything anvil prints, so its pipe never fills.
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.trim().strip_prefix("Listening on ") {
                    if let Some(tx) = port_tx.take() {
                        let _ = tx.send(rest.rsplit(':').next().unwrap_or("").to_string());
                    }
                }
            }
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("anvil did not say where it listens");
        let chain = TestChain {
            child,
            url: format!("http://127.0.0.1:{port}"),
            artifacts,
        };
        let p = chain.reader();
        let deadline = Instant::now() + Duration::from_secs(20);
        while p.get_chain_id().await.is_err() {
            assert!(Instant::now() < deadline, "anvil did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(chain)
    }

    /// Where the `@uniswap` npm packages are (the `@pancakeswap` ones are beside them).
    pub fn artifacts_dir(&self) -> &std::path::Path {
        &self.artifacts
    }

    pub fn reader(&self) -> DynProvider {
        ProviderBuilder::new()
            .connect_http(self.url.parse().unwrap())
            .erased()
    }

    /// A provider that signs with `key`.
    pub fn signer(&self, key: &str) -> DynProvider {
        let signer: PrivateKeySigner = key.parse().unwrap();
        ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer))
            .connect_http(self.url.parse().unwrap())
            .erased()
    }

    fn bytecode(&self, package: &str, name: &str) -> Vec<u8> {
        let path = self
            .artifacts
            .join(package)
            .join("build")
            .join(format!("{name}.json"));
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let hex = doc["bytecode"]
            .as_str()
            .or_else(|| doc["evm"]["bytecode"]["object"].as_str())
            .unwrap();
        alloy::hex::decode(hex.trim_start_matches("0x")).unwrap()
    }

    pub async fn deploy(&self, p: &DynProvider, mut code: Vec<u8>, args: Vec<u8>) -> Address {
        code.extend(args);
        let tx = TransactionRequest::default().with_deploy_code(Bytes::from(code));
        let receipt = p
            .send_transaction(tx)
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(receipt.status(), "deployment reverted");
        receipt.contract_address.unwrap()
    }

    /// WETH9, the factory, Router02, two 18-decimal tokens (all supply to the deployer) and a pair
    /// holding `base_liquidity` base against `quote_liquidity` quote (whole tokens).
    pub async fn deploy_uniswap(&self, base_liquidity: u64, quote_liquidity: u64) -> Uniswap {
        self.deploy_uniswap_with_decimals(18, 18, base_liquidity, quote_liquidity)
            .await
    }

    /// The v2-core test ERC20 with its `decimals` constant (18) patched to `decimals`: the only
    /// `JUMPDEST PUSH1 0x12 DUP2 JUMP` in its code is that getter's body.
    fn token_code(&self, decimals: u8) -> Vec<u8> {
        let mut code = self.bytecode("v2-core", "ERC20");
        let getter = [0x5b, 0x60, 0x12, 0x81, 0x56];
        let at: Vec<usize> = code
            .windows(getter.len())
            .enumerate()
            .filter(|(_, w)| *w == getter)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(at.len(), 1, "the decimals getter, once");
        code[at[0] + 2] = decimals;
        code
    }

    /// [`TestChain::deploy_uniswap`] with tokens of the given decimals.
    pub async fn deploy_uniswap_with_decimals(
        &self,
        base_decimals: u8,
        quote_decimals: u8,
        base_liquidity: u64,
        quote_liquidity: u64,
    ) -> Uniswap {
        let p = self.signer(DEPLOYER_KEY);
        let me: Address = DEPLOYER_KEY.parse::<PrivateKeySigner>().unwrap().address();
        let weth = self
            .deploy(&p, self.bytecode("v2-periphery", "WETH9"), vec![])
            .await;
        let factory = self
            .deploy(
                &p,
                self.bytecode("v2-core", "UniswapV2Factory"),
                me.abi_encode(),
            )
            .await;
        let router = self
            .deploy(
                &p,
                self.bytecode("v2-periphery", "UniswapV2Router02"),
                (factory, weth).abi_encode_params(),
            )
            .await;
        let supply = U256::from(10u8).pow(U256::from(30u8));
        let base = self
            .deploy(&p, self.token_code(base_decimals), supply.abi_encode())
            .await;
        let quote = self
            .deploy(&p, self.token_code(quote_decimals), supply.abi_encode())
            .await;
        let whole = |d: u8| U256::from(10u8).pow(U256::from(d));
        for t in [base, quote] {
            let r = IERC20::new(t, &p)
                .approve(router, U256::MAX)
                .send()
                .await
                .unwrap()
                .get_receipt()
                .await
                .unwrap();
            assert!(r.status());
        }
        let r = ITestRouter::new(router, &p)
            .addLiquidity(
                base,
                quote,
                U256::from(base_liquidity) * whole(base_decimals),
                U256::from(quote_liquidity) * whole(quote_decimals),
                U256::ZERO,
                U256::ZERO,
                me,
                U256::from(u64::MAX),
            )
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(r.status(), "addLiquidity reverted");
        let pair = bsc_bot::chain::contracts::IUniswapV2Factory::new(factory, &p)
            .getPair(base, quote)
            .call()
            .await
            .unwrap();
        Uniswap {
            weth,
            factory,
            router,
            base,
            quote,
            pair,
        }
    }

    /// Send `amount` whole tokens of `token` from the deployer to `to`.
    pub async fn give_tokens(&self, token: Address, to: Address, amount: u64) {
        let p = self.signer(DEPLOYER_KEY);
        let decimals = IERC20::new(token, &p).decimals().call().await.unwrap();
        let whole = U256::from(10u8).pow(U256::from(decimals));
        let r = IERC20::new(token, &p)
            .transfer(to, U256::from(amount) * whole)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(r.status());
    }

    /// Set `who`'s BNB balance (anvil cheat code), in wei.
    pub async fn set_bnb(&self, who: Address, wei: U256) {
        let p = self.reader();
        let _: serde_json::Value = p
            .raw_request("anvil_setBalance".into(), (who, wei))
            .await
            .unwrap();
    }
}

impl TestChain {
    /// A buy of `quote_amount` whole quote tokens by `key`, at 100 gwei: it goes first in the
    /// next block. Sent without waiting (automine may be off).
    pub async fn front_run_buy(&self, u: &Uniswap, key: &str, quote_amount: u64) {
        let p = self.signer(key);
        let who = key.parse::<PrivateKeySigner>().unwrap().address();
        let whole = U256::from(10u8).pow(U256::from(18u8));
        let gas_price = 100_000_000_000u128;
        let _approve = IERC20::new(u.quote, &p)
            .approve(u.router, U256::MAX)
            .gas_price(gas_price)
            .gas(100_000)
            .send()
            .await
            .unwrap();
        let _swap = IUniswapV2Router02::new(u.router, &p)
            .swapExactTokensForTokens(
                U256::from(quote_amount) * whole,
                U256::ZERO,
                vec![u.quote, u.base],
                who,
                U256::from(u64::MAX),
            )
            .gas_price(gas_price)
            .gas(300_000)
            .send()
            .await
            .unwrap();
    }
}

impl TestChain {
    /// The trader (second dev account) sells `amount` whole base tokens into the pool.
    pub async fn sell_base(&self, u: &Uniswap, amount: u64) {
        let p = self.signer(TRADER_KEY);
        let who = TRADER_KEY.parse::<PrivateKeySigner>().unwrap().address();
        let whole = U256::from(10u8).pow(U256::from(18u8));
        let r = IERC20::new(u.base, &p)
            .approve(u.router, U256::MAX)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(r.status());
        let r = IUniswapV2Router02::new(u.router, &p)
            .swapExactTokensForTokens(
                U256::from(amount) * whole,
                U256::ZERO,
                vec![u.base, u.quote],
                who,
                U256::from(u64::MAX),
            )
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(r.status());
    }
}

impl TestChain {
    /// The trader swaps until the pool price is within 0.3 % of `target`.
    pub async fn walk_to(
        &self,
        client: &bsc_bot::chain::ChainClient,
        pool: &bsc_bot::chain::Pool,
        router: Address,
        target: rust_decimal::Decimal,
    ) {
        let p = self.signer(TRADER_KEY);
        let me = TRADER_KEY.parse::<PrivateKeySigner>().unwrap().address();
        for _ in 0..20 {
            let (b, q) = client.reserves(pool).await.unwrap();
            let now = q / b;
            if ((now - target) / target).abs() < rust_decimal::Decimal::new(3, 3) {
                return;
            }
            // Constant product: base reserve at the target is sqrt(k / target); trade half the gap.
            let k = b * q;
            let b_target = (k / target).sqrt().unwrap();
            let (path, amount) = if b_target > b {
                (
                    vec![pool.base.address, pool.quote.address],
                    (b_target - b) / rust_decimal::Decimal::TWO,
                )
            } else {
                (
                    vec![pool.quote.address, pool.base.address],
                    (b - b_target) * now / rust_decimal::Decimal::TWO,
                )
            };
            let sent = if b_target > b {
                pool.base.decimals
            } else {
                pool.quote.decimals
            };
            let units =
                bsc_bot::chain::units::to_units(amount.max(rust_decimal::Decimal::new(1, 4)), sent)
                    .unwrap();
            let r = IUniswapV2Router02::new(router, &p)
                .swapExactTokensForTokens(units, U256::ZERO, path, me, U256::from(u64::MAX))
                // The estimate runs short when the bot's swap lands in the same block first.
                .gas(400_000)
                .send()
                .await
                .unwrap()
                .get_receipt()
                .await
                .unwrap();
            assert!(r.status());
        }
        panic!("price did not reach {target}");
    }
}

/// The bot's side of a test market on this chain: its configs, a client, the pool.
pub struct Market {
    pub chain_cfg: bsc_bot::config::ChainConfig,
    pub dex: bsc_bot::config::DexConfig,
    pub client: bsc_bot::chain::ChainClient,
    pub pool: bsc_bot::chain::Pool,
}

impl Market {
    /// The DEX venue trading this market's pool (as symbol 0) from `bot`, its executor running:
    /// what the engine submits becomes swaps, their answers come back on the receiver.
    pub fn dex_venue(
        &self,
        bot: PrivateKeySigner,
        store: bsc_bot::store::Store,
    ) -> (
        bsc_bot::venue::dex::DexVenue,
        tokio::sync::mpsc::Receiver<bsc_bot::engine::VenueReport>,
    ) {
        let swapper = std::sync::Arc::new(
            bsc_bot::chain::Swapper::new(
                self.client.clone(),
                bot,
                store,
                self.chain_cfg.clone(),
                self.dex.clone(),
            )
            .unwrap(),
        );
        let (reports_tx, reports) = tokio::sync::mpsc::channel(1024);
        let (venue, executor) = bsc_bot::venue::dex::dex_venue(
            swapper,
            std::collections::HashMap::from([(0, self.pool.clone())]),
            30,
            reports_tx,
            Box::new(|o| (format!("engine-order-{}", o.order_id), 1)),
        );
        tokio::spawn(executor.run());
        (venue, reports)
    }
}

impl TestChain {
    /// Configs pointing at this chain and `u` (pool fee 30 bps, the default slippage bound), a
    /// connected client and the base/quote pool.
    pub async fn market(&self, u: &Uniswap, receipt_timeout_secs: u64) -> Market {
        let chain_cfg = bsc_bot::config::ChainConfig {
            rpc_urls: vec![self.url.clone()],
            receipt_timeout_secs,
            ..Default::default()
        };
        let dex = bsc_bot::config::DexConfig {
            router: u.router.to_string(),
            factory: u.factory.to_string(),
            fee_bps: 30,
            ..Default::default()
        };
        let client = bsc_bot::chain::ChainClient::connect(&chain_cfg)
            .await
            .unwrap();
        let base = client.token(u.base).await.unwrap();
        let quote = client.token(u.quote).await.unwrap();
        let pool = client.pool(u.factory, base, quote).await.unwrap();
        Market {
            chain_cfg,
            dex,
            client,
            pool,
        }
    }
}

impl TestChain {
    /// The trader (second dev account) holds `base` and `quote` whole tokens and lets the router
    /// spend them: ready to walk the pool price.
    pub async fn fund_trader(&self, u: &Uniswap, base: u64, quote: u64) {
        let trader = TRADER_KEY.parse::<PrivateKeySigner>().unwrap().address();
        self.give_tokens(u.base, trader, base).await;
        self.give_tokens(u.quote, trader, quote).await;
        let p = self.signer(TRADER_KEY);
        for t in [u.base, u.quote] {
            let r = IERC20::new(t, &p)
                .approve(u.router, U256::MAX)
                .send()
                .await
                .unwrap()
                .get_receipt()
                .await
                .unwrap();
            assert!(r.status());
        }
    }

    /// A fresh bot wallet with 1 BNB for gas and `quote` whole quote tokens.
    pub async fn bot_wallet(&self, u: &Uniswap, quote: u64) -> PrivateKeySigner {
        let signer = PrivateKeySigner::random();
        self.set_bnb(signer.address(), U256::from(10u8).pow(U256::from(18u8)))
            .await;
        self.give_tokens(u.quote, signer.address(), quote).await;
        signer
    }
}

/// What [`assert_records_equal_chain`] counted.
pub struct Books {
    pub mined: usize,
    pub reverted: usize,
    pub trades: usize,
}

/// After anything (crashes, RPC faults): everything wallet `me` did on chain is on record once
/// (nonces 0..n), every mined swap of strategy `id` is exactly one trade with its hash and gas and
/// every trade a mined swap, no order got two swaps, every cell alternates buy, sell (no cell
/// bought twice), no order is left in flight, the wallet moved exactly as the trades say (BNB by
/// the gas on record) from `before` (BNB, base, quote), and the strategy's ledger equals its trades.
pub async fn assert_records_equal_chain(
    store: &bsc_bot::store::Store,
    client: &bsc_bot::chain::ChainClient,
    pool: &bsc_bot::chain::Pool,
    me: Address,
    id: i64,
    before: (
        rust_decimal::Decimal,
        rust_decimal::Decimal,
        rust_decimal::Decimal,
    ),
) -> Books {
    assert_wallet_equals_chain(store, client, pool, me, &[id], before).await
}

/// [`assert_records_equal_chain`] for a wallet that several strategies (`ids`) trade: the wallet
/// moved as all their trades say, and each strategy's ledger equals its own trades.
pub async fn assert_wallet_equals_chain(
    store: &bsc_bot::store::Store,
    client: &bsc_bot::chain::ChainClient,
    pool: &bsc_bot::chain::Pool,
    me: Address,
    ids: &[i64],
    before: (
        rust_decimal::Decimal,
        rust_decimal::Decimal,
        rust_decimal::Decimal,
    ),
) -> Books {
    use rust_decimal::Decimal;
    use std::collections::{BTreeMap, BTreeSet};
    use std::str::FromStr;
    let d = |s: &str| Decimal::from_str(s).unwrap();
    // Everything the address did on chain is on record, once, with contiguous nonces.
    let txs = store.chain_txs_of(56, me).await.unwrap();
    let on_chain: Vec<_> = txs
        .iter()
        .filter(|t| t.status == "mined" || t.status == "reverted")
        .collect();
    assert!(
        txs.iter()
            .all(|t| matches!(t.status.as_str(), "mined" | "reverted" | "rejected")),
        "every transaction settled: {:?}",
        txs.iter().map(|t| &t.status).collect::<Vec<_>>()
    );
    let nonce = client.provider().get_transaction_count(me).await.unwrap();
    let nonces: Vec<i64> = on_chain.iter().map(|t| t.nonce).collect();
    let mut sorted = nonces.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (0..nonce as i64).collect::<Vec<_>>(),
        "nonces 0..{nonce}, each once"
    );
    for t in &on_chain {
        let r = client
            .provider()
            .get_transaction_receipt(t.tx_hash.parse().unwrap())
            .await
            .unwrap()
            .expect("a transaction on record as mined has its receipt");
        assert_eq!(r.from, me);
        assert_eq!(r.status(), t.status == "mined");
    }
    // No order got two swaps.
    let swaps: Vec<_> = on_chain.iter().filter(|t| t.purpose == "swap").collect();
    let mut per_reference: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &swaps {
        *per_reference
            .entry(s.reference.as_deref().unwrap())
            .or_default() += 1;
    }
    assert!(
        per_reference.values().all(|n| *n == 1),
        "one swap per order: {per_reference:?}"
    );
    // Mined swaps = trades, one each.
    let mined: BTreeSet<&str> = swaps
        .iter()
        .filter(|t| t.status == "mined")
        .map(|t| t.tx_hash.as_str())
        .collect();
    let mut trades = Vec::new();
    let mut orders = Vec::new();
    for id in ids {
        trades.extend(store.trading_history(Some(*id), 10_000).await.unwrap());
        orders.extend(store.list_orders(Some(*id), None).await.unwrap());
    }
    let traded: Vec<&str> = trades
        .iter()
        .map(|t| t.tx_hash.as_deref().expect("a live trade has its tx hash"))
        .collect();
    assert_eq!(traded.len(), mined.len(), "one trade per mined swap");
    assert_eq!(traded.iter().copied().collect::<BTreeSet<_>>(), mined);
    assert!(trades.iter().all(|t| t.gas_fee.is_some()));
    // Every cell alternates buy, sell, buy… in chain order.
    // Every transaction stays joined to the order it serves, across any number of restarts.
    for t in txs.iter().filter(|t| t.purpose == "swap") {
        let reference = t.reference.as_deref().expect("a swap names its order");
        assert!(
            orders.iter().any(|o| o.client_order_id == reference),
            "swap {} names {reference}, which no order row has",
            t.tx_hash
        );
    }
    // Every order keeps its real creation time.
    let undated: Vec<_> = orders
        .iter()
        .filter(|o| o.created_at <= 0 || o.updated_at <= 0)
        .map(|o| &o.client_order_id)
        .collect();
    assert!(undated.is_empty(), "orders stamped 0: {undated:?}");
    let mut by_nonce: Vec<_> = trades.iter().collect();
    let nonce_of = |hash: &str| swaps.iter().find(|s| s.tx_hash == hash).unwrap().nonce;
    by_nonce.sort_by_key(|t| nonce_of(t.tx_hash.as_deref().unwrap()));
    let mut cells: BTreeMap<(i64, i64), Vec<&str>> = BTreeMap::new();
    for t in &by_nonce {
        let order = orders
            .iter()
            .find(|o| Some(o.id) == t.order_id)
            .expect("a trade's order on record");
        let cell = order.cell.expect("a trade's cell on record");
        cells
            .entry((order.strategy_id, cell))
            .or_default()
            .push(t.side.as_str());
    }
    for (cell, sides) in &cells {
        for (i, side) in sides.iter().enumerate() {
            let want = if i % 2 == 0 { "buy" } else { "sell" };
            assert_eq!(*side, want, "strategy and cell {cell:?}: {sides:?}");
        }
    }
    assert!(
        orders
            .iter()
            .all(|o| !matches!(o.status.as_str(), "submitted" | "accepted")),
        "no order left in flight"
    );
    // Balances to the wei; ledger = trades.
    let sum = |side: &str, f: fn(&bsc_bot::store::paper::TradeRecord) -> &str| -> Decimal {
        trades
            .iter()
            .filter(|t| t.side == side)
            .map(|t| d(f(t)))
            .sum()
    };
    let after = (
        client.native_balance(me).await.unwrap(),
        client.token_balance(&pool.base, me).await.unwrap(),
        client.token_balance(&pool.quote, me).await.unwrap(),
    );
    let base_moved = sum("buy", |t| &t.base_amount) - sum("sell", |t| &t.base_amount);
    let quote_moved = sum("sell", |t| &t.quote_amount) - sum("buy", |t| &t.quote_amount);
    assert_eq!(after.1 - before.1, base_moved, "base = trades");
    assert_eq!(after.2 - before.2, quote_moved, "quote = trades");
    let gas: Decimal = on_chain
        .iter()
        .map(|t| d(t.fee_bnb.as_deref().unwrap()))
        .sum();
    assert_eq!(before.0 - after.0, gas, "BNB spent = gas on record");
    for id in ids {
        assert_ledger_equals_trades(store, *id).await;
    }
    Books {
        mined: mined.len(),
        reverted: swaps.len() - mined.len(),
        trades: trades.len(),
    }
}

/// Strategy `id`'s ledger on record equals its trades on record (base, quote, fills); returns
/// how many trades it has.
pub async fn assert_ledger_equals_trades(store: &bsc_bot::store::Store, id: i64) -> usize {
    use rust_decimal::Decimal;
    use std::str::FromStr;
    let d = |s: &str| Decimal::from_str(s).unwrap();
    let own = store.trading_history(Some(id), 100_000).await.unwrap();
    let sum = |side: &str, f: fn(&bsc_bot::store::paper::TradeRecord) -> &str| -> Decimal {
        own.iter().filter(|t| t.side == side).map(|t| d(f(t))).sum()
    };
    let base = sum("buy", |t| &t.base_amount) - sum("sell", |t| &t.base_amount);
    let quote = sum("sell", |t| &t.quote_amount) - sum("buy", |t| &t.quote_amount);
    let record = store
        .get_strategy(&bsc_bot::store::StrategyRef::Id(id))
        .await
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(record.state.as_deref().unwrap()).unwrap();
    let ledger = &doc["ledger"];
    assert_eq!(
        d(ledger["base"].as_str().unwrap()),
        base,
        "strategy {id}: ledger base"
    );
    assert_eq!(
        d(ledger["quote"].as_str().unwrap()),
        d(ledger["initial_quote"].as_str().unwrap()) + quote,
        "strategy {id}: ledger quote"
    );
    assert_eq!(
        ledger["fills"].as_u64().unwrap(),
        own.len() as u64,
        "strategy {id}: fills"
    );
    own.len()
}
