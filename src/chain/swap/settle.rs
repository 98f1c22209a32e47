//! Waiting for a sent transaction until the chain decides it, and unsticking it when it does not.
//!
//! A transaction without a receipt after `receipt_timeout_secs` whose nonce is still free is
//! replaced at the same nonce for at least 10 % more gas price: by the same call again while a
//! swap's deadline has not passed (a speed-up), otherwise by a zero-value send to the wallet
//! itself (a cancel; a swap past its deadline would only revert). Every replacement is signed and
//! committed before it is broadcast, like any transaction. All transactions at one nonce are
//! candidates: the chain mines exactly one of them, its receipt decides the order, and the others
//! go on record as `dropped` (replaced). So a stuck swap can never fill twice, and a stuck nonce
//! never blocks the wallet for good. At the gas price cap no replacement is possible: the
//! candidates are re-sent as they are, and the wait goes on (an error is logged each time).

use std::time::Duration;

use alloy::eips::eip2718::Encodable2718;
use alloy::network::{NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address, Bytes, B256};
use alloy::providers::Provider;
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};

use super::{rpc, SwapError, Swapper};
use crate::chain::gas::{gas_price_cap_wei, gas_price_wei, replacement_price};
use crate::clock::wall_clock_ms;
use crate::store::chain_txs::{SignedTx, SwapOrigin, TxOutcome};

/// One transaction at the nonce being settled.
#[derive(Debug, Clone)]
pub(super) struct Candidate {
    pub id: i64,
    pub hash: B256,
    pub raw: Vec<u8>,
    pub gas_price: u128,
    /// A zero-value self-send that cancels the original.
    pub cancel: bool,
    /// A swap (sent to the private endpoint when there is one).
    pub swap: bool,
}

/// What a replacement repeats of the original (a speed-up sends the same call).
pub(super) struct Original<'a> {
    pub nonce: u64,
    pub to: Address,
    pub input: &'a [u8],
    pub gas_limit: u64,
    /// The swap's deadline (chain time, seconds); `None`: never sped up, only cancelled.
    pub deadline: Option<u64>,
    pub purpose: &'a str,
    pub reference: Option<&'a str>,
    pub origin: Option<SwapOrigin>,
}

/// The candidate the chain mined, with its receipt (`None`: another transaction took the nonce).
pub(super) type Settled = Option<(Candidate, TransactionReceipt)>;

impl Swapper {
    /// Wait until the chain decides nonce `original.nonce`, replacing it when stuck; every
    /// candidate's outcome is on record when this returns.
    pub(super) async fn settle(
        &self,
        original: &Original<'_>,
        mut candidates: Vec<Candidate>,
    ) -> Result<Settled, SwapError> {
        let mut waited = 0u64;
        loop {
            if let Some(won) = self.wait_any_receipt(&candidates).await {
                self.record_settled(&candidates, Some(&won)).await?;
                return Ok(Some(won));
            }
            waited += self.chain.receipt_timeout_secs;
            let mined = match self.mined_count().await {
                Ok(m) => m,
                Err(e) => {
                    // Cannot tell yet: keep the order in flight and ask again.
                    tracing::warn!(nonce = original.nonce, error = %e, "cannot read the nonce; waiting on");
                    continue;
                }
            };
            if original.nonce < mined {
                // The nonce is used: by one of ours (its receipt decides) or by another one.
                match self.any_receipt(&candidates).await {
                    Ok(won) => {
                        self.record_settled(&candidates, won.as_ref()).await?;
                        return Ok(won);
                    }
                    Err(e) => {
                        tracing::warn!(nonce = original.nonce, error = %e, "cannot read the receipts; waiting on");
                        continue;
                    }
                }
            }
            match self.replace(original, &candidates).await {
                Ok(Some(c)) => {
                    tracing::warn!(nonce = original.nonce, waited_secs = waited, tx_hash = %c.hash, cancel = c.cancel, gas_price_wei = c.gas_price, "no receipt: replaced at the same nonce");
                    candidates.push(c);
                }
                Ok(None) => {
                    tracing::error!(nonce = original.nonce, waited_secs = waited, "no receipt and no replacement possible (gas price cap); sending the same transactions again");
                    for c in &candidates {
                        if let Err(e) = self.broadcast(&c.raw, c.swap).await {
                            tracing::debug!(tx_hash = %c.hash, error = %e, "re-send answered with an error");
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(nonce = original.nonce, error = %e, "replacement not sent; waiting on");
                }
            }
        }
    }

    /// Sign, commit and broadcast a replacement for the stuck nonce (`None` at the price cap).
    async fn replace(
        &self,
        original: &Original<'_>,
        candidates: &[Candidate],
    ) -> Result<Option<Candidate>, SwapError> {
        let provider = self.client.provider();
        let last = candidates.iter().map(|c| c.gas_price).max().unwrap_or(0);
        let node = provider
            .get_gas_price()
            .await
            .map_err(|e| rpc("eth_gasPrice", e))?;
        let price = replacement_price(last).max(gas_price_wei(node, &self.chain)?);
        let cap = gas_price_cap_wei(&self.chain)?;
        if price > cap {
            return Ok(None);
        }
        let speed_up = match original.deadline {
            Some(deadline) => self.chain_time().await? + 2 < deadline,
            None => false,
        };
        let (to, input, limit, purpose) = if speed_up {
            (
                original.to,
                original.input.to_vec(),
                original.gas_limit,
                original.purpose,
            )
        } else {
            (self.address, Vec::new(), 21_000, "cancel")
        };
        let request = TransactionRequest::default()
            .with_from(self.address)
            .with_to(to)
            .with_input(Bytes::from(input))
            .with_nonce(original.nonce)
            .with_gas_price(price)
            .with_gas_limit(limit)
            .with_chain_id(self.client.chain_id());
        let envelope = request
            .build(&self.wallet)
            .await
            .map_err(|e| SwapError::Sign(e.to_string()))?;
        let raw = envelope.encoded_2718();
        let hash = *envelope.tx_hash();
        let id = self
            .store
            .record_signed_tx(
                &SignedTx {
                    chain_id: self.client.chain_id(),
                    wallet: self.address,
                    nonce: original.nonce,
                    tx_hash: hash.to_string(),
                    raw_tx: format!("0x{}", alloy::hex::encode(&raw)),
                    purpose: purpose.to_string(),
                    reference: original.reference.map(str::to_string),
                    gas_price_wei: price,
                    gas_limit: limit,
                    origin: if speed_up {
                        original.origin.clone()
                    } else {
                        None
                    },
                },
                wall_clock_ms(),
            )
            .await?;
        if let Err(e) = self
            .broadcast(&raw, speed_up && original.purpose == "swap")
            .await
        {
            if crate::chain::failover::surely_not_delivered(&e) {
                // It reached no node: on record as never sent, and the next replacement is
                // priced from the candidates that may be out there, not from this one.
                let outcome = TxOutcome {
                    status: "rejected",
                    error: Some(format!("not delivered: {e}")),
                    ..TxOutcome::default()
                };
                self.record_until_done(id, &outcome).await;
                return Err(SwapError::Chain(rpc("eth_sendRawTransaction", e)));
            }
            // Unanswered, it stays a candidate: it can only ever take this nonce.
            tracing::warn!(tx_hash = %hash, error = %e, "replacement broadcast answered with an error");
        }
        self.record_until_done(
            id,
            &TxOutcome {
                status: "broadcast",
                ..TxOutcome::default()
            },
        )
        .await;
        Ok(Some(Candidate {
            id,
            hash,
            raw,
            gas_price: price,
            cancel: !speed_up,
            swap: speed_up && original.purpose == "swap",
        }))
    }

    /// Poll the candidates' receipts for up to `receipt_timeout_secs`.
    async fn wait_any_receipt(
        &self,
        candidates: &[Candidate],
    ) -> Option<(Candidate, TransactionReceipt)> {
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs(self.chain.receipt_timeout_secs);
        loop {
            match self.any_receipt(candidates).await {
                Ok(Some(won)) => return Some(won),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "receipt poll failed"),
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(super) async fn any_receipt(
        &self,
        candidates: &[Candidate],
    ) -> Result<Option<(Candidate, TransactionReceipt)>, SwapError> {
        for c in candidates.iter().rev() {
            if let Some(r) = self.receipt(c.hash).await? {
                return Ok(Some((c.clone(), r)));
            }
        }
        Ok(None)
    }

    /// Every candidate's outcome: the winner's receipt; the others replaced (or, when none won,
    /// their nonce taken by another transaction).
    pub(super) async fn record_settled(
        &self,
        candidates: &[Candidate],
        won: Option<&(Candidate, TransactionReceipt)>,
    ) -> Result<(), SwapError> {
        for c in candidates {
            match won {
                Some((w, receipt)) if w.id == c.id => {
                    self.record_outcome(c.id, Some(receipt)).await?;
                }
                Some((w, _)) => {
                    let outcome = TxOutcome {
                        status: "dropped",
                        error: Some(format!("replaced at its nonce by {}", w.hash)),
                        ..TxOutcome::default()
                    };
                    self.record_until_done(c.id, &outcome).await;
                }
                None => {
                    self.record_outcome(c.id, None).await?;
                }
            }
        }
        Ok(())
    }
}
