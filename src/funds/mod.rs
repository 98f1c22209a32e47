//! The funds manager (floor 9, may use floors 0–8): gas drips and sweeps.
//!
//! The funds manager: keeps every live trading wallet in gas (drips from the treasury) and sweeps
//! what it holds above its working capital back to the treasury, within an allow-list of
//! destinations and an hourly outflow limit per asset. Every drip and sweep is a
//! `funds_operations` row written before its transaction is signed, and its transaction goes
//! through the wallet's own swapper (write-ahead in `chain_txs`, the bot's own nonces), so a
//! crash can neither send one twice nor lose its record.

pub mod manager;

pub use manager::{FundsManager, Operation, Outcome};

use crate::chain::swap::SwapError;
use crate::chain::ChainError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum FundsError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Chain(#[from] ChainError),
    #[error("{0}")]
    Swap(#[from] SwapError),
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The operation was refused (allow-list, limit, balance); its row says so.
    #[error("refused: {0}")]
    Refused(String),
}

/// What joins a running funds manager: the wallet of a live strategy created while the daemon
/// runs (with its swapper), or the pool of a market it brought (assets priced through it).
pub enum FundsJoin {
    Wallet(String, std::sync::Arc<crate::chain::Swapper>),
    Pool(String, crate::chain::Pool),
}

/// Pause every active live strategy of `wallet`, whose BNB (`bnb`) is below `min`, each on record
/// with a `low_gas` risk event: its swaps would start failing for gas. `why`: why no drip came.
/// Returns each paused strategy with the reason, for the caller to alert.
pub async fn pause_for_low_gas(
    store: &crate::store::Store,
    wallet: &str,
    address: alloy::primitives::Address,
    bnb: rust_decimal::Decimal,
    min: rust_decimal::Decimal,
    why: &str,
) -> Result<Vec<(i64, String)>, StoreError> {
    use crate::strategy::{LifecycleAction, StrategyMode, StrategyStatus};
    let reason = format!(
        "low gas: wallet {wallet} ({address}) has {} BNB, below funds.gas_min_bnb {min}, and no \
         drip was possible ({why})",
        bnb.normalize(),
    );
    let audit = crate::store::AuditContext::new("risk guard: low gas", Vec::new());
    let now = crate::clock::wall_clock_ms;
    let mut paused = Vec::new();
    for s in store.list_strategies(None).await? {
        if s.wallet.as_deref() != Some(wallet)
            || s.mode != StrategyMode::Live
            || s.status != StrategyStatus::Active
        {
            continue;
        }
        // The event first: whoever sees the strategy paused finds why on record.
        store
            .record_risk_event(Some(s.id), "low_gas", "critical", &reason, now())
            .await?;
        store
            .transition_strategy(
                &crate::store::StrategyRef::Id(s.id),
                LifecycleAction::Pause,
                Some(&format!("risk: {reason}")),
                &audit,
                now(),
            )
            .await?;
        tracing::warn!(strategy = s.id, %reason, "strategy paused: low gas");
        paused.push((s.id, reason.clone()));
    }
    Ok(paused)
}

/// The treasury's key: `BSC_BOT_TREASURY_PRIVATE_KEY`, or the keystore `funds.treasury_keystore`
/// unlocked with `BSC_BOT_KEYSTORE_PASSWORD`; it must be the configured treasury's.
pub fn treasury_signer(
    config: &crate::config::Config,
) -> Result<alloy::signers::local::PrivateKeySigner, FundsError> {
    let funds = &config.funds;
    let signer = if funds.treasury_keystore.is_empty() {
        let key = std::env::var("BSC_BOT_TREASURY_PRIVATE_KEY").map_err(|_| {
            FundsError::Config(
                "the treasury's key: set BSC_BOT_TREASURY_PRIVATE_KEY or funds.treasury_keystore"
                    .into(),
            )
        })?;
        key.trim()
            .parse::<alloy::signers::local::PrivateKeySigner>()
            // Never the key itself in the message.
            .map_err(|_| {
                FundsError::Config("BSC_BOT_TREASURY_PRIVATE_KEY is not a private key".into())
            })?
    } else {
        let password = std::env::var("BSC_BOT_KEYSTORE_PASSWORD").map_err(|_| {
            FundsError::Config("BSC_BOT_KEYSTORE_PASSWORD is not set (treasury keystore)".into())
        })?;
        crate::wallet::Keystore::of_config(config)
            .unlock(&funds.treasury_keystore, &password)
            .map_err(|e| FundsError::Config(format!("treasury keystore: {e}")))?
    };
    let configured: alloy::primitives::Address = funds
        .treasury
        .parse()
        .map_err(|_| FundsError::Config("funds.treasury is not an address".into()))?;
    if signer.address() != configured {
        return Err(FundsError::Config(format!(
            "the treasury key is for {}, not funds.treasury {configured}",
            signer.address()
        )));
    }
    Ok(signer)
}
