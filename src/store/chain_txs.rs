//! Signed transactions on record: written and committed before broadcast, so a crash between the
//! two leaves the exact bytes to re-send (the same transaction, never a second one), and the
//! wallet's nonces are the bot's own (the next is one past the highest on record or on chain).

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use alloy::primitives::Address;

use super::{address_key, Store, StoreError};

/// A transaction about to be broadcast.
#[derive(Debug, Clone)]
pub struct SignedTx {
    pub chain_id: u64,
    pub wallet: Address,
    pub nonce: u64,
    pub tx_hash: String,
    /// 0x-prefixed EIP-2718 bytes.
    pub raw_tx: String,
    /// `approve`, `swap`, `cancel`, … .
    pub purpose: String,
    /// What it is for (an order's client id), if anything.
    pub reference: Option<String>,
    pub gas_price_wei: u128,
    pub gas_limit: u64,
    /// The order a swap executes.
    pub origin: Option<SwapOrigin>,
}

/// The order a swap executes, kept with its transaction: what a restart needs to apply a swap
/// that was mined while the daemon was down to its strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SwapOrigin {
    pub strategy_id: i64,
    pub tag: u64,
    /// `buy` or `sell`.
    pub side: String,
    /// A market order (start buy, liquidation) rather than a triggered limit.
    pub market: bool,
    /// What the lot a sell closes cost.
    pub lot_cost: Option<String>,
    /// The pool the swap goes to (`v2`, `v3:500`) and its address: on record before it is sent.
    pub pool_kind: Option<String>,
    pub pool_address: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChainTxRecord {
    pub id: i64,
    pub chain_id: i64,
    pub wallet: String,
    pub nonce: i64,
    pub tx_hash: String,
    pub purpose: String,
    pub reference: Option<String>,
    pub gas_price_wei: String,
    pub gas_limit: i64,
    /// `signed` (committed, maybe not yet sent) → `broadcast` → `mined` | `reverted`; or
    /// `rejected` (the node refused it; its nonce was not used), or `dropped` (found after a
    /// restart with its nonce taken by another transaction).
    pub status: String,
    pub gas_used: Option<i64>,
    pub fee_bnb: Option<String>,
    pub error: Option<String>,
    pub block_number: Option<i64>,
    pub origin: Option<SwapOrigin>,
    pub created_at: i64,
    pub updated_at: i64,
    /// A filled swap's pool (`v2`, `v3:500`), its address, and the initialized ticks it crossed.
    pub pool_kind: Option<String>,
    pub pool_address: Option<String>,
    pub ticks_crossed: Option<i64>,
}

const COLUMNS: &str = "id, chain_id, wallet, nonce, tx_hash, purpose, reference, gas_price_wei, \
     gas_limit, status, gas_used, fee_bnb, error, block_number, strategy_id, order_tag, \
     order_side, order_market, lot_cost, created_at, updated_at, pool_kind, pool_address, \
     ticks_crossed";

fn from_row(r: &AnyRow) -> Result<ChainTxRecord, StoreError> {
    Ok(ChainTxRecord {
        id: r.try_get("id")?,
        chain_id: r.try_get("chain_id")?,
        wallet: r.try_get("wallet")?,
        nonce: r.try_get("nonce")?,
        tx_hash: r.try_get("tx_hash")?,
        purpose: r.try_get("purpose")?,
        reference: r.try_get("reference")?,
        gas_price_wei: r.try_get("gas_price_wei")?,
        gas_limit: r.try_get("gas_limit")?,
        status: r.try_get("status")?,
        gas_used: r.try_get("gas_used")?,
        fee_bnb: r.try_get("fee_bnb")?,
        error: r.try_get("error")?,
        block_number: r.try_get("block_number")?,
        origin: origin_of(r)?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        pool_kind: r.try_get("pool_kind")?,
        pool_address: r.try_get("pool_address")?,
        ticks_crossed: r.try_get("ticks_crossed")?,
    })
}

fn origin_of(r: &AnyRow) -> Result<Option<SwapOrigin>, StoreError> {
    let strategy_id: Option<i64> = r.try_get("strategy_id")?;
    let tag: Option<i64> = r.try_get("order_tag")?;
    let side: Option<String> = r.try_get("order_side")?;
    let (Some(strategy_id), Some(tag), Some(side)) = (strategy_id, tag, side) else {
        return Ok(None);
    };
    let market: Option<i64> = r.try_get("order_market")?;
    Ok(Some(SwapOrigin {
        strategy_id,
        tag: tag as u64,
        side,
        market: market.unwrap_or(0) != 0,
        lot_cost: r.try_get("lot_cost")?,
        pool_kind: r.try_get("pool_kind")?,
        pool_address: r.try_get("pool_address")?,
    }))
}

fn i64_of(v: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} {v} out of range")))
}

/// A transaction to settle after a restart, with the bytes to send again.
#[derive(Debug, Clone)]
pub struct UnresolvedTx {
    pub id: i64,
    pub nonce: i64,
    pub tx_hash: String,
    pub raw_tx: String,
    pub purpose: String,
    pub reference: Option<String>,
    pub gas_price_wei: String,
}

/// What the chain made of a transaction.
#[derive(Debug, Clone, Default)]
pub struct TxOutcome {
    pub status: &'static str,
    pub gas_used: Option<u64>,
    pub fee_bnb: Option<String>,
    pub error: Option<String>,
    pub block_number: Option<u64>,
}

impl Store {
    /// Commit a signed transaction (status `signed`) before it goes anywhere.
    ///
    /// On a cluster member the wallet's lease (the treasury's: the funds lease) is checked in the
    /// same transaction: a daemon that lost it cannot record, so it never sends.
    pub async fn record_signed_tx(&self, tx: &SignedTx, now_ms: i64) -> Result<i64, StoreError> {
        let mut db = self.begin_write().await?;
        self.check_wallet_lease(&mut db, &tx.wallet).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO chain_txs (chain_id, wallet, nonce, tx_hash, raw_tx, purpose, reference, \
             gas_price_wei, gas_limit, status, created_at, updated_at, strategy_id, order_tag, \
             order_side, order_market, lot_cost, pool_kind, pool_address) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'signed', $10, $10, $11, $12, $13, $14, $15, \
             $16, $17) RETURNING id",
        )
        .bind(i64_of(tx.chain_id, "chain id")?)
        .bind(address_key(&tx.wallet))
        .bind(i64_of(tx.nonce, "nonce")?)
        .bind(tx.tx_hash.clone())
        .bind(tx.raw_tx.clone())
        .bind(tx.purpose.clone())
        .bind(tx.reference.clone())
        .bind(tx.gas_price_wei.to_string())
        .bind(i64_of(tx.gas_limit, "gas limit")?)
        .bind(now_ms)
        .bind(tx.origin.as_ref().map(|o| o.strategy_id))
        .bind(
            tx.origin
                .as_ref()
                .map(|o| i64_of(o.tag, "order tag"))
                .transpose()?,
        )
        .bind(tx.origin.as_ref().map(|o| o.side.clone()))
        .bind(tx.origin.as_ref().map(|o| i64::from(o.market)))
        .bind(tx.origin.as_ref().and_then(|o| o.lot_cost.clone()))
        .bind(tx.origin.as_ref().and_then(|o| o.pool_kind.clone()))
        .bind(tx.origin.as_ref().and_then(|o| o.pool_address.clone()))
        .fetch_one(&mut *db)
        .await?;
        db.commit().await?;
        Ok(id)
    }

    /// On a cluster member, only while it holds the lease of the transaction's wallet (a daemon
    /// that lost it leaves the outcome to the new owner's reconciliation).
    pub async fn set_tx_outcome(
        &self,
        id: i64,
        outcome: &TxOutcome,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut db = self.begin_write().await?;
        if self.fence().is_some() {
            let wallet: Option<String> =
                sqlx::query_scalar("SELECT wallet FROM chain_txs WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *db)
                    .await?;
            let wallet = wallet
                .and_then(|w| w.parse::<Address>().ok())
                .ok_or_else(|| StoreError::NotFound(format!("chain transaction {id}")))?;
            self.check_wallet_lease(&mut db, &wallet).await?;
        }
        sqlx::query(
            "UPDATE chain_txs SET status = $1, gas_used = COALESCE($2, gas_used), \
             fee_bnb = COALESCE($3, fee_bnb), error = COALESCE($4, error), \
             block_number = COALESCE($5, block_number), updated_at = $6 WHERE id = $7",
        )
        .bind(outcome.status.to_string())
        .bind(
            outcome
                .gas_used
                .map(|g| i64_of(g, "gas used"))
                .transpose()?,
        )
        .bind(outcome.fee_bnb.clone())
        .bind(outcome.error.clone())
        .bind(
            outcome
                .block_number
                .map(|b| i64_of(b, "block"))
                .transpose()?,
        )
        .bind(now_ms)
        .bind(id)
        .execute(&mut *db)
        .await?;
        db.commit().await?;
        Ok(())
    }

    /// One past the highest nonce of `wallet` on record (rejected transactions used none).
    pub async fn next_recorded_nonce(
        &self,
        chain_id: u64,
        wallet: Address,
    ) -> Result<Option<u64>, StoreError> {
        let max: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(nonce) FROM chain_txs WHERE chain_id = $1 AND wallet = $2 \
             AND status <> 'rejected'",
        )
        .bind(i64_of(chain_id, "chain id")?)
        .bind(address_key(&wallet))
        .fetch_one(&self.pool)
        .await?;
        Ok(max.map(|m| m as u64 + 1))
    }

    /// Transactions of a wallet a crash may have left unresolved (signed, maybe not sent; or
    /// sent without a known receipt), lowest nonce first.
    pub async fn unresolved_txs(
        &self,
        chain_id: u64,
        wallet: Address,
    ) -> Result<Vec<UnresolvedTx>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, nonce, tx_hash, raw_tx, purpose, reference, gas_price_wei FROM chain_txs \
             WHERE chain_id = $1 AND wallet = $2 AND status IN ('signed', 'broadcast') \
             ORDER BY nonce, id",
        )
        .bind(i64_of(chain_id, "chain id")?)
        .bind(address_key(&wallet))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UnresolvedTx {
                    id: r.try_get("id")?,
                    nonce: r.try_get("nonce")?,
                    tx_hash: r.try_get("tx_hash")?,
                    raw_tx: r.try_get("raw_tx")?,
                    purpose: r.try_get("purpose")?,
                    reference: r.try_get("reference")?,
                    gas_price_wei: r.try_get("gas_price_wei")?,
                })
            })
            .collect()
    }

    /// Transactions of a wallet, oldest first.
    pub async fn chain_txs_of(
        &self,
        chain_id: u64,
        wallet: Address,
    ) -> Result<Vec<ChainTxRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM chain_txs WHERE chain_id = $1 AND wallet = $2 ORDER BY id"
        ))
        .bind(i64_of(chain_id, "chain id")?)
        .bind(address_key(&wallet))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Swaps of a strategy the chain mined whose fill is not on record (no trade carries their
    /// hash): what a crash left between a receipt and the record of its fill. Oldest first.
    pub async fn unapplied_swaps(
        &self,
        strategy_id: i64,
    ) -> Result<Vec<ChainTxRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM chain_txs c WHERE strategy_id = $1 AND purpose = 'swap' \
             AND status = 'mined' \
             AND NOT EXISTS (SELECT 1 FROM trades t WHERE t.tx_hash = c.tx_hash) ORDER BY nonce, id"
        ))
        .bind(strategy_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// A strategy's swap transactions by order reference, newest first (for the reason an order
    /// left in flight by a crash failed).
    pub async fn swap_tx_of_reference(
        &self,
        reference: &str,
    ) -> Result<Option<ChainTxRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM chain_txs WHERE reference = $1 AND purpose = 'swap' \
             ORDER BY id DESC LIMIT 1"
        ))
        .bind(reference.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn chain_tx_by_hash(
        &self,
        tx_hash: &str,
    ) -> Result<Option<ChainTxRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM chain_txs WHERE tx_hash = $1"
        ))
        .bind(tx_hash.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Which pool a swap went to (see migration 0016): set when the swap is filled.
    pub async fn set_swap_pool(
        &self,
        tx_hash: &str,
        pool_kind: &str,
        pool_address: &str,
        ticks_crossed: Option<i64>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE chain_txs SET pool_kind = $1, pool_address = $2, ticks_crossed = $3 WHERE tx_hash = $4",
        )
        .bind(pool_kind.to_string())
        .bind(pool_address.to_string())
        .bind(ticks_crossed)
        .bind(tx_hash.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// What a mined swap's price was made of (see migration 0009).
    pub async fn set_swap_impact(
        &self,
        tx_hash: &str,
        pool_price_before: &str,
        price_impact_bps: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE chain_txs SET pool_price_before = $1, price_impact_bps = $2 WHERE tx_hash = $3",
        )
        .bind(pool_price_before.to_string())
        .bind(price_impact_bps.to_string())
        .bind(tx_hash.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
