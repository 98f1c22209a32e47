//! Signing and sending: the bounded approval, the write-ahead record of each signed transaction
//! before it leaves, its broadcast (again the same bytes when a node does not know it), and
//! replacement at the nonce.

use std::time::Duration;

use alloy::eips::eip2718::Encodable2718;
use alloy::network::{NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;

use super::settle::{Candidate, Original};
use super::{rpc, spent, Sent, SwapError, Swapper, TxMeta};
use crate::chain::client::Token;
use crate::chain::contracts::IERC20;
use crate::chain::gas::gas_limit;
use crate::clock::wall_clock_ms;
use crate::store::chain_txs::{SignedTx, TxOutcome};

impl Swapper {
    /// Where a signed transaction is sent: a swap (or its speed-up) to the private endpoint when
    /// one is configured, and then never to a public one; everything else to the public ones.
    pub(super) async fn broadcast(
        &self,
        raw: &[u8],
        swap: bool,
    ) -> Result<(), alloy::transports::TransportError> {
        let provider = match (&self.private, swap) {
            (Some(p), true) => p,
            _ => self.client.provider(),
        };
        provider.send_raw_transaction(raw).await.map(|_| ())
    }

    /// On record: transaction `id` was never sent (`rejected`, with why); its nonce unused.
    pub(super) async fn never_sent(&self, id: i64, why: &str) -> Result<(), SwapError> {
        let outcome = TxOutcome {
            status: "rejected",
            error: Some(why.to_string()),
            ..TxOutcome::default()
        };
        self.store
            .set_tx_outcome(id, &outcome, wall_clock_ms())
            .await?;
        Ok(())
    }

    /// Send `raw` again where it goes, with a growing pause, while it is surely not delivered:
    /// until it is (or the answer is ambiguous: then it may be out there and is settled as
    /// sent), or until it is too late (a swap: its deadline, by chain time or as long again by
    /// the host's clock when no block comes; anything else: four receipt timeouts): then it
    /// was never sent (`Err`: why).
    pub(super) async fn deliver_again(
        &self,
        raw: &[u8],
        swap: bool,
        deadline: Option<u64>,
    ) -> Result<(), String> {
        let swap_deadline = deadline.filter(|d| *d != u64::MAX);
        let budget = match swap_deadline {
            Some(_) => self.chain.swap_deadline_secs,
            None => self.chain.receipt_timeout_secs.max(1) * 4,
        };
        let give_up = tokio::time::Instant::now() + Duration::from_secs(budget);
        let mut pause = Duration::from_millis(200);
        loop {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
            let error = match self.broadcast(raw, swap).await {
                Ok(()) => return Ok(()),
                Err(e) if crate::chain::failover::surely_not_delivered(&e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "broadcast got no answer; settling it as sent");
                    return Ok(());
                }
            };
            let past_deadline = match swap_deadline {
                Some(d) => self.chain_time().await.is_ok_and(|now| now + 2 >= d),
                None => false,
            };
            if past_deadline || tokio::time::Instant::now() >= give_up {
                return Err(format!(
                    "not sent: the endpoint refused it until it was too late ({error})"
                ));
            }
            tracing::warn!(error = %error, "transaction not delivered (connection refused); sending the same bytes again");
        }
    }

    /// Let `spender` (a router) spend `needed` of `token`. The allowance given is the wallet's
    /// balance of the token (at least `needed`), not unlimited: a router gone bad can take no
    /// more than the wallet held then. Re-approved when a swap needs more.
    pub(super) async fn ensure_allowance(
        &self,
        token: &Token,
        spender: Address,
        needed: U256,
    ) -> Result<(), SwapError> {
        if self
            .remembered
            .allowance(spender, token.address)
            .is_some_and(|a| a >= needed)
        {
            return Ok(());
        }
        let erc20 = IERC20::new(token.address, self.client.provider());
        let current = erc20
            .allowance(self.address, spender)
            .call()
            .await
            .map_err(|e| rpc("allowance", e))?;
        self.remembered
            .set_allowance(spender, token.address, current);
        if current >= needed {
            return Ok(());
        }
        let balance = erc20
            .balanceOf(self.address)
            .call()
            .await
            .map_err(|e| rpc("balanceOf", e))?;
        let approved = balance.max(needed);
        let call = IERC20::approveCall {
            spender,
            value: approved,
        };
        let sent = self
            .send(
                token.address,
                call.abi_encode(),
                TxMeta {
                    purpose: "approve",
                    reference: None,
                    origin: None,
                    // An approval has no deadline: stuck, it is sped up, never cancelled.
                    deadline: Some(u64::MAX),
                    value: U256::ZERO,
                },
                &|_| {},
            )
            .await?;
        match sent {
            Ok(Sent {
                receipt: Some(r),
                cancelled: false,
                ..
            }) if r.status() => {
                self.remembered
                    .set_allowance(spender, token.address, approved);
                Ok(())
            }
            Ok(Sent {
                cancelled: true,
                tx_hash,
                ..
            }) => Err(SwapError::ApproveNotMined {
                token: token.symbol.clone(),
                detail: format!(
                    "no receipt within {} s, replaced at its nonce by cancel {tx_hash}",
                    self.chain.receipt_timeout_secs
                ),
            }),
            Ok(Sent { receipt: None, .. }) => Err(SwapError::ApproveNotMined {
                token: token.symbol.clone(),
                detail: "its nonce was taken by another transaction".into(),
            }),
            Ok(s) => Err(SwapError::ApproveFailed {
                token: token.symbol.clone(),
                tx_hash: s.tx_hash.to_string(),
            }),
            Err(reason) => Err(SwapError::Chain(rpc("approve", reason))),
        }
    }

    /// Sign, record, broadcast and wait. `Ok(Err(reason))`: the transaction would revert (its gas
    /// estimate failed) or the node refused it; nothing was spent and its nonce stays free.
    pub(super) async fn send(
        &self,
        to: Address,
        input: Vec<u8>,
        meta: TxMeta<'_>,
        on_broadcast: &(dyn Fn(B256) + Sync),
    ) -> Result<Result<Sent, String>, SwapError> {
        let value = meta.value;
        let TxMeta {
            purpose,
            reference,
            origin,
            deadline,
            ..
        } = meta;
        let provider = self.client.provider();
        let request = TransactionRequest::default()
            .with_from(self.address)
            .with_to(to)
            .with_value(value)
            .with_input(Bytes::from(input.clone()));
        let swap_token = spent(&input).map(|(token, _)| token);
        let known_limit = swap_token.and_then(|t| self.remembered.swap_gas(to, t));
        // The first swap of a path and everything else: the node's estimate, which is also the
        // simulation. A swap on a known path takes the limit its first estimate gave and is
        // simulated by one `eth_call` while it is signed and committed (or not at all, if so
        // configured).
        let (limit, simulate) = match known_limit {
            Some(limit) => (limit, self.chain.simulate_swaps),
            None => match provider.estimate_gas(request.clone()).await {
                // A plain BNB transfer to an account without code costs exactly this: its limit
                // is that, so a sweep can leave exactly what it keeps.
                Ok(21_000) if input.is_empty() => (21_000, false),
                Ok(estimate) => {
                    let limit = gas_limit(estimate, self.chain.gas_limit_margin);
                    match swap_token {
                        Some(token) => {
                            let limit = limit
                                .max(self.chain.swap_gas_floor)
                                .max(super::gas_floor_of(&input));
                            self.remembered.set_swap_gas(to, token, limit);
                            (limit, false)
                        }
                        None => (limit, false),
                    }
                }
                Err(e) => {
                    // Perhaps an allowance remembered too high: read it again next time.
                    if let Some(token) = swap_token {
                        self.remembered.forget_allowance(to, token);
                    }
                    return Ok(Err(format!("simulation failed: {e}")));
                }
            },
        };
        let price = self.next_gas_price_wei().await?;
        let mut nonce_slot = self.nonce.lock().await;
        let nonce = match *nonce_slot {
            Some(n) => n,
            None => self.next_nonce().await?,
        };
        let simulation_request = request.clone().with_gas_limit(limit);
        let request = request
            .with_nonce(nonce)
            .with_gas_price(price)
            .with_gas_limit(limit)
            .with_chain_id(self.client.chain_id());
        // The simulation runs while the transaction is signed and committed.
        let sign_and_record = async {
            let envelope = request
                .build(&self.wallet)
                .await
                .map_err(|e| SwapError::Sign(e.to_string()))?;
            let raw = envelope.encoded_2718();
            let tx_hash = *envelope.tx_hash();
            let signed = SignedTx {
                chain_id: self.client.chain_id(),
                wallet: self.address,
                nonce,
                tx_hash: tx_hash.to_string(),
                raw_tx: format!("0x{}", alloy::hex::encode(&raw)),
                purpose: purpose.to_string(),
                reference: reference.map(str::to_string),
                gas_price_wei: price,
                gas_limit: limit,
                origin: origin.clone(),
            };
            let id = self
                .store
                .record_signed_tx(&signed, wall_clock_ms())
                .await?;
            Ok::<_, SwapError>((id, raw, tx_hash))
        };
        let simulation = async {
            if simulate {
                provider.call(simulation_request).await.map(|_| ())
            } else {
                Ok(())
            }
        };
        let (simulated, recorded) = tokio::join!(simulation, sign_and_record);
        let (id, raw, tx_hash) = recorded?;
        if let Err(e) = simulated {
            // Never sent: on record as such, its nonce unused.
            let reason = format!("simulation failed: {e}");
            self.never_sent(id, &reason).await?;
            if let Some(token) = swap_token {
                self.remembered.forget_allowance(to, token);
            }
            return Ok(Err(reason));
        }
        crate::failpoint::hang_if(&format!("chain.before_broadcast.{purpose}")).await;
        match self.broadcast(&raw, purpose == "swap").await {
            Ok(_) => {}
            Err(alloy::transports::RpcError::ErrorResp(e)) => {
                // The node answered and refused it: the nonce was not used.
                self.never_sent(id, &e.message).await?;
                // The nonce may be what it refused (a transaction sent from elsewhere): read it
                // again from the chain and the record before the next send.
                *nonce_slot = None;
                return Ok(Err(format!("node refused the transaction: {}", e.message)));
            }
            Err(e) if crate::chain::failover::surely_not_delivered(&e) => {
                // Refused before it was sent (a private endpoint down, every public one
                // refusing): not out there. The same bytes go to the same place again until
                // delivered; never a replacement that could reach no node either.
                if let Err(reason) = self.deliver_again(&raw, purpose == "swap", deadline).await {
                    self.never_sent(id, &reason).await?;
                    *nonce_slot = None;
                    return Ok(Err(reason));
                }
            }
            Err(e) => {
                // No answer: it may be out there. It is treated as sent: settling re-sends these
                // same bytes until the chain decides, so whatever happened it stays one
                // transaction — never a failure that would let the order be tried again.
                tracing::warn!(tx_hash = %tx_hash, error = %e, "broadcast got no answer; settling it as sent");
            }
        }
        *nonce_slot = Some(nonce + 1);
        drop(nonce_slot);
        if let Some((token, amount)) = spent(&input) {
            self.remembered.spent(to, token, amount);
        }
        on_broadcast(tx_hash);
        let broadcast = TxOutcome {
            status: "broadcast",
            ..TxOutcome::default()
        };
        // From here on the transaction may be on chain: nothing below may fail the order.
        self.record_until_done(id, &broadcast).await;
        crate::failpoint::hang_if(&format!("chain.after_broadcast.{purpose}")).await;
        let original = Original {
            nonce,
            to,
            input: &input,
            gas_limit: limit,
            deadline,
            purpose,
            reference,
            origin,
        };
        let first = Candidate {
            id,
            hash: tx_hash,
            raw,
            gas_price: price,
            cancel: false,
            swap: purpose == "swap",
        };
        Ok(Ok(match self.settle(&original, vec![first]).await? {
            Some((won, receipt)) => Sent {
                tx_hash: won.hash,
                receipt: Some(receipt),
                cancelled: won.cancel,
            },
            None => Sent {
                tx_hash,
                receipt: None,
                cancelled: false,
            },
        }))
    }
}
