//! Starting the funds manager beside the engine: what it shares with the rest of the daemon, and
//! whether it runs at all.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::{live, DaemonOptions};
use crate::alerts;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::Store;

/// What the funds manager shares with the rest of the daemon.
pub(super) struct FundsWiring {
    /// The engine's outflow ledger (drips and sweeps are booked in it too).
    pub(super) outflow: Arc<crate::risk::OutflowLedger>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) shutdown: watch::Receiver<bool>,
    pub(super) alerter: alerts::Alerter,
}

/// Start the funds manager when a treasury is configured, and say what it does: it keeps the
/// live strategies' wallets (reconciled, unlocked at start, and those of live strategies created
/// later, sent through the returned channel); off with `--no-funds`, `--market-only`, without a
/// treasury, or when the chain or the treasury's key is not to be had.
pub(super) async fn start_funds(
    config: &Config,
    opts: &DaemonOptions,
    store: &Store,
    markets: Option<&live::LiveMarkets>,
    wiring: FundsWiring,
    pid: i64,
) -> (
    String,
    Option<mpsc::UnboundedSender<crate::funds::FundsJoin>>,
) {
    let FundsWiring {
        outflow,
        metrics,
        shutdown,
        alerter,
    } = wiring;
    let off = |why: String| (why, None);
    if opts.market_only {
        return off("off: --market-only".into());
    }
    if opts.no_funds {
        return off("off: --no-funds".into());
    }
    if !config.funds.enabled() {
        return off("off: no funds.treasury configured".into());
    }
    let signer = match crate::funds::treasury_signer(config) {
        Ok(s) => s,
        Err(e) => {
            alerter.raise(
                "funds_not_running",
                "critical",
                format!("funds manager not running: {e}"),
            );
            return off(format!("off: {e}"));
        }
    };
    // Nothing live yet: the manager still runs, for the wallets of live strategies to come.
    let (client, wallets, pools) = match markets {
        Some(m) => (m.client.clone(), m.wallets.clone(), m.pools.clone()),
        None => match crate::chain::ChainClient::connect(&config.chain).await {
            Ok(c) => (c, Default::default(), Default::default()),
            Err(e) => {
                alerter.raise(
                    "funds_not_running",
                    "critical",
                    format!("funds manager not running: chain: {e}"),
                );
                return off(format!("off: chain: {e}"));
            }
        },
    };
    let treasury = match crate::chain::Swapper::new(
        client.clone(),
        signer,
        store.clone(),
        config.chain.clone(),
        config.dex.clone(),
    ) {
        Ok(t) => Arc::new(t),
        Err(e) => return off(format!("off: treasury: {e}")),
    };
    // The treasury's transactions a crash left unresolved settle before any new one.
    if let Err(e) = treasury.reconcile().await {
        alerter.raise(
            "funds_not_running",
            "critical",
            format!("funds manager not running: {e}"),
        );
        return off(format!("off: treasury reconcile: {e}"));
    }
    let (join_tx, join_rx) = mpsc::unbounded_channel();
    let manager =
        crate::funds::FundsManager::new(config, store.clone(), client, Some(treasury), wallets)
            .with_pools(pools, Some(outflow))
            .with_signals(metrics, alerter)
            .with_joins(join_rx, pid);
    match manager.settle_pending().await {
        Ok(n) if n > 0 => tracing::info!(settled = n, "funds operations left pending settled"),
        Ok(_) => {}
        Err(e) => return off(format!("off: settling pending operations: {e}")),
    }
    let status = manager.status();
    tokio::spawn(manager.run(shutdown));
    (status, Some(join_tx))
}
