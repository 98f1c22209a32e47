//! What a backtest run shows while it runs and when it fails: progress on a terminal and the
//! error's exit code. Where its outputs go and how it is put on record is `backtest::record`.

use std::io::IsTerminal;
use std::time::Instant;

use super::{CliError, Context};
use crate::backtest::BacktestError;

/// A progress line on stderr (only on a terminal, never with `--json`), redrawn at most five
/// times a second: `label: 42% [#####.....] 330 MB read 610 MB/s` plus `extra`.
pub(crate) fn progress_line(
    ctx: &Context,
    label: &'static str,
    extra: String,
) -> impl FnMut(u64, u64, u64) {
    let show = !ctx.json && std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut last_draw: Option<Instant> = None;
    move |done: u64, total: u64, _ticks: u64| {
        if show && (last_draw.is_none_or(|t| t.elapsed().as_millis() >= 200) || done == total) {
            last_draw = Some(Instant::now());
            let pct = (done * 100).checked_div(total).unwrap_or(100).min(100);
            let bar: String = (0..20)
                .map(|i| if i * 5 < pct { '#' } else { '.' })
                .collect();
            let mb = done as f64 / 1e6;
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            let eta = if done > 0 && done < total {
                format!("  eta {:.0} s", secs * (total - done) as f64 / done as f64)
            } else {
                String::new()
            };
            eprint!(
                "\r{label}: {pct:>3}% [{bar}] {mb:.0} MB read {:.0} MB/s{extra}{eta}   ",
                mb / secs
            );
            if done == total {
                eprintln!();
            }
        }
    }
}

pub(crate) fn backtest_error(e: BacktestError) -> CliError {
    match e {
        BacktestError::Io(_) => CliError::runtime(e.to_string()),
        _ => CliError::invalid(e.to_string()),
    }
}
