//! `funds_operations`: every drip and sweep, written before its transaction is signed, then
//! settled from what the chain did (its transaction in `chain_txs` carries `funds-<id>`).

use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FundsOperation {
    pub id: i64,
    /// `drip` or `sweep`.
    pub kind: String,
    /// The wallet funds leave (the treasury for a drip: `treasury`), by name.
    pub wallet: String,
    pub destination: String,
    pub asset: String,
    pub amount: String,
    pub tx_hash: Option<String>,
    /// `pending` (on record, its transaction maybe signed or sent) → `completed` | `failed`;
    /// or `refused` (a limit or the allow-list stopped it: nothing was signed).
    pub status: String,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str =
    "id, kind, wallet, destination, asset, amount, tx_hash, status, error, created_at, updated_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<FundsOperation, StoreError> {
    Ok(FundsOperation {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        wallet: r.try_get("wallet")?,
        destination: r.try_get("destination")?,
        asset: r.try_get("asset")?,
        amount: r.try_get("amount")?,
        tx_hash: r.try_get("tx_hash")?,
        status: r.try_get("status")?,
        error: r.try_get("error")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// The `chain_txs.reference` of operation `id`'s transaction.
pub fn reference_of(id: i64) -> String {
    format!("funds-{id}")
}

impl Store {
    /// Record an operation before anything is signed; `status` is `pending`, or `refused` with
    /// why (then nothing will be).
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_funds_operation(
        &self,
        kind: &str,
        wallet: &str,
        destination: &str,
        asset: &str,
        amount: Decimal,
        quote_value: Option<Decimal>,
        status: &str,
        error: Option<&str>,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO funds_operations (kind, wallet, destination, asset, amount, tx_hash, \
             status, error, created_at, updated_at, quote_value) \
             VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, $8, $8, $9) RETURNING id",
        )
        .bind(kind.to_string())
        .bind(wallet.to_string())
        .bind(destination_key(destination))
        .bind(asset.to_string())
        .bind(amount.normalize().to_string())
        .bind(status.to_string())
        .bind(error.map(str::to_string))
        .bind(now_ms)
        .bind(quote_value.map(|v| v.normalize().to_string()))
        .fetch_one(&mut *tx)
        .await?;
        if status == "refused" {
            let message = format!(
                "{kind} of {} {asset} from {wallet} to {destination} refused: {}",
                amount.normalize(),
                error.unwrap_or("")
            );
            super::paper::insert_risk_event(
                &mut tx,
                None,
                "funds_refused",
                "warning",
                &message,
                now_ms,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    pub async fn settle_funds_operation(
        &self,
        id: i64,
        status: &str,
        tx_hash: Option<&str>,
        error: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE funds_operations SET status = $1, tx_hash = COALESCE($2, tx_hash), error = $3, \
             updated_at = $4 WHERE id = $5",
        )
        .bind(status.to_string())
        .bind(tx_hash.map(str::to_string))
        .bind(error.map(str::to_string))
        .bind(now_ms)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Newest first, optionally of one kind.
    pub async fn funds_operations(
        &self,
        kind: Option<&str>,
        limit: i64,
    ) -> Result<Vec<FundsOperation>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM funds_operations WHERE ($1 IS NULL OR kind = $1) \
             ORDER BY id DESC LIMIT $2"
        ))
        .bind(kind.map(str::to_string))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Operations still `pending` (a restart settles them from the chain).
    pub async fn pending_funds_operations(&self) -> Result<Vec<FundsOperation>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM funds_operations WHERE status = 'pending' ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// A risk event outside the engine (the funds manager's).
    pub async fn record_risk_event(
        &self,
        strategy_id: Option<i64>,
        kind: &str,
        severity: &str,
        message: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        super::paper::insert_risk_event(&mut conn, strategy_id, kind, severity, message, now_ms)
            .await
    }

    /// BNB the transactions of `wallet` (address) cost since `since_ms`.
    pub async fn gas_spent_since(
        &self,
        wallet: alloy::primitives::Address,
        since_ms: i64,
    ) -> Result<Decimal, StoreError> {
        let fees: Vec<Option<String>> = sqlx::query_scalar(
            "SELECT fee_bnb FROM chain_txs WHERE wallet = $1 AND updated_at >= $2 \
             AND status IN ('mined', 'reverted')",
        )
        .bind(super::address_key(&wallet))
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(fees
            .into_iter()
            .flatten()
            .filter_map(|f| f.parse::<Decimal>().ok())
            .sum())
    }

    /// Quote value that left the trading wallets since `since_ms`: live strategies' swap inputs
    /// (a buy's quote, a sell's proceeds) and drips and sweeps with a known value.
    pub async fn outflow_quote_since(&self, since_ms: i64) -> Result<Decimal, StoreError> {
        Ok(self
            .outflow_entries_since(since_ms)
            .await?
            .into_iter()
            .map(|(_, v)| v)
            .sum())
    }

    /// What [`Store::outflow_quote_since`] adds up, entry by entry: `(time ms, quote value)` of
    /// each live swap and each drip or sweep since `since_ms`, oldest first. A restarted daemon
    /// fills its outflow ledger from this, so its limit and its metric go on from where they were.
    pub async fn outflow_entries_since(
        &self,
        since_ms: i64,
    ) -> Result<Vec<(i64, Decimal)>, StoreError> {
        let swaps: Vec<(i64, String)> = sqlx::query_as(
            "SELECT t.executed_at, t.quote_amount FROM trades t JOIN strategies s ON s.id = t.strategy_id \
             WHERE s.mode = 'live' AND t.executed_at >= $1",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        let funds: Vec<(i64, Option<String>)> = sqlx::query_as(
            "SELECT created_at, quote_value FROM funds_operations WHERE created_at >= $1 \
             AND status IN ('pending', 'completed')",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        let mut entries: Vec<(i64, Decimal)> = swaps
            .into_iter()
            .map(|(at, v)| (at, Some(v)))
            .chain(funds)
            .filter_map(|(at, v)| Some((at, v?.parse::<Decimal>().ok()?)))
            .collect();
        entries.sort_by_key(|(at, _)| *at);
        Ok(entries)
    }

    /// How much of `asset` drips and sweeps moved (or are moving) since `since_ms`.
    pub async fn funds_outflow_since(
        &self,
        asset: &str,
        since_ms: i64,
    ) -> Result<Decimal, StoreError> {
        let amounts: Vec<String> = sqlx::query_scalar(
            "SELECT amount FROM funds_operations WHERE asset = $1 AND created_at >= $2 \
             AND status IN ('pending', 'completed')",
        )
        .bind(asset.to_string())
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        amounts
            .iter()
            .map(|a| {
                a.parse::<Decimal>()
                    .map_err(|_| StoreError::Corrupt(format!("funds amount {a:?}")))
            })
            .sum()
    }
}

/// A destination that is an address is stored in the one spelling of addresses on record.
fn destination_key(destination: &str) -> String {
    match destination.parse::<alloy::primitives::Address>() {
        Ok(a) => super::address_key(&a),
        Err(_) => destination.to_string(),
    }
}
