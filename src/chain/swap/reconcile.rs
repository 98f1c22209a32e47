//! After a crash: every transaction on record without an outcome is settled from the chain (its
//! receipt, the same bytes again, or dropped when its nonce is taken), and the nonce this wallet
//! uses next.

use std::time::Duration;

use alloy::primitives::B256;
use alloy::providers::Provider;
use alloy::rpc::types::TransactionReceipt;

use super::settle::{Candidate, Original};
use super::{rpc, Reconciled, SwapError, Swapper};
use crate::chain::gas::fee_bnb;
use crate::clock::wall_clock_ms;
use crate::store::chain_txs::TxOutcome;

impl Swapper {
    /// Settle every transaction of this wallet left unresolved by a crash, before anything new is
    /// sent, one nonce at a time, oldest first (all transactions on record at a nonce — an
    /// original and its replacements — settle together): a receipt → `mined` / `reverted`, the
    /// others at its nonce `dropped`; no receipt and the nonce still free → the same signed bytes
    /// again (the same transactions: only one can be mined), then settled as any sent
    /// transaction (cancelled when stuck: the swap's deadline is unknown here); the nonce taken
    /// by another transaction → `dropped`.
    pub async fn reconcile(&self) -> Result<Vec<Reconciled>, SwapError> {
        let mut out = Vec::new();
        let pending = self
            .store
            .unresolved_txs(self.client.chain_id(), self.address)
            .await?;
        let mut at_nonce: std::collections::BTreeMap<i64, Vec<_>> = Default::default();
        for tx in pending {
            at_nonce.entry(tx.nonce).or_default().push(tx);
        }
        for (nonce, txs) in at_nonce {
            let mut candidates = Vec::new();
            for tx in &txs {
                candidates.push(Candidate {
                    id: tx.id,
                    hash: tx.tx_hash.parse().map_err(|_| {
                        SwapError::Sign(format!("tx hash {} on record is not a hash", tx.tx_hash))
                    })?,
                    raw: alloy::hex::decode(tx.raw_tx.trim_start_matches("0x"))
                        .map_err(|e| SwapError::Sign(format!("raw tx on record: {e}")))?,
                    gas_price: tx.gas_price_wei.parse().unwrap_or(0),
                    cancel: tx.purpose == "cancel",
                    swap: tx.purpose == "swap",
                });
            }
            let nonce = nonce as u64;
            let mut action = "found mined";
            let won = match self.any_receipt(&candidates).await? {
                Some(won) => {
                    self.record_settled(&candidates, Some(&won)).await?;
                    Some(won)
                }
                None if nonce < self.mined_count().await? => {
                    action = "nonce taken";
                    self.record_settled(&candidates, None).await?;
                    None
                }
                None => {
                    action = "re-broadcast";
                    for c in candidates.iter().rev() {
                        if let Err(e) = self.broadcast(&c.raw, c.swap).await {
                            // "already known" is fine: it is out there; settling decides.
                            tracing::warn!(tx_hash = %c.hash, error = %e, "re-broadcast answered with an error");
                        }
                    }
                    let original = Original {
                        nonce,
                        to: self.address,
                        input: &[],
                        gas_limit: 21_000,
                        deadline: None,
                        purpose: "cancel",
                        reference: txs.first().and_then(|t| t.reference.as_deref()),
                        origin: None,
                    };
                    self.settle(&original, candidates.clone()).await?
                }
            };
            for tx in &txs {
                let status = match &won {
                    Some((w, r)) if w.id == tx.id => {
                        if r.status() {
                            "mined"
                        } else {
                            "reverted"
                        }
                    }
                    _ => "dropped",
                };
                tracing::info!(tx_hash = %tx.tx_hash, nonce = tx.nonce, action, status, "reconciled");
                out.push(Reconciled {
                    tx_hash: tx.tx_hash.parse().unwrap_or_default(),
                    purpose: tx.purpose.clone(),
                    reference: tx.reference.clone(),
                    status,
                });
            }
        }
        Ok(out)
    }

    /// Write a sent transaction's outcome, retrying until the database takes it (the transaction
    /// is out there; its record must follow, and the order must not be failed for a database
    /// hiccup).
    pub(super) async fn record_until_done(&self, id: i64, outcome: &TxOutcome) {
        let mut pause = Duration::from_millis(100);
        while let Err(e) = self
            .store
            .set_tx_outcome(id, outcome, wall_clock_ms())
            .await
        {
            tracing::warn!(tx_id = id, error = %e, "cannot record a transaction's outcome yet; retrying");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }

    /// Put what the chain decided on record: the receipt's status and gas, or `dropped` when the
    /// transaction's nonce went to another one.
    pub(super) async fn record_outcome(
        &self,
        id: i64,
        receipt: Option<&TransactionReceipt>,
    ) -> Result<&'static str, SwapError> {
        let outcome = match receipt {
            Some(r) => TxOutcome {
                status: if r.status() { "mined" } else { "reverted" },
                gas_used: Some(r.gas_used),
                fee_bnb: fee_bnb(r.gas_used, r.effective_gas_price)
                    .ok()
                    .map(|f| f.normalize().to_string()),
                error: (!r.status()).then(|| "reverted".to_string()),
                block_number: r.block_number,
            },
            None => TxOutcome {
                status: "dropped",
                error: Some("its nonce was used by another transaction".into()),
                ..TxOutcome::default()
            },
        };
        self.record_until_done(id, &outcome).await;
        Ok(outcome.status)
    }

    /// How many of this wallet's transactions the chain has mined (its next free nonce).
    pub(super) async fn mined_count(&self) -> Result<u64, SwapError> {
        self.client
            .provider()
            .get_transaction_count(self.address)
            .await
            .map_err(|e| SwapError::Chain(rpc("eth_getTransactionCount", e)))
    }

    pub(super) async fn receipt(
        &self,
        hash: B256,
    ) -> Result<Option<TransactionReceipt>, SwapError> {
        self.client
            .provider()
            .get_transaction_receipt(hash)
            .await
            .map_err(|e| SwapError::Chain(rpc("eth_getTransactionReceipt", e)))
    }

    /// The next nonce: past everything on chain (pending included) and everything on record.
    pub(super) async fn next_nonce(&self) -> Result<u64, SwapError> {
        let on_chain = self
            .client
            .provider()
            .get_transaction_count(self.address)
            .pending()
            .await
            .map_err(|e| rpc("eth_getTransactionCount", e))?;
        let recorded = self
            .store
            .next_recorded_nonce(self.client.chain_id(), self.address)
            .await?
            .unwrap_or(0);
        Ok(on_chain.max(recorded))
    }
}
