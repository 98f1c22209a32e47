//! The backtest stage: the rollout's grid over the last `backtest_days` of Binance one-minute
//! klines for its market (downloaded when missing), filling as the live pool would — its reserves
//! now, the node's gas price, BNB's price — stored as an ordinary backtest (`backtest show`
//! reads it) and judged by the backtest gate. A grid whose cells are narrower than a round trip
//! in that pool fails here, with that reason.

use chrono::NaiveDate;

use crate::backtest::data::ReadOptions;
use crate::backtest::download::{download, ArchiveKind, DownloadRequest};
use crate::backtest::record::{self, StoredBacktest};
use crate::backtest::{run_backtest, BacktestError, BacktestResult, BacktestSpec, ParamsSource};
use crate::canary::gates::{backtest_gate, BacktestMeasures};
use crate::canary::GateReport;
use crate::chain::pool_model::live_pool_model;
use crate::config::Config;
use crate::model::Symbol;
use crate::store::canary::RolloutRecord;
use crate::store::Store;
use crate::strategy::StrategyParams;

/// What the stage did and what its gate says.
#[derive(Debug, Clone)]
pub struct BacktestStage {
    pub backtest: StoredBacktest,
    pub result: BacktestResult,
    pub measures: BacktestMeasures,
    pub report: GateReport,
    /// How the pool's gas was priced.
    pub gas_note: String,
}

/// Why the stage could not run (the rollout holds with it; nothing was judged).
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("the rollout's strategy: {0}")]
    Strategy(String),
    #[error("the live pool: {0}")]
    Pool(String),
    #[error("history: {0}")]
    Data(String),
    #[error("backtest: {0}")]
    Backtest(#[from] BacktestError),
    #[error("backtest record: {0}")]
    Record(#[from] record::RecordError),
}

/// Run the backtest stage of `rollout` for the window ending at the start of `today` (UTC).
pub async fn run_backtest_stage(
    config: &Config,
    store: &Store,
    rollout: &RolloutRecord,
    today: NaiveDate,
) -> Result<BacktestStage, StageError> {
    let symbol: Symbol = rollout
        .symbol
        .parse()
        .map_err(|e: crate::model::SymbolError| StageError::Strategy(e.to_string()))?;
    let params = StrategyParams::parse(&rollout.kind, &rollout.params)
        .map_err(|e| StageError::Strategy(e.to_string()))?;
    let live = live_pool_model(config, &symbol)
        .await
        .map_err(|e| StageError::Pool(e.to_string()))?;
    let pool = live
        .model
        .ok_or_else(|| StageError::Pool(format!("the {symbol} pool has no liquidity")))?;

    let days = i64::from(rollout.settings.backtest_days);
    let from = today - chrono::Duration::days(days);
    let request = DownloadRequest {
        symbol: symbol.clone(),
        kind: ArchiveKind::Klines {
            interval: "1m".into(),
        },
        from,
        to: today,
        today,
        base_url: config.data.archive_url.clone(),
        dest: config.base_dir.join(&config.data.dir),
    };
    let fetched = download(&request, &mut |_| {})
        .await
        .map_err(|e| StageError::Data(e.to_string()))?;
    // Every day of the window, or no judgement: a gate passed on one day of seven would claim a
    // week of evidence it does not have.
    if !fetched.missing.is_empty() || (fetched.downloaded.is_empty() && fetched.skipped.is_empty())
    {
        return Err(StageError::Data(format!(
            "{symbol} 1m klines from {from} up to {today} (excluded) are not all published: {} \
             missing; the stage runs again when they are",
            if fetched.missing.is_empty() {
                "every file".to_string()
            } else {
                fetched.missing.join(", ")
            }
        )));
    }
    let dir = request.dest_dir();
    // Exactly the window's files, in time order (a day's and a month's file never share a month
    // in one plan, and their names sort by time).
    let mut files: Vec<std::path::PathBuf> = fetched
        .downloaded
        .iter()
        .chain(&fetched.skipped)
        .map(|name| dir.join(name))
        .collect();
    files.sort();
    let midnight_us = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_micros())
    };
    let spec = BacktestSpec {
        symbol,
        params: ParamsSource::Fixed(params.clone()),
        data_label: dir.display().to_string(),
        files,
        read: ReadOptions {
            from_us: midnight_us(from),
            to_us: midnight_us(today),
            skip_bad_rows: false,
        },
        slippage_bps: 0,
        delays: Default::default(),
        amm: Some(pool),
        v3: None,
    };
    let out_root = record::outputs_root(&config.base_dir);
    let staging = record::staging_dir(&out_root, 0)?;
    let run_spec = spec.clone();
    let run_dir = staging.clone();
    // A week of minutes is a few hundred thousand prices: off the async threads.
    let run = tokio::task::spawn_blocking(move || {
        run_backtest(&run_spec, Some(&run_dir), &mut |_, _, _| {})
    })
    .await;
    let outcome = match run {
        Ok(Ok(outcome)) => outcome,
        failed => {
            // Nothing of a run that did not finish stays behind.
            let _ = std::fs::remove_dir_all(&staging);
            return Err(match failed {
                Ok(Err(e)) => StageError::Backtest(e),
                _ => StageError::Data("the backtest did not finish".into()),
            });
        }
    };
    // A crash here (tests: `canary_backtest_store=sleep:MS`, then kill -9) leaves nothing on
    // record; the stage runs again after the restart.
    tokio::task::spawn_blocking(|| crate::failpoint::hit("canary_backtest_store"))
        .await
        .map_err(|_| StageError::Data("the backtest did not finish".into()))?;
    let backtest =
        record::store_outcome(store, &outcome, &spec.data_label, &staging, &out_root).await?;
    let result = outcome.result;
    let measures = BacktestMeasures {
        return_net_of_gas_pct: if result.initial_quote > rust_decimal::Decimal::ZERO {
            result.total_pnl_net_of_gas / result.initial_quote * rust_decimal::Decimal::ONE_HUNDRED
        } else {
            rust_decimal::Decimal::ZERO
        },
        max_drawdown_pct: result.max_drawdown_pct,
        round_trips: result.round_trips,
        cost_warnings: params.amm_warnings(&pool),
    };
    let report = backtest_gate(&measures, &rollout.settings);
    Ok(BacktestStage {
        backtest,
        result,
        measures,
        report,
        gas_note: live.gas_note,
    })
}
