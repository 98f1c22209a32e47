//! Drips, sweeps and their records. One pass ([`FundsManager::check_once`]) reads every managed
//! wallet's balances and does what `[funds]` asks; [`FundsManager::execute`] is one operation,
//! the automatic ones and an operator's `funds sweep execute` alike, through the same checks.

use std::collections::BTreeMap;
use std::sync::Arc;

use alloy::primitives::{Address, U256};
use rust_decimal::Decimal;

use super::FundsError;
use crate::chain::units::{from_units, to_units};
use crate::chain::{ChainClient, Swapper, Token};
use crate::clock::wall_clock_ms;
use crate::config::DexConfig;
use crate::config::FundsConfig;
use crate::store::funds::reference_of;
use crate::store::Store;

const HOUR_MS: i64 = 3_600_000;
/// Gas of a plain BNB transfer (a BNB sweep leaves exactly this much fee aside).
const TRANSFER_GAS: u128 = 21_000;

/// One drip or sweep to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// `drip` or `sweep`.
    pub kind: &'static str,
    /// The wallet funds leave, by name (`treasury` for drips).
    pub from: String,
    pub to: String,
    pub asset: String,
    /// `None`: everything above what the wallet keeps (sweeps only).
    pub amount: Option<Decimal>,
}

/// What became of an operation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    /// Its `funds_operations` row (`None` for a dry run).
    pub id: Option<i64>,
    pub kind: String,
    pub from: String,
    pub to: String,
    pub asset: String,
    pub amount: Decimal,
    /// `completed`, `failed`, `refused` or `dry-run`.
    pub status: String,
    pub tx_hash: Option<String>,
    pub fee_bnb: Decimal,
    pub error: Option<String>,
}

pub struct FundsManager {
    config: FundsConfig,
    /// Where `[dex.assets]` maps assets (`BTC`) to their tokens.
    dex: DexConfig,
    store: Store,
    client: ChainClient,
    /// The treasury's swapper (`None` where only sweeps run, e.g. `funds sweep execute`).
    treasury: Option<Arc<Swapper>>,
    /// Managed wallets by name (every live strategy's), each with its own swapper.
    wallets: BTreeMap<String, Arc<Swapper>>,
    /// Pools by market (`BTC/USDT`): what prices an asset in quote.
    pools: BTreeMap<String, crate::chain::Pool>,
    /// `risk.max_hourly_outflow`: swap inputs, drips and sweeps together, in quote.
    max_outflow: Option<Decimal>,
    /// The engine's outflow ledger (in the daemon): drips and sweeps are booked there too, so
    /// the swap check sees them.
    ledger: Option<Arc<crate::risk::OutflowLedger>>,
    /// Where breaches are counted and alerted (in the daemon).
    metrics: Option<Arc<crate::metrics::Metrics>>,
    alerter: Option<crate::alerts::Alerter>,
    /// Wallets and pools joining while it runs, and the daemon row to tell.
    joins: Option<(tokio::sync::mpsc::UnboundedReceiver<super::FundsJoin>, i64)>,
}

impl FundsManager {
    pub fn new(
        config: &crate::config::Config,
        store: Store,
        client: ChainClient,
        treasury: Option<Arc<Swapper>>,
        wallets: BTreeMap<String, Arc<Swapper>>,
    ) -> Self {
        FundsManager {
            config: config.funds.clone(),
            dex: config.dex.clone(),
            store,
            client,
            treasury,
            wallets,
            pools: BTreeMap::new(),
            max_outflow: config.risk.max_hourly_outflow,
            ledger: None,
            metrics: None,
            alerter: None,
            joins: None,
        }
    }

    /// Count breaches in these metrics and alert them.
    pub fn with_signals(
        mut self,
        metrics: Arc<crate::metrics::Metrics>,
        alerter: crate::alerts::Alerter,
    ) -> Self {
        self.metrics = Some(metrics);
        self.alerter = Some(alerter);
        self
    }

    fn signal(&self, kind: &str, severity: &str, message: String) {
        if let Some(m) = &self.metrics {
            m.risk_event(kind);
        }
        if let Some(a) = &self.alerter {
            a.raise(kind, severity, message);
        }
    }

    /// Price assets through these pools, and book drips and sweeps in the engine's ledger.
    pub fn with_pools(
        mut self,
        pools: BTreeMap<String, crate::chain::Pool>,
        ledger: Option<Arc<crate::risk::OutflowLedger>>,
    ) -> Self {
        self.pools = pools;
        self.ledger = ledger;
        self
    }

    /// `amount` of `asset` in quote: itself if it is a pool's quote token, at the pool's price if
    /// it is a pool's base (BNB through WBNB); `None` when no pool prices it.
    async fn quote_value(&self, asset: &str, amount: Decimal) -> Option<Decimal> {
        let address = self.dex.asset_address(asset)?;
        for pool in self.pools.values() {
            if pool.quote.address == address {
                return Some(amount);
            }
        }
        for pool in self.pools.values() {
            if pool.base.address == address {
                let (b, q) = self.client.reserves(pool).await.ok()?;
                return (b > Decimal::ZERO).then(|| amount * q / b);
            }
        }
        None
    }

    pub fn wallet_names(&self) -> Vec<String> {
        self.wallets.keys().cloned().collect()
    }

    /// `None` for BNB; the token (decimals read from the chain) otherwise.
    async fn token(&self, asset: &str) -> Result<Option<Token>, FundsError> {
        if asset.eq_ignore_ascii_case("BNB") {
            return Ok(None);
        }
        let address = self
            .dex
            .asset_address(asset)
            .ok_or_else(|| FundsError::Config(format!("asset {asset:?} is not in [dex.assets]")))?;
        Ok(Some(self.client.token(address).await?))
    }

    async fn balance_units(&self, who: Address, token: &Option<Token>) -> Result<U256, FundsError> {
        Ok(match token {
            None => self.client.native_balance_wei(who).await?,
            Some(t) => to_units(self.client.token_balance(t, who).await?, t.decimals)
                .map_err(|e| FundsError::Config(e.to_string()))?,
        })
    }

    fn sender(&self, name: &str) -> Result<&Arc<Swapper>, FundsError> {
        if name == "treasury" {
            return self
                .treasury
                .as_ref()
                .ok_or_else(|| FundsError::Config("the treasury's key is not loaded".into()));
        }
        self.wallets.get(name).ok_or_else(|| {
            FundsError::Config(format!(
                "wallet {name:?} is not managed (no live strategy uses it)"
            ))
        })
    }

    /// Settle operations a crash left `pending`, from their transactions (reconciled first by
    /// each wallet's swapper): mined → completed, anything else → failed with why.
    pub async fn settle_pending(&self) -> Result<usize, FundsError> {
        let mut settled = 0;
        for op in self.store.pending_funds_operations().await? {
            let sender = match self.sender(&op.wallet) {
                Ok(s) => s.clone(),
                Err(_) => continue,
            };
            let txs = self
                .store
                .chain_txs_of(self.client.chain_id(), sender.address())
                .await?;
            let reference = reference_of(op.id);
            let mine: Vec<_> = txs
                .iter()
                .filter(|t| t.reference.as_deref() == Some(reference.as_str()))
                .collect();
            let now = wall_clock_ms();
            if let Some(t) = mine.iter().find(|t| t.status == "mined") {
                self.store
                    .settle_funds_operation(op.id, "completed", Some(&t.tx_hash), None, now)
                    .await?;
            } else if mine
                .iter()
                .any(|t| matches!(t.status.as_str(), "signed" | "broadcast"))
            {
                continue;
            } else {
                let why = match mine.last() {
                    Some(t) => format!("transaction {}", t.status),
                    None => "not sent: the daemon stopped before signing it".into(),
                };
                self.store
                    .settle_funds_operation(
                        op.id,
                        "failed",
                        mine.last().map(|t| t.tx_hash.as_str()),
                        Some(&why),
                        now,
                    )
                    .await?;
            }
            settled += 1;
        }
        Ok(settled)
    }

    /// One pass: every managed wallet below `gas_min_bnb` is dripped up to `gas_target_bnb`;
    /// every asset above what it keeps by at least `sweep_min` is swept to the treasury.
    pub async fn check_once(&self) -> Vec<Result<Outcome, FundsError>> {
        let mut out = Vec::new();
        for (name, swapper) in &self.wallets {
            let who = swapper.address();
            match self.client.native_balance_wei(who).await {
                Ok(bnb) => {
                    let min = to_units(self.config.gas_min_bnb, 18).unwrap_or_default();
                    let target = to_units(self.config.gas_target_bnb, 18).unwrap_or_default();
                    if bnb < min && target > bnb {
                        let amount = from_units(target - bnb, 18).unwrap_or_default();
                        let dripped = self
                            .execute(
                                &Operation {
                                    kind: "drip",
                                    from: "treasury".into(),
                                    to: who.to_string(),
                                    asset: "BNB".into(),
                                    amount: Some(amount),
                                },
                                false,
                            )
                            .await;
                        // Below its minimum and no drip possible: its strategies stop trading
                        // before their swaps start failing for gas.
                        if !matches!(&dripped, Ok(o) if o.status == "completed") {
                            let why = match &dripped {
                                Ok(o) => o.error.clone().unwrap_or_default(),
                                Err(e) => e.to_string(),
                            };
                            if let Err(e) = self.pause_strategies_of(name, who, bnb, &why).await {
                                tracing::warn!(wallet = %name, error = %e, "cannot pause the wallet's strategies");
                            }
                        }
                        out.push(dripped);
                    }
                }
                Err(e) => out.push(Err(e.into())),
            }
            for asset in self.config.sweep_min.keys() {
                out.extend(self.sweep_if_due(name, asset).await.transpose());
            }
        }
        out
    }

    /// Pause every active live strategy of `wallet` (low gas, no drip possible), on record with
    /// a `low_gas` risk event; an operator resumes them once the wallet has gas.
    async fn pause_strategies_of(
        &self,
        wallet: &str,
        address: Address,
        bnb_wei: U256,
        why: &str,
    ) -> Result<(), FundsError> {
        let bnb = from_units(bnb_wei, 18).unwrap_or_default();
        let paused = super::pause_for_low_gas(
            &self.store,
            wallet,
            address,
            bnb,
            self.config.gas_min_bnb,
            why,
        )
        .await?;
        for (id, reason) in paused {
            self.signal(
                "low_gas",
                "critical",
                format!("strategy {id} paused: {reason}"),
            );
        }
        Ok(())
    }

    async fn sweep_if_due(&self, wallet: &str, asset: &str) -> Result<Option<Outcome>, FundsError> {
        let (excess, min) = (
            self.excess(wallet, asset).await?,
            self.config.sweep_min[asset],
        );
        if excess <= Decimal::ZERO || excess < min {
            return Ok(None);
        }
        let op = Operation {
            kind: "sweep",
            from: wallet.to_string(),
            to: self.config.treasury.clone(),
            asset: asset.to_string(),
            amount: None,
        };
        self.execute(&op, false).await.map(Some)
    }

    /// What `wallet` holds of `asset` above what it keeps (for BNB, less the sweep's own fee).
    async fn excess(&self, wallet: &str, asset: &str) -> Result<Decimal, FundsError> {
        let sender = self.sender(wallet)?;
        let token = self.token(asset).await?;
        let held = self.balance_units(sender.address(), &token).await?;
        let decimals = token.as_ref().map_or(18, |t| t.decimals);
        let keep = self.config.keep.get(asset).copied().unwrap_or_default();
        let mut aside = to_units(keep, decimals).map_err(|e| FundsError::Config(e.to_string()))?;
        if token.is_none() {
            aside += U256::from(sender.next_gas_price_wei().await? * TRANSFER_GAS);
        }
        Ok(if held > aside {
            from_units(held - aside, decimals).map_err(|e| FundsError::Config(e.to_string()))?
        } else {
            Decimal::ZERO
        })
    }

    /// Check, record, send and settle one operation. Refused (nothing signed, a `refused` row and
    /// a risk event): a destination outside the allow-list, more than the hour's outflow limit,
    /// more than the wallet holds.
    pub async fn execute(&self, op: &Operation, dry_run: bool) -> Result<Outcome, FundsError> {
        let sender = self.sender(&op.from)?.clone();
        let token = self.token(&op.asset).await?;
        let decimals = token.as_ref().map_or(18, |t| t.decimals);
        let amount = match op.amount {
            Some(a) => a,
            None => self.excess(&op.from, &op.asset).await?,
        };
        let mut outcome = Outcome {
            id: None,
            kind: op.kind.to_string(),
            from: op.from.clone(),
            to: op.to.clone(),
            asset: op.asset.clone(),
            amount: amount.normalize(),
            status: String::new(),
            tx_hash: None,
            fee_bnb: Decimal::ZERO,
            error: None,
        };
        let units = to_units(amount, decimals).map_err(|e| FundsError::Config(e.to_string()))?;
        let now = wall_clock_ms();
        // Drips go to the managed wallets; everything else only to the treasury or the allow-list.
        let to_managed = op.kind == "drip"
            && self
                .wallets
                .values()
                .any(|w| op.to.parse::<Address>().ok() == Some(w.address()));
        let refusal = if !to_managed && !self.config.allows(&op.to) {
            Some(format!(
                "destination {} is not the treasury nor in funds.allowed_destinations",
                op.to
            ))
        } else if amount <= Decimal::ZERO {
            Some("nothing to move".to_string())
        } else if self.balance_units(sender.address(), &token).await? < units {
            Some(format!("{} holds less than {amount} {}", op.from, op.asset))
        } else if let Some(why) = self.over_outflow(&op.asset, amount, now).await? {
            Some(why)
        } else {
            match self.config.max_hourly_outflow.get(&op.asset) {
                Some(limit) => {
                    let used = self
                        .store
                        .funds_outflow_since(&op.asset, now - HOUR_MS)
                        .await?;
                    (used + amount > *limit).then(|| {
                        format!(
                            "{} {} moved within the hour + {amount} would pass \
                             funds.max_hourly_outflow.{} = {limit}",
                            used.normalize(),
                            op.asset,
                            op.asset
                        )
                    })
                }
                None => None,
            }
        };
        if dry_run {
            outcome.status = if refusal.is_some() {
                "refused"
            } else {
                "dry-run"
            }
            .into();
            outcome.error = refusal;
            return Ok(outcome);
        }
        if let Some(why) = refusal {
            // The same refusal again within the hour (the automatic check retries every few
            // seconds) is not recorded again.
            let repeated = self
                .store
                .funds_operations(Some(op.kind), 20)
                .await?
                .into_iter()
                .any(|o| {
                    o.status == "refused"
                        && o.wallet == op.from
                        && same_destination(&o.destination, &op.to)
                        && o.asset == op.asset
                        && o.error.as_deref() == Some(why.as_str())
                        && o.created_at >= now - HOUR_MS
                });
            if repeated && (op.amount.is_none() || op.kind == "drip") {
                return Err(FundsError::Refused(why));
            }
            let id = self
                .record(op, amount, None, "refused", Some(&why), now)
                .await?;
            tracing::warn!(kind = op.kind, from = %op.from, to = %op.to, reason = %why, "funds operation refused");
            self.signal(
                "funds_refused",
                "critical",
                format!(
                    "{} of {} {} to {} refused: {why}",
                    op.kind,
                    amount.normalize(),
                    op.asset,
                    op.to
                ),
            );
            outcome.id = Some(id);
            outcome.status = "refused".into();
            outcome.error = Some(why.clone());
            return Err(FundsError::Refused(why));
        }
        let to: Address = op
            .to
            .parse()
            .map_err(|_| FundsError::Config(format!("{} is not an address", op.to)))?;
        // On record before anything is signed: a crash from here on leaves a row to settle.
        let value = self.quote_value(&op.asset, amount).await;
        let id = self.record(op, amount, value, "pending", None, now).await?;
        outcome.id = Some(id);
        let sent = sender
            .transfer(
                to,
                token.as_ref().map(|t| t.address),
                units,
                op.kind,
                &reference_of(id),
            )
            .await?;
        let hash = sent.tx_hash.map(|h| h.to_string());
        let status = if sent.mined { "completed" } else { "failed" };
        if let (true, Some(ledger), Some(v)) = (sent.mined, &self.ledger, value) {
            ledger.record(now, v);
        }
        self.store
            .settle_funds_operation(
                id,
                status,
                hash.as_deref(),
                sent.error.as_deref(),
                wall_clock_ms(),
            )
            .await?;
        tracing::info!(kind = op.kind, from = %op.from, to = %op.to, asset = %op.asset, amount = %amount.normalize(), status, tx_hash = ?hash, "funds operation");
        outcome.status = status.into();
        outcome.tx_hash = hash;
        outcome.fee_bnb = sent.fee_bnb;
        outcome.error = sent.error;
        Ok(outcome)
    }

    async fn record(
        &self,
        op: &Operation,
        amount: Decimal,
        value: Option<Decimal>,
        status: &str,
        error: Option<&str>,
        now: i64,
    ) -> Result<i64, FundsError> {
        Ok(self
            .store
            .insert_funds_operation(
                op.kind, &op.from, &op.to, &op.asset, amount, value, status, error, now,
            )
            .await?)
    }

    /// `risk.max_hourly_outflow`: the hour's swap inputs, drips and sweeps (quote) plus this
    /// one. Past the limit every funds operation stops until the hour rolls on.
    async fn over_outflow(
        &self,
        asset: &str,
        amount: Decimal,
        now: i64,
    ) -> Result<Option<String>, FundsError> {
        let Some(limit) = self.max_outflow else {
            return Ok(None);
        };
        let used = self.store.outflow_quote_since(now - HOUR_MS).await?;
        if used > limit {
            return Ok(Some(format!(
                "funds operations stopped: {} (quote) left the wallets within the hour, over \
                 risk.max_hourly_outflow {limit}",
                used.round_dp(8).normalize()
            )));
        }
        let value = self.quote_value(asset, amount).await.unwrap_or_default();
        Ok((used + value > limit).then(|| {
            format!(
                "{} (quote) left the wallets within the hour + {} would pass \
                 risk.max_hourly_outflow {limit}",
                used.round_dp(8).normalize(),
                value.round_dp(8).normalize()
            )
        }))
    }

    /// Check every `funds.check_interval_secs` until shutdown.
    /// Take on what joins while it runs (wallets and pools of live strategies created meanwhile),
    /// and say so in the daemon's row (`daemon_pid`) when the wallets change.
    pub fn with_joins(
        mut self,
        joins: tokio::sync::mpsc::UnboundedReceiver<super::FundsJoin>,
        daemon_pid: i64,
    ) -> Self {
        self.joins = Some((joins, daemon_pid));
        self
    }

    /// What the manager does, as `bot status` and health show it.
    pub fn status(&self) -> String {
        format!(
            "running ({} wallets: {})",
            self.wallets.len(),
            self.wallet_names().join(", ")
        )
    }

    async fn take_joins(&mut self) {
        let Some((joins, pid)) = self.joins.as_mut() else {
            return;
        };
        let pid = *pid;
        let mut wallets_changed = false;
        while let Ok(join) = joins.try_recv() {
            match join {
                super::FundsJoin::Wallet(name, swapper) => {
                    if let std::collections::btree_map::Entry::Vacant(slot) =
                        self.wallets.entry(name)
                    {
                        tracing::info!(wallet = %slot.key(), "funds manager takes on a wallet");
                        slot.insert(swapper);
                        wallets_changed = true;
                    }
                }
                super::FundsJoin::Pool(market, pool) => {
                    self.pools.insert(market, pool);
                }
            }
        }
        if wallets_changed {
            if let Err(e) = self
                .store
                .set_daemon_funds_status(pid, &self.status())
                .await
            {
                tracing::warn!(error = %e, "cannot record the funds manager's status");
            }
        }
    }

    pub async fn run(mut self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let every = std::time::Duration::from_secs(self.config.check_interval_secs.max(1));
        loop {
            self.take_joins().await;
            for result in self.check_once().await {
                match result {
                    Ok(o) if o.status == "failed" => self.signal(
                        "funds_failed",
                        "warning",
                        format!(
                            "{} of {} {} to {} failed: {}",
                            o.kind,
                            o.amount,
                            o.asset,
                            o.to,
                            o.error.clone().unwrap_or_default()
                        ),
                    ),
                    Ok(_) | Err(FundsError::Refused(_)) => {}
                    Err(e) => tracing::warn!(error = %e, "funds check"),
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Two destinations are one when they are the same address, however either is spelt.
fn same_destination(a: &str, b: &str) -> bool {
    match (a.parse::<Address>(), b.parse::<Address>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}
