//! The funds manager: keeps every live trading wallet in gas (drips from the treasury) and sweeps
//! what it holds above its working capital back to the treasury, within an allow-list of
//! destinations and an hourly outflow limit per asset. Every drip and sweep is a
//! `funds_operations` row written before its transaction is signed, and its transaction goes
//! through the wallet's own swapper (write-ahead in `chain_txs`, the bot's own nonces), so a
//! crash can neither send one twice nor lose its record.

pub mod config;
pub mod manager;

pub use config::FundsConfig;
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
