//! Stored backtest runs: the result JSON plus where its fills CSV and chart were written.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Store, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct BacktestRecord {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub symbol: String,
    pub data_path: String,
    pub result: serde_json::Value,
    pub fills_csv: Option<String>,
    pub chart: Option<String>,
    pub created_at: i64,
}

/// What to store about one run.
pub struct NewBacktest<'a> {
    pub kind: &'a str,
    pub symbol: &'a str,
    pub params: &'a serde_json::Value,
    pub data_path: &'a str,
    pub result: &'a serde_json::Value,
}

fn from_row(row: &AnyRow) -> Result<BacktestRecord, StoreError> {
    let id: i64 = row.try_get("id")?;
    let result: String = row.try_get("result")?;
    Ok(BacktestRecord {
        id,
        kind: row.try_get("kind")?,
        symbol: row.try_get("symbol")?,
        data_path: row.try_get("data_path")?,
        result: serde_json::from_str(&result)
            .map_err(|e| StoreError::Corrupt(format!("backtest {id} result: {e}")))?,
        fills_csv: row.try_get("fills_path")?,
        chart: row.try_get("chart_path")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Insert a run; returns its id (used to name its output folder).
    pub async fn insert_backtest(
        &self,
        b: &NewBacktest<'_>,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO backtests (kind, symbol, params, data_path, result, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(b.kind.to_string())
        .bind(b.symbol.to_string())
        .bind(b.params.to_string())
        .bind(b.data_path.to_string())
        .bind(b.result.to_string())
        .bind(now_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    pub async fn set_backtest_outputs(
        &self,
        id: i64,
        fills_csv: Option<&str>,
        chart: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE backtests SET fills_path = $1, chart_path = $2 WHERE id = $3")
            .bind(fills_csv.map(str::to_string))
            .bind(chart.map(str::to_string))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn get_backtest(&self, id: i64) -> Result<BacktestRecord, StoreError> {
        let row = sqlx::query(
            "SELECT id, kind, symbol, data_path, result, fills_path, chart_path, created_at \
             FROM backtests WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("backtest {id}")))?;
        from_row(&row)
    }

    pub async fn list_backtests(&self, limit: i64) -> Result<Vec<BacktestRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, symbol, data_path, result, fills_path, chart_path, created_at \
             FROM backtests ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }
}
