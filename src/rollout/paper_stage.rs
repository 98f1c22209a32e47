//! The paper stage's evidence: the ticks a canary's paper strategy traded on, kept as it trades,
//! and the same grid replayed over exactly those ticks through the one engine. Paper's fills must
//! equal the replay's fill for fill (the fidelity check); the first that differs is named.

use std::io::{BufWriter, Write};
use std::path::Path;

use crate::amm::AmmPool;
use crate::backtest::data::{ReadOptions, TickReader};
use crate::canary::gates::{first_difference, PaperMeasures};
use crate::engine::{Engine, MemoryRecorder};
use crate::model::order::Fill;
use crate::model::PriceKey;
use crate::risk::{RiskGuard, RiskLimits};
use crate::strategy::{StrategyParams, StrategyStatus};
use crate::venue::{SimVenue, SimVenueConfig};

use super::StageError;

/// Where a rollout's paper strategy's ticks go: `<base_dir>/data/canary/<rollout>/`.
pub fn tick_log_path(
    base_dir: &std::path::Path,
    rollout_id: i64,
    strategy_id: i64,
) -> std::path::PathBuf {
    base_dir
        .join("data")
        .join("canary")
        .join(rollout_id.to_string())
        .join(format!("paper-ticks-{strategy_id}.csv"))
}

/// The ticks one paper strategy's market delivered while it traded, as rows of Binance's trades
/// layout (`id,price,qty,quote_qty,time,is_buyer_maker`, time in µs) so the backtest reader
/// replays them exactly: the price as the engine's key printed in full, and the time the engine
/// traded the tick at (the live loop hands it the tick's receive time, not the exchange's).
pub struct TickLog {
    file: BufWriter<std::fs::File>,
    next_id: u64,
}

impl TickLog {
    /// Open `path` to append (created private when new, never through a link): a restarted
    /// daemon goes on with the log it had. A last row a crash left half-written is cut off (the
    /// tick it was is lost, and the replay says so: its id is missing).
    pub fn open(path: &Path) -> Result<TickLog, StageError> {
        let failed = |e: &dyn std::fmt::Display| StageError::Data(format!("tick log: {e}"));
        let file = crate::private_files::open_append(path).map_err(|e| failed(&e))?;
        let text = std::fs::read(path).map_err(|e| failed(&format!("{}: {e}", path.display())))?;
        let whole = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        if whole < text.len() {
            file.set_len(whole as u64).map_err(|e| failed(&e))?;
        }
        let rows = text[..whole].iter().filter(|b| **b == b'\n').count() as u64;
        // A row cut off above leaves its id unused.
        let next_id = if whole < text.len() { rows + 1 } else { rows };
        Ok(TickLog {
            file: BufWriter::new(file),
            next_id,
        })
    }

    /// One tick, at the time the engine traded it (`MarketTick::received_ts_us`).
    pub fn record(&mut self, ts_us: i64, price: PriceKey) -> Result<(), StageError> {
        let Some(p) = price.to_decimal() else {
            return Err(StageError::Data(format!(
                "tick price key {price:?} out of range"
            )));
        };
        let p = p.normalize();
        writeln!(self.file, "{},{p},1,{p},{ts_us},false", self.next_id)
            .map_err(|e| StageError::Data(format!("tick log: {e}")))?;
        self.next_id += 1;
        Ok(())
    }

    /// On disk before the gate reads it.
    pub fn flush(&mut self) -> Result<(), StageError> {
        self.file
            .flush()
            .map_err(|e| StageError::Data(format!("tick log: {e}")))
    }
}

/// How the paper strategy traded, which the replay must match: its parameters, the risk limits
/// it ran under and the paper fill model (limit fills, or through a pool).
pub struct PaperRun<'a> {
    pub params: &'a StrategyParams,
    pub risk: RiskLimits,
    pub amm: Option<AmmPool>,
    /// The V3 pool paper fills through (`market.paper_pool_profile`), if one.
    pub v3: Option<crate::amm::v3::V3FillModel>,
    pub slippage_bps: u32,
}

/// The grid over exactly the ticks in `log`, through the one engine and the simulated venue the
/// paper strategy used: the fills paper should have.
pub fn replay_fills(run: &PaperRun<'_>, log: &Path) -> Result<Vec<Fill>, StageError> {
    let mut engine = Engine::new(
        1,
        SimVenue::new(SimVenueConfig {
            slippage_bps: run.slippage_bps,
            amm: run.amm,
        })
        .with_v3(run.v3.clone()),
        RiskGuard::new(run.risk),
        MemoryRecorder::default(),
    );
    engine.add_strategy(
        run.params.build(),
        0,
        run.params.fee_bps(),
        StrategyStatus::Active,
        None,
    );
    let mut reader = TickReader::new(ReadOptions::default());
    reader
        .read_file(
            log,
            &mut |ts, price| engine.on_tick(0, ts, price),
            &mut |_| {},
        )
        .map_err(|e| StageError::Data(format!("{}: {e}", log.display())))?;
    // A tick missing from the log (a crash cut its row) means paper saw what the replay cannot:
    // the check would judge on less than paper traded on.
    if reader.summary.gaps > 0 {
        return Err(StageError::Data(format!(
            "{}: {} tick(s) missing from the log ({} gap(s)); paper cannot be checked against it",
            log.display(),
            reader.summary.missing,
            reader.summary.gaps
        )));
    }
    engine.finish();
    Ok(engine.into_recorder().fills)
}

/// The paper gate's measures: paper's fills against the replay's, with the stage's risk events
/// and return.
pub fn paper_measures(
    paper: &[Fill],
    replayed: &[Fill],
    risk_events: u64,
    return_pct: rust_decimal::Decimal,
) -> PaperMeasures {
    PaperMeasures {
        fills: paper.len() as u64,
        difference: first_difference(paper, replayed),
        risk_events,
        return_pct,
    }
}

/// Paper's fills as the record keeps them (oldest first), for the check: the record keeps a
/// fill's time in milliseconds, so [`at_ms_precision`] brings the replay to the same.
pub fn paper_fills_of(
    trades: &[crate::store::paper::TradeRecord],
) -> Result<Vec<Fill>, StageError> {
    use crate::model::order::Side;
    let mut trades: Vec<&crate::store::paper::TradeRecord> =
        trades.iter().filter(|t| t.status == "filled").collect();
    trades.sort_by_key(|t| (t.executed_at, t.id));
    let number = |what: &str, text: &str| {
        text.parse::<rust_decimal::Decimal>()
            .map_err(|_| StageError::Data(format!("a trade's {what} {text:?} on record")))
    };
    trades
        .into_iter()
        .map(|t| {
            Ok(Fill {
                order_id: t.order_id.unwrap_or_default() as u64,
                strategy: 0,
                tag: 0,
                side: match t.side.as_str() {
                    "buy" => Side::Buy,
                    "sell" => Side::Sell,
                    other => {
                        return Err(StageError::Data(format!(
                            "a trade's side {other:?} on record"
                        )))
                    }
                },
                market: false,
                price: number("price", &t.price)?,
                base: number("base amount", &t.base_amount)?,
                quote: number("quote amount", &t.quote_amount)?,
                fee: number("fee", &t.fee_quote)?,
                impact: rust_decimal::Decimal::ZERO,
                gas: rust_decimal::Decimal::ZERO,
                gas_bnb: rust_decimal::Decimal::ZERO,
                bnb_price: None,
                lot_cost: None,
                ts_us: t.executed_at.saturating_mul(1000),
            })
        })
        .collect()
}

/// Paper's fills on record against the replay of the tick log read just before them. The paper
/// strategy trades on while the gate reads: a tick is logged before the engine trades it and its
/// fill reaches the record through the writer a moment later, so a record that is only behind
/// the replay (every fill it has equal) is not yet a difference, and fills past the replay's end
/// are of ticks logged after it was read.
#[derive(Debug, PartialEq)]
pub enum RecordLook {
    /// Behind the replay: read the record again (these fills, if it never catches up).
    Behind(Vec<Fill>),
    /// What to compare: the record as it is, or cut to the replay's length.
    Compare(Vec<Fill>),
}

pub fn record_against_replay(mut fills: Vec<Fill>, replayed: &[Fill]) -> RecordLook {
    let common = fills.len().min(replayed.len());
    if first_difference(&fills[..common], &replayed[..common]).is_some() {
        return RecordLook::Compare(fills);
    }
    if fills.len() < replayed.len() {
        return RecordLook::Behind(fills);
    }
    fills.truncate(replayed.len());
    RecordLook::Compare(fills)
}

/// Fill times cut to the millisecond, as the record keeps them.
pub fn at_ms_precision(mut fills: Vec<Fill>) -> Vec<Fill> {
    for f in &mut fills {
        f.ts_us = f.ts_us.div_euclid(1000) * 1000;
    }
    fills
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canary::gates::tests::fill;
    use crate::model::order::Side;

    #[test]
    fn a_record_behind_the_replay_is_read_again_and_one_past_it_is_cut() {
        let replay = vec![
            fill(Side::Buy, "585", 1_000),
            fill(Side::Sell, "600", 2_000),
            fill(Side::Buy, "585", 3_000),
        ];
        // The last fill not written yet: read again, not a difference.
        assert_eq!(
            record_against_replay(replay[..2].to_vec(), &replay),
            RecordLook::Behind(replay[..2].to_vec())
        );
        // A fill of a tick logged after the log was read: left for the next look.
        let mut ahead = replay.clone();
        ahead.push(fill(Side::Sell, "600", 4_000));
        assert_eq!(
            record_against_replay(ahead, &replay),
            RecordLook::Compare(replay.clone())
        );
        // A fill that differs is compared as it is, however long either side.
        let mut differs = replay[..1].to_vec();
        differs.push(fill(Side::Sell, "601", 2_000));
        assert_eq!(
            record_against_replay(differs.clone(), &replay),
            RecordLook::Compare(differs)
        );
        assert_eq!(
            record_against_replay(replay.clone(), &replay),
            RecordLook::Compare(replay.clone())
        );
    }
}
