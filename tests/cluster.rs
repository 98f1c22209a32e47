//! Several daemons on one real PostgreSQL, trading live grids on a real chain (anvil, the npm
//! Uniswap V2 contracts, 1-second blocks) and paper grids on a local WebSocket feed:
//! - `kill -9` of a daemon at 20 random moments while the pool is walked: its units move to the
//!   others within lease + 5 s and trade on; afterwards every wallet's chain equals its records
//!   (nonces contiguous, one swap per order, balances to the wei) and every paper ledger equals
//!   its trades. The failover times are printed (p50 / p99).
//! - `SIGSTOP` of a daemon past its lease: another takes its units; woken, it sends and writes
//!   nothing for them and says so in its log.
//! - `cluster drain` of each daemon in turn (a rolling restart).
//! - PostgreSQL stopped for 15 s: every daemon stops trading, then resumes; nothing lost.
//!
//! Lease length: `CLUSTER_LEASE_SECS` (default 10, the daemon's default; renewal every second,
//! or a quarter of a shorter lease).

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/live.rs"]
mod live;
#[path = "common/pg.rs"]
mod pg;
#[path = "common/chain.rs"]
mod testchain;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use bsc_bot::store::Store;
use common::daemon::RunningDaemon;
use common::exchange::{trade_frame, Cmd, FakeBinance};
use common::TestDb;
use live::PASSWORD;
use rust_decimal::Decimal;
use testchain::{TestChain, Uniswap};

/// One test of this file at a time: each runs three daemons on two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn lease_secs() -> u64 {
    std::env::var("CLUSTER_LEASE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
}

/// The default renewal (1 s), or a quarter of a shorter lease.
fn renew_ms() -> u64 {
    (lease_secs() * 1000 / 4).clamp(100, 1_000)
}

/// xorshift64*: reproducible moments and choices from a seed.
struct Moments(u64);

impl Moments {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

struct Wallet {
    name: String,
    address: Address,
    grids: Vec<i64>,
    before: (Decimal, Decimal, Decimal),
}

struct Setup {
    db: TestDb,
    ex: FakeBinance,
    config: String,
    client: bsc_bot::chain::ChainClient,
    pool: bsc_bot::chain::Pool,
    wallets: Vec<Wallet>,
    paper: Vec<i64>,
    store: Store,
}

/// A member of the test's cluster: the daemon and its JSON log.
struct Member {
    daemon: RunningDaemon,
    log: PathBuf,
}

impl Member {
    fn pid(&self) -> i64 {
        i64::from(self.daemon.child.id())
    }
}

async fn node_of(store: &Store, pid: i64) -> Option<i64> {
    store
        .daemons()
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.pid == pid && d.stopped_at.is_none())
        .map(|d| d.id)
}

/// A config on the chain with `wallets` keystore wallets funded, and the cluster section.
async fn setup(chain: &TestChain, u: &Uniswap, wallets: usize, cluster_extra: &str) -> Setup {
    setup_on(
        TestDb::new("postgres").await,
        chain,
        u,
        wallets,
        cluster_extra,
    )
    .await
}

async fn setup_on(
    db: TestDb,
    chain: &TestChain,
    u: &Uniswap,
    wallets: usize,
    cluster_extra: &str,
) -> Setup {
    let ex = FakeBinance::start().await;
    let c = live::canary_with(
        chain,
        u,
        &db,
        &ex.url,
        &[&chain.url],
        "pool_poll_ms = 50",
        false,
    )
    .await;
    let mut text = std::fs::read_to_string(&c.config).unwrap();
    text.push_str(&format!(
        "\n[cluster]\nlease_secs = {}\nrenew_ms = {}\n{cluster_extra}\n",
        lease_secs(),
        renew_ms()
    ));
    std::fs::write(&c.config, text).unwrap();
    let mut out = Vec::new();
    for i in 0..wallets {
        let name = format!("w{i}");
        let run = db
            .cmd(&["--config", &c.config, "wallet", "generate", "--name", &name])
            .env("BSC_BOT_KEYSTORE_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        assert!(run.status.success(), "{run:?}");
        let address: Address = String::from_utf8(run.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        chain
            .set_bnb(address, U256::from(10u8).pow(U256::from(18u8)))
            .await;
        chain.give_tokens(u.quote, address, 10_000).await;
        let before = (
            c.client.native_balance(address).await.unwrap(),
            c.client.token_balance(&c.pool.base, address).await.unwrap(),
            c.client
                .token_balance(&c.pool.quote, address)
                .await
                .unwrap(),
        );
        out.push(Wallet {
            name,
            address,
            grids: Vec::new(),
            before,
        });
    }
    let store = db.store().await;
    Setup {
        db,
        ex,
        config: c.config,
        client: c.client,
        pool: c.pool,
        wallets: out,
        paper: Vec::new(),
        store,
    }
}

impl Setup {
    async fn start(&self, tag: &str) -> Member {
        let log = self.db.dir.path().join(format!("daemon-{tag}.log"));
        let daemon = RunningDaemon::start_logged_with_env(
            &self.db,
            &self.config,
            &[],
            &[("BSC_BOT_KEYSTORE_PASSWORD", PASSWORD)],
            &log,
        )
        .await;
        Member { daemon, log }
    }

    /// Two live grids per wallet (95k..105k) and `paper` paper grids (100k..110k).
    fn create_strategies(&mut self, paper: usize) {
        for w in &mut self.wallets {
            for g in ["a", "b"] {
                let params = r#"{"lower_price":"95000","upper_price":"105000","grid_count":5,"base_order_size":"400","fee_bps":30}"#;
                let run = live::create_live(
                    &self.db,
                    &self.config,
                    &format!("{}-{g}", w.name),
                    &w.name,
                    params,
                );
                w.grids
                    .push(run.ok().json()["strategy"]["id"].as_i64().unwrap());
            }
        }
        for i in 0..paper {
            self.paper
                .push(common::create_grid(&self.db, &format!("paper-{i}")));
        }
    }

    fn all_strategies(&self) -> Vec<i64> {
        self.wallets
            .iter()
            .flat_map(|w| w.grids.iter().copied())
            .chain(self.paper.iter().copied())
            .collect()
    }

    /// Paper prices: a triangle between 100k and 110k, a trade every 100 ms.
    fn feed_prices(&self) -> tokio::task::JoinHandle<()> {
        let tx = self.ex.sender();
        tokio::spawn(async move {
            let mut id = 1i64;
            let mut price = 100_500i64;
            let mut step = 300i64;
            loop {
                let now = bsc_bot::clock::wall_clock_ms();
                let _ = tx.send(Cmd::Text(trade_frame(id, &price.to_string(), now)));
                id += 1;
                price += step;
                if !(100_300..=109_700).contains(&price) {
                    step = -step;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    }

    /// Which member runs which strategy (the engine's own list, through each API).
    async fn running(&self, members: &[Option<Member>]) -> BTreeMap<i64, usize> {
        self.running_except(members, None).await
    }

    /// [`Self::running`], leaving member `skip` out (one paused, or draining).
    async fn running_except(
        &self,
        members: &[Option<Member>],
        skip: Option<usize>,
    ) -> BTreeMap<i64, usize> {
        let mut out = BTreeMap::new();
        for (i, m) in members.iter().enumerate() {
            let Some(m) = m else { continue };
            if Some(i) == skip {
                continue;
            }
            let (code, v) = m.daemon.get("/api/v1/status").await;
            if code != 200 {
                continue;
            }
            for s in v["engine_strategies"].as_array().into_iter().flatten() {
                if s["status"] == "active" {
                    out.insert(s["id"].as_i64().unwrap(), i);
                }
            }
        }
        out
    }

    /// Wait until every strategy runs on exactly one member; returns how long it took.
    async fn until_all_run(&self, members: &[Option<Member>], within: Duration) -> Duration {
        self.until_all_run_except(members, None, within).await
    }

    async fn until_all_run_except(
        &self,
        members: &[Option<Member>],
        skip: Option<usize>,
        within: Duration,
    ) -> Duration {
        let start = Instant::now();
        let want: BTreeSet<i64> = self.all_strategies().into_iter().collect();
        loop {
            let running = self.running_except(members, skip).await;
            let have: BTreeSet<i64> = running.keys().copied().collect();
            if have == want {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < within,
                "not every strategy runs after {within:?}: missing {:?}; leases {:?}",
                want.difference(&have).collect::<Vec<_>>(),
                self.store.leases().await.unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn in_flight(&self) -> usize {
        let mut n = 0;
        for w in &self.wallets {
            n += self
                .store
                .unresolved_txs(56, w.address)
                .await
                .unwrap()
                .len();
            for id in &w.grids {
                n += self.store.resting_and_in_flight(*id).await.unwrap().1.len();
            }
        }
        n
    }

    async fn until_quiet(&self, within: Duration) {
        let deadline = Instant::now() + within;
        let mut quiet_since = Instant::now();
        loop {
            if Instant::now() >= deadline {
                let mut what = Vec::new();
                for w in &self.wallets {
                    for t in self.store.unresolved_txs(56, w.address).await.unwrap() {
                        what.push(format!(
                            "tx {} nonce {} {} {:?}",
                            t.tx_hash, t.nonce, t.purpose, t.reference
                        ));
                    }
                    for id in &w.grids {
                        for o in self.store.resting_and_in_flight(*id).await.unwrap().1 {
                            what.push(format!("order {o:?}"));
                        }
                    }
                }
                panic!(
                    "swaps still in flight: {what:#?}; leases {:?}",
                    self.store.leases().await.unwrap()
                );
            }
            if self.in_flight().await > 0 {
                quiet_since = Instant::now();
            } else if quiet_since.elapsed() > Duration::from_secs(3) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every wallet's chain equals its records; every paper ledger equals its trades.
    async fn assert_books(&self) -> usize {
        let mut trades = 0;
        for w in &self.wallets {
            let books = testchain::assert_wallet_equals_chain(
                &self.store,
                &self.client,
                &self.pool,
                w.address,
                &w.grids,
                w.before,
            )
            .await;
            assert!(books.mined > 0, "wallet {} never swapped", w.name);
            trades += books.trades;
        }
        for id in &self.paper {
            trades += testchain::assert_ledger_equals_trades(&self.store, *id).await;
        }
        trades
    }
}

/// A chain with 1-second blocks, the Uniswap V2 pair and a funded trader to walk it; `None`
/// where the test cannot run (outside CI: no anvil, or no PostgreSQL when `needs_database`).
async fn market(needs_database: bool) -> Option<(TestChain, Uniswap)> {
    let chain = TestChain::start_with_block_time(1).await?;
    if needs_database && std::env::var("DATABASE_URL").is_err() {
        assert!(std::env::var("CI").is_err(), "CI needs PostgreSQL");
        return None;
    }
    let u = chain.deploy_uniswap(10, 1_000_000).await;
    chain.fund_trader(&u, 5, 500_000).await;
    Some((chain, u))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let ix = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[ix.min(sorted.len() - 1)]
}

fn kill(pid: i64, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_moves_units_and_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let Some((chain, u)) = market(true).await else {
        return;
    };
    let kills: usize = std::env::var("CLUSTER_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_207);
    eprintln!("CRASH_SEED={seed}");
    let mut rng = Moments(seed.max(1));
    // Capacity 8 of 13 units: they spread over the three, and two can hold them all.
    let alerts = common::exchange::Receiver::start(0, Duration::ZERO).await;
    let mut s = setup(
        &chain,
        &u,
        3,
        &format!(
            "capacity = 8\n\n[alerts]\nwebhook_url = \"{}\"\n",
            alerts.url
        ),
    )
    .await;
    let mut members: Vec<Option<Member>> = Vec::new();
    for i in 0..3 {
        members.push(Some(s.start(&format!("{i}-0")).await));
    }
    // Created while the three run: each goes to the member with the most room.
    s.create_strategies(10);
    let prices = s.feed_prices();
    s.until_all_run(&members, Duration::from_secs(30)).await;
    let spread: BTreeMap<usize, usize> =
        s.running(&members)
            .await
            .values()
            .fold(BTreeMap::new(), |mut m, i| {
                *m.entry(*i).or_default() += 1;
                m
            });
    let placed: Vec<(String, i64)> = s
        .store
        .handovers_since(0)
        .await
        .unwrap()
        .into_iter()
        .map(|h| (h.unit, h.to_node))
        .collect();
    eprintln!("strategies per member at start: {spread:?}; units placed: {placed:?}");
    if let Ok(dir) = std::env::var("CLUSTER_KEEP_LOGS") {
        for m in members.iter().flatten() {
            let _ = std::fs::copy(
                &m.log,
                std::path::Path::new(&dir).join(m.log.file_name().unwrap()),
            );
        }
    }
    assert_eq!(spread.len(), 3, "every member got units: {spread:?}");

    let targets = ["95600", "104400", "96500", "103600", "98000", "102200"];
    let mut failovers: Vec<Duration> = Vec::new();
    let mut caught = 0;
    for round in 0..kills {
        // A member trading a wallet, at a random moment of a walk across the grids.
        let leases = s.store.leases().await.unwrap();
        let mut holders = Vec::new();
        for (i, m) in members.iter().enumerate() {
            let node = node_of(&s.store, m.as_ref().unwrap().pid()).await.unwrap();
            if leases
                .iter()
                .any(|l| l.owner == Some(node) && l.unit.starts_with("wallet:"))
            {
                holders.push((i, node));
            }
        }
        let (victim, node) = holders[rng.below(holders.len() as u64) as usize];
        let moved: Vec<String> = leases
            .iter()
            .filter(|l| l.owner == Some(node))
            .map(|l| l.unit.clone())
            .collect();
        let pid = members[victim].as_ref().unwrap().pid();
        let after_ms = 300 + rng.below(2_700);
        let walk = {
            let target = d(targets[round % targets.len()]);
            let (chain, client, pool, router) = (&chain, &s.client, &s.pool, u.router);
            async move { chain.walk_to(client, pool, router, target).await }
        };
        let killer = async {
            tokio::time::sleep(Duration::from_millis(after_ms)).await;
            kill(pid, "-9");
            Instant::now()
        };
        let ((), killed_at) = tokio::join!(walk, killer);
        let flying = s.in_flight().await;
        if flying > 0 {
            caught += 1;
        }
        let mut dead = members[victim].take();
        // Reaped, as its supervisor would: a zombie's pid still answers, so it would look alive
        // until its heartbeat is 5 s old.
        if let Some(m) = dead.as_mut() {
            assert!(m.daemon.wait_exit(Duration::from_secs(5)).is_some());
        }
        if round == 0 {
            // Until its units have a new owner, every survivor's health says so.
            let survivor = members.iter().flatten().next().unwrap();
            let deadline = Instant::now() + Duration::from_secs(lease_secs());
            loop {
                let (_, health) = survivor.daemon.get("/api/health").await;
                let said = health["reasons"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|r| r.as_str().is_some_and(|r| r.contains("have no owner")));
                if health["status"] == "degraded" && said {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "health while units have no owner: {health}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        // Trading again: every strategy runs on a surviving member.
        s.until_all_run(&members, Duration::from_secs(lease_secs() + 30))
            .await;
        let took = killed_at.elapsed();
        failovers.push(took);
        eprintln!(
            "kill {round}: node {node} (member {victim}) after {after_ms} ms, {flying} in flight, \
             {} units moved, trading again after {:.2} s",
            moved.len(),
            took.as_secs_f64()
        );
        drop(dead);
        members[victim] = Some(s.start(&format!("{victim}-{round}")).await);
    }
    // Everything settles with all three running.
    s.until_all_run(&members, Duration::from_secs(30)).await;
    s.until_quiet(Duration::from_secs(60)).await;
    // Metrics: each member shows its units and the failovers it took.
    let mut taken = Decimal::ZERO;
    for m in members.iter().flatten() {
        let (_, text) = m.daemon.text("/metrics").await;
        let node = node_of(&s.store, m.pid()).await.unwrap();
        assert!(
            common::metric(&text, &format!("bsc_bot_cluster_units{{node=\"{node}\"}} ")).is_some(),
            "{text}"
        );
        taken += common::metric(
            &text,
            &format!("bsc_bot_cluster_failovers_total{{node=\"{node}\"}} "),
        )
        .unwrap_or_default();
    }
    // `cluster list` and `bot status` show the three with every unit held.
    let list =
        s.db.run(&["--config", &s.config, "--json", "cluster", "list"])
            .ok()
            .json();
    let running: Vec<&serde_json::Value> = list["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["state"] == "running")
        .collect();
    assert_eq!(running.len(), 3, "{list}");
    assert_eq!(list["unowned"].as_array().unwrap().len(), 0, "{list}");
    let held: usize = running
        .iter()
        .map(|n| n["units"].as_array().unwrap().len())
        .sum();
    assert_eq!(
        held,
        3 + 10 + 1,
        "3 wallets, 10 paper grids, the canary driver: {list}"
    );
    let status =
        s.db.run(&["--config", &s.config, "--json", "bot", "status"])
            .ok()
            .json();
    assert!(
        status["cluster"]["nodes"].as_array().unwrap().len() >= 3,
        "{status}"
    );
    drop(members);
    prices.abort();
    // An alert for every unit taken over.
    let failover_alerts = alerts
        .bodies()
        .iter()
        .filter(|b| b["kind"] == "cluster_failover")
        .count();
    let trades = s.assert_books().await;
    let handovers = s.store.handovers_since(0).await.unwrap();
    let failover_rows = handovers
        .iter()
        .filter(|h| h.kind == "failover" || h.kind == "restart")
        .count();
    assert!(
        failover_rows >= kills,
        "a takeover on record for every kill"
    );
    assert!(
        failover_alerts >= kills,
        "{failover_alerts} failover alerts for {failover_rows} takeovers"
    );
    let mut sorted = failovers.clone();
    sorted.sort();
    let (p50, p99) = (percentile(&sorted, 0.5), percentile(&sorted, 0.99));
    eprintln!(
        "{kills} kills ({caught} with a swap in flight), {trades} trades; lease {} s; \
         trading again after a kill: p50 {:.2} s, p99 {:.2} s, max {:.2} s; {failover_rows} takeovers on record ({taken} in the survivors' metrics)",
        lease_secs(),
        p50.as_secs_f64(),
        p99.as_secs_f64(),
        sorted.last().unwrap().as_secs_f64()
    );
    assert!(
        p99 <= Duration::from_secs(lease_secs() + 5),
        "failover p99 {p99:?} over lease + 5 s"
    );
    assert!(caught > 0, "no kill caught a swap in flight");
}

/// Run ids of the cores a daemon started (from its log): its orders are named after them.
fn run_ids(log: &std::path::Path) -> Vec<i64> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("daemon core starting"))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["fields"]["run_id"].as_i64())
        .collect()
}

/// What a daemon whose runs are `runs` wrote after `since_ms`: orders, trades, chain
/// transactions named after one of its runs.
async fn written_after(s: &Setup, runs: &[i64], since_ms: i64) -> Vec<String> {
    let named = |reference: &str| runs.iter().any(|r| reference.contains(&format!("-r{r}-")));
    // Swaps sent before `since_ms`: their fills may be recorded later by the unit's new owner
    // (its recovery settles what the old one left in flight).
    let mut sent_before: BTreeSet<String> = BTreeSet::new();
    for w in &s.wallets {
        for t in s.store.chain_txs_of(56, w.address).await.unwrap() {
            if t.created_at <= since_ms {
                sent_before.insert(t.tx_hash.clone());
            }
        }
    }
    let mut out = Vec::new();
    for id in s.all_strategies() {
        for o in s.store.list_orders(Some(id), None).await.unwrap() {
            if named(&o.client_order_id) && o.created_at > since_ms {
                out.push(format!(
                    "order {} created {}",
                    o.client_order_id, o.created_at
                ));
            }
        }
        let orders = s.store.list_orders(Some(id), None).await.unwrap();
        for t in s.store.trading_history(Some(id), 100_000).await.unwrap() {
            let order = orders.iter().find(|o| Some(o.id) == t.order_id);
            let recovered = t.tx_hash.as_ref().is_some_and(|h| sent_before.contains(h));
            if order.is_some_and(|o| named(&o.client_order_id))
                && t.executed_at > since_ms
                && !recovered
            {
                out.push(format!(
                    "trade of order {:?} at {}",
                    t.order_id, t.executed_at
                ));
            }
        }
    }
    for w in &s.wallets {
        for t in s.store.chain_txs_of(56, w.address).await.unwrap() {
            if t.reference.as_deref().is_some_and(named) && t.created_at > since_ms {
                out.push(format!(
                    "chain tx {} ({:?}) at {}",
                    t.tx_hash, t.reference, t.created_at
                ));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_paused_past_its_lease_wakes_fenced() {
    let _serial = SERIAL.lock().await;
    let Some((chain, u)) = market(true).await else {
        return;
    };
    let mut s = setup(&chain, &u, 1, "").await;
    let a = s.start("a").await;
    s.create_strategies(2);
    let prices = s.feed_prices();
    let mut members = vec![Some(a), None];
    s.until_all_run(&members, Duration::from_secs(30)).await;
    // B joins with nothing to take: A holds every unit.
    members[1] = Some(s.start("b").await);
    chain
        .walk_to(&s.client, &s.pool, u.router, d("96500"))
        .await;
    let a_pid = members[0].as_ref().unwrap().pid();
    let a_runs = run_ids(&members[0].as_ref().unwrap().log);
    assert!(!a_runs.is_empty());
    kill(a_pid, "-STOP");
    let stopped = Instant::now();
    let stop_ms = bsc_bot::clock::wall_clock_ms();
    // While A sleeps the price crosses the grid: B takes the units once A's leases run out and
    // trades them.
    let took = s
        .until_all_run_except(&members, Some(0), Duration::from_secs(lease_secs() + 30))
        .await;
    eprintln!(
        "B runs every strategy {:.2} s after A stopped",
        took.as_secs_f64()
    );
    // Not before the lease A last renewed (at most one renewal before it stopped) ran out.
    assert!(
        took >= Duration::from_millis(lease_secs() * 1000 - renew_ms()),
        "taken before the lease ran out"
    );
    let _ = stopped;
    chain
        .walk_to(&s.client, &s.pool, u.router, d("103600"))
        .await;
    // B swaps for the wallet it took.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut n = 0;
        for id in &s.wallets[0].grids {
            n += s
                .store
                .trading_history(Some(*id), 10_000)
                .await
                .unwrap()
                .iter()
                .filter(|t| t.tx_hash.is_some() && t.executed_at > stop_ms)
                .count();
        }
        if n > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "B never swapped for the wallet");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Woken: A's view is stale (its ticks, its resting orders); the price moves again.
    let woke_ms = bsc_bot::clock::wall_clock_ms();
    kill(a_pid, "-CONT");
    chain
        .walk_to(&s.client, &s.pool, u.router, d("97000"))
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // A says it lost its units (on a loaded machine it may take longer to wake and renew).
    let said_deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&members[0].as_ref().unwrap().log)
        .unwrap()
        .contains("leases lost to another daemon")
    {
        assert!(Instant::now() < said_deadline, "A says it lost its units");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let by_a = written_after(&s, &a_runs, woke_ms).await;
    assert!(by_a.is_empty(), "A wrote after waking: {by_a:?}");
    // B trades on, alone: every strategy runs on B, none on A.
    let running = s.running(&members).await;
    assert!(running.values().all(|m| *m == 1), "{running:?}");
    s.until_quiet(Duration::from_secs(60)).await;
    drop(members);
    prices.abort();
    // The chain holds nothing A sent unrecorded: every wallet equals its records.
    let trades = s.assert_books().await;
    eprintln!("{trades} trades; A wrote nothing after waking");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_drain_of_each_daemon_in_turn_is_a_rolling_restart() {
    let _serial = SERIAL.lock().await;
    let Some((chain, u)) = market(true).await else {
        return;
    };
    let mut s = setup(&chain, &u, 2, "capacity = 4").await;
    let mut members: Vec<Option<Member>> = Vec::new();
    for i in 0..3 {
        members.push(Some(s.start(&format!("{i}")).await));
    }
    s.create_strategies(4);
    let prices = s.feed_prices();
    s.until_all_run(&members, Duration::from_secs(30)).await;
    let mut gaps = Vec::new();
    for i in 0..3 {
        let node = node_of(&s.store, members[i].as_ref().unwrap().pid())
            .await
            .unwrap();
        let began = Instant::now();
        let run = s.db.run(&[
            "--config",
            &s.config,
            "--json",
            "cluster",
            "drain",
            &node.to_string(),
            "--reason",
            "rolling upgrade",
        ]);
        let doc = run.ok().json();
        assert_eq!(doc["drained"], true, "{doc}");
        // Every strategy runs again, on the others.
        s.until_all_run_except(&members, Some(i), Duration::from_secs(30))
            .await;
        let handed = began.elapsed();
        let drained = members[i].take().unwrap();
        let (_, status) = drained.daemon.get("/api/v1/status").await;
        assert!(
            status["engine_strategies"]
                .as_array()
                .is_none_or(|a| a.iter().all(|s| s["status"] != "active")),
            "the drained daemon runs nothing: {status}"
        );
        // Stopped, upgraded, started again: it joins with room.
        drop(drained);
        members[i] = Some(s.start(&format!("{i}-again")).await);
        gaps.push(handed);
        eprintln!(
            "drain of node {node}: handed over in {:.2} s",
            handed.as_secs_f64()
        );
    }
    let audit = s.store.audit_log(100).await.unwrap();
    let drains = audit
        .iter()
        .filter(|a| a.command == "cluster drain" && a.outcome == "ok")
        .count();
    assert_eq!(drains, 3, "every drain audited: {audit:?}");
    let worst = gaps.iter().max().unwrap();
    eprintln!(
        "rolling restart: the longest handover took {:.2} s",
        worst.as_secs_f64()
    );
    assert!(
        *worst < Duration::from_secs(lease_secs()),
        "a drain hands over without waiting for a lease to run out: {gaps:?}"
    );
    s.until_all_run(&members, Duration::from_secs(30)).await;
    s.until_quiet(Duration::from_secs(60)).await;
    drop(members);
    prices.abort();
    s.assert_books().await;
    let handovers = s.store.handovers_since(0).await.unwrap();
    assert!(
        handovers.iter().any(|h| h.kind == "handover"),
        "drained units were handed over, not failed over: {handovers:?}"
    );
    assert!(
        handovers.iter().all(|h| h.kind != "failover"),
        "no unit waited for its lease to run out: {handovers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_for_fifteen_seconds_stops_and_resumes_every_daemon() {
    let _serial = SERIAL.lock().await;
    let Some((chain, u)) = market(false).await else {
        return;
    };
    let Some(pg) = pg::PgCluster::start() else {
        assert!(
            std::env::var("CI").is_err(),
            "CI needs the PostgreSQL server binaries"
        );
        return;
    };
    let mut s = setup_on(TestDb::with_url(pg.url()), &chain, &u, 2, "").await;
    let mut members: Vec<Option<Member>> = Vec::new();
    for i in 0..2 {
        members.push(Some(s.start(&format!("{i}")).await));
    }
    s.create_strategies(4);
    let prices = s.feed_prices();
    s.until_all_run(&members, Duration::from_secs(30)).await;
    chain
        .walk_to(&s.client, &s.pool, u.router, d("96500"))
        .await;
    let before = s.store.trading_history(None, 100_000).await.unwrap().len();
    s.store.close().await;
    pg.ctl("stop");
    let down_ms = bsc_bot::clock::wall_clock_ms();
    // The price crosses the grid while the database is away: nothing may trade on it once the
    // leases can no longer be trusted.
    chain
        .walk_to(&s.client, &s.pool, u.router, d("103600"))
        .await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    // Each says it stopped trading (before its leases could run out).
    for m in members.iter().flatten() {
        let log = std::fs::read_to_string(&m.log).unwrap();
        assert!(
            log.contains("leases not renewed in time: trading stops"),
            "a daemon did not stop trading"
        );
    }
    pg.ctl("start");
    let up_ms = bsc_bot::clock::wall_clock_ms();
    s.store = s.db.store().await;
    // Every strategy runs again, and trades on.
    s.until_all_run(&members, Duration::from_secs(lease_secs() + 30))
        .await;
    chain
        .walk_to(&s.client, &s.pool, u.router, d("97000"))
        .await;
    // The first swap may come after a few seconds with nothing in flight (a loaded machine's
    // daemons see the pool late): wait for it before waiting for quiet.
    let resumed = Instant::now() + Duration::from_secs(60);
    while s.store.trading_history(None, 100_000).await.unwrap().len() <= before {
        assert!(Instant::now() < resumed, "trading resumed");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    s.until_quiet(Duration::from_secs(60)).await;
    let after = s.store.trading_history(None, 100_000).await.unwrap();
    assert!(after.len() > before, "trading resumed");
    // Nothing traded from the moment the leases could have run out until the database was
    // back (live swaps could not even be recorded, so none was sent: the books below hold every
    // transaction of the wallets). Trades of the first seconds, before the daemons noticed,
    // were kept in memory and are on record now.
    let lease_ms = lease_secs() as i64 * 1000;
    let during: Vec<_> = after
        .iter()
        .filter(|t| t.executed_at > down_ms + lease_ms && t.executed_at < up_ms)
        .map(|t| (t.strategy_id, t.executed_at - down_ms))
        .collect();
    assert!(
        during.is_empty(),
        "traded while the database was away: {during:?}"
    );
    drop(members);
    prices.abort();
    s.assert_books().await;
}

/// A network namespace of the test's own, with veth pairs to the host; removed on drop.
struct Netns {
    name: String,
    host_links: Vec<String>,
}

fn ip(args: &[&str]) {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    /// `None` where namespaces cannot be made (not root, no iproute2): a failure in CI.
    fn create(name: &str) -> Option<Netns> {
        let ok = std::process::Command::new("ip")
            .args(["netns", "add", name])
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            assert!(
                std::env::var("CI").is_err(),
                "CI needs `ip netns` (iproute2, root) for the cut-off test"
            );
            return None;
        }
        ip(&["-n", name, "link", "set", "lo", "up"]);
        Some(Netns {
            name: name.to_string(),
            host_links: Vec::new(),
        })
    }

    /// A veth pair: `host` (address `host_ip`/30) on the host, `inside` in the namespace.
    fn link(&mut self, host: &str, inside: &str, host_ip: &str, inside_ip: &str) {
        ip(&["link", "add", host, "type", "veth", "peer", "name", inside]);
        self.host_links.push(host.to_string());
        ip(&["link", "set", inside, "netns", &self.name]);
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", host]);
        ip(&["link", "set", host, "up"]);
        ip(&[
            "-n",
            &self.name,
            "addr",
            "add",
            &format!("{inside_ip}/30"),
            "dev",
            inside,
        ]);
        ip(&["-n", &self.name, "link", "set", inside, "up"]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for l in &self.host_links {
            let _ = std::process::Command::new("ip")
                .args(["link", "del", l])
                .output();
        }
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Forward TCP connections made to `bind` (a host address the namespace reaches) to `upstream`
/// (a service listening on the host's loopback).
async fn forward(bind: &str, upstream: std::net::SocketAddr) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut out) = tokio::net::TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    });
    addr
}

fn host_port(url: &str) -> std::net::SocketAddr {
    let rest = url.split("://").nth(1).unwrap();
    let rest = rest.rsplit('@').next().unwrap();
    let hostport = rest.split('/').next().unwrap();
    hostport.parse().unwrap()
}

/// The first JSON log line containing `needle`: its time (epoch ms).
fn logged_at(log: &std::path::Path, needle: &str) -> Option<i64> {
    std::fs::read_to_string(log)
        .ok()?
        .lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| {
            chrono::DateTime::parse_from_rfc3339(v["timestamp"].as_str()?)
                .ok()
                .map(|t| t.timestamp_millis())
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_cut_off_from_postgres_stops_before_its_lease_and_sends_nothing_after() {
    let _serial = SERIAL.lock().await;
    let Some((chain, u)) = market(true).await else {
        return;
    };
    let Ok(db_url) = std::env::var("DATABASE_URL") else {
        return;
    };
    let tag = std::process::id() % 200 + 20;
    let Some(mut ns) = Netns::create(&format!("bsccut{tag}")) else {
        return;
    };
    let (pg_host, pg_ns) = (format!("10.231.{tag}.1"), format!("10.231.{tag}.2"));
    let (rpc_host, rpc_ns) = (format!("10.232.{tag}.1"), format!("10.232.{tag}.2"));
    let pg_link = format!("bscpg{tag}h");
    ns.link(&pg_link, &format!("bscpg{tag}n"), &pg_host, &pg_ns);
    ns.link(
        &format!("bscrpc{tag}h"),
        &format!("bscrpc{tag}n"),
        &rpc_host,
        &rpc_ns,
    );
    let mut s = setup(&chain, &u, 1, "").await;
    // The cut-off daemon reaches PostgreSQL and the node through the host's side of its links.
    let pg_fwd = forward(&format!("{pg_host}:0"), host_port(&db_url)).await;
    let rpc_fwd = forward(&format!("{rpc_host}:0"), host_port(&chain.url)).await;
    let ns_db_url =
        s.db.store_url()
            .replace(&host_port(&db_url).to_string(), &pg_fwd.to_string());
    let ns_config = s.db.dir.path().join("bsc-bot-ns.toml");
    std::fs::write(
        &ns_config,
        std::fs::read_to_string(&s.config)
            .unwrap()
            .replace(&chain.url, &format!("http://{rpc_fwd}")),
    )
    .unwrap();
    let a_log = s.db.dir.path().join("daemon-cut.log");
    let mut cmd = std::process::Command::new("ip");
    cmd.args(["netns", "exec", &ns.name, common::BIN])
        .args(["--config", ns_config.to_str().unwrap()])
        .args([
            "--log-level",
            "info",
            "--log-format",
            "json",
            "bot",
            "start",
        ])
        .current_dir(s.db.dir.path());
    for (k, _) in std::env::vars() {
        if k.starts_with("BSC_BOT_") || k == "DATABASE_URL" {
            cmd.env_remove(k);
        }
    }
    let mut a = cmd
        .env("DATABASE_URL", &ns_db_url)
        .env("BSC_BOT_API_TOKEN", common::daemon::TOKEN)
        .env("BSC_BOT_KEYSTORE_PASSWORD", PASSWORD)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&a_log).unwrap())
        .spawn()
        .unwrap();
    let a_pid = i64::from(a.id());
    let deadline = Instant::now() + Duration::from_secs(30);
    while node_of(&s.store, a_pid).await.is_none() {
        assert!(
            Instant::now() < deadline,
            "the cut-off daemon did not come up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Its wallet's two grids, created while it alone runs: it takes the wallet.
    s.create_strategies(0);
    let ids = s.wallets[0].grids.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = s
            .store
            .daemons()
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.pid == a_pid)
            .unwrap();
        if ids
            .iter()
            .all(|id| row.live_status.get(id).is_some_and(|v| v == "running"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "A never ran the grids: {row:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let b = s.start("b").await;
    let members = vec![None, Some(b)];
    chain
        .walk_to(&s.client, &s.pool, u.router, d("96500"))
        .await;
    let a_runs = run_ids(&a_log);
    // The link to PostgreSQL goes down; the one to the chain stays up.
    let cut_ms = bsc_bot::clock::wall_clock_ms();
    let cut = Instant::now();
    ip(&["link", "set", &pg_link, "down"]);
    chain
        .walk_to(&s.client, &s.pool, u.router, d("103600"))
        .await;
    s.until_all_run(&members, Duration::from_secs(lease_secs() + 30))
        .await;
    let took = cut.elapsed();
    let stopped_at = logged_at(&a_log, "leases not renewed in time")
        .expect("the cut-off daemon says it stopped trading");
    eprintln!(
        "cut off: A stopped trading {} ms after the cut (lease {} s); B ran everything {:.2} s after the cut",
        stopped_at - cut_ms,
        lease_secs(),
        took.as_secs_f64()
    );
    assert!(
        stopped_at < cut_ms + lease_secs() as i64 * 1000,
        "A stopped trading only after its lease could have run out"
    );
    chain
        .walk_to(&s.client, &s.pool, u.router, d("97000"))
        .await;
    // The link comes back: A learns it lost the wallet and sends nothing for it.
    let up_ms = bsc_bot::clock::wall_clock_ms();
    ip(&["link", "set", &pg_link, "up"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while logged_at(&a_log, "leases lost to another daemon").is_none() {
        assert!(
            Instant::now() < deadline,
            "A never learned it lost its units"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    chain
        .walk_to(&s.client, &s.pool, u.router, d("103000"))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Nothing of A's after its lease could have run out: not while cut off, not after.
    let by_a = written_after(&s, &a_runs, cut_ms + lease_secs() as i64 * 1000).await;
    assert!(by_a.is_empty(), "A wrote for the wallet it lost: {by_a:?}");
    let _ = up_ms;
    s.until_quiet(Duration::from_secs(60)).await;
    let _ = a.kill();
    let _ = a.wait();
    drop(members);
    // Every transaction the wallet has on chain is on record: A sent nothing unrecorded.
    let trades = s.assert_books().await;
    eprintln!("{trades} trades; A sent and wrote nothing after losing the wallet");
}

/// A member cut off in the middle of a write leaves its session open on the database, inside a
/// transaction that share-locks its leases' rows; the database cannot tell that silence from a
/// slow client. The session is ended after the idle limit, so another member takes the unit
/// once the lease has run out (not before), its lease manager never waiting longer than it
/// said it would; the cut-off member's write then fails, and its store works on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_gone_mid_write_does_not_hold_its_unit_past_the_lease() {
    const LEASE_MS: i64 = 2_000;
    const IDLE_MS: u64 = 1_000;
    const LOCK_WAIT_MS: u64 = 100;
    let db = TestDb::new("postgres").await;
    let a = db.store_with_idle_limit(IDLE_MS).await;
    let b = db.store().await;
    let now = bsc_bot::clock::wall_clock_ms();
    let node_a = a
        .register_node(1, "host-a", "127.0.0.1:1", 4, now)
        .await
        .unwrap();
    let node_b = b
        .register_node(2, "host-b", "127.0.0.1:2", 4, now)
        .await
        .unwrap();
    let unit = "wallet:0x00000000000000000000000000000000000000aa".to_string();
    a.ensure_units(std::slice::from_ref(&unit), now)
        .await
        .unwrap();
    // Before the database's clock starts the lease: no take may come sooner than LEASE_MS after.
    let leased_at = Instant::now();
    let taken = a
        .take_lease(node_a, &unit, LEASE_MS, &[], LOCK_WAIT_MS)
        .await
        .unwrap()
        .unwrap();
    // A's writer when the network went: the fence's read holds the row, no statement follows.
    let mut write = a.begin_write().await.unwrap();
    let held = std::collections::HashMap::from([(unit.clone(), taken.epoch)]);
    let wrote_at = Instant::now();
    assert!(a
        .lost_leases(&mut write, node_a, &held)
        .await
        .unwrap()
        .is_empty());
    let tried = Instant::now();
    let busy = b
        .take_lease(node_b, &unit, LEASE_MS, &[], LOCK_WAIT_MS)
        .await;
    assert!(
        matches!(&busy, Err(bsc_bot::store::StoreError::LeaseBusy(u)) if *u == unit),
        "a take while the row is locked: {busy:?}"
    );
    assert!(
        tried.elapsed() < Duration::from_millis(900),
        "the take waited {:?} for the lock, told {LOCK_WAIT_MS} ms",
        tried.elapsed()
    );
    let deadline = Duration::from_millis(LEASE_MS as u64 + 3_000);
    let handover = loop {
        match b
            .take_lease(node_b, &unit, LEASE_MS, &[], LOCK_WAIT_MS)
            .await
        {
            Ok(Some(h)) => break h,
            Ok(None) | Err(bsc_bot::store::StoreError::LeaseBusy(_)) => {}
            Err(e) => panic!("take: {e}"),
        }
        assert!(
            wrote_at.elapsed() < deadline,
            "the unit was not taken {deadline:?} after its owner went mid-write: {:?}",
            b.leases().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let took = wrote_at.elapsed();
    eprintln!(
        "taken {} ms after the owner went mid-write (lease {LEASE_MS} ms, idle limit {IDLE_MS} ms)",
        took.as_millis()
    );
    assert_eq!(
        (handover.kind.as_str(), handover.from_node, handover.epoch),
        ("failover", Some(node_a), taken.epoch + 1)
    );
    assert!(
        leased_at.elapsed() >= Duration::from_millis(LEASE_MS as u64),
        "taken {:?} after the lease began, before it could have run out",
        leased_at.elapsed()
    );
    assert!(
        write.commit().await.is_err(),
        "the cut-off member's write committed after its session was ended"
    );
    let leases = a.leases().await.unwrap();
    assert_eq!(
        leases.iter().find(|l| l.unit == unit).and_then(|l| l.owner),
        Some(node_b)
    );
}
