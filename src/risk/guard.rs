//! The guard's state and checks. The engine feeds it (orders to check, order outcomes, each
//! strategy's equity and each market's price at every mark) and applies what it answers.

use std::collections::VecDeque;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Approved, OrderCheck, Refusal, RiskLimits};
use crate::config::risk::{MarketLimits, StrategyLimits};

const DAY_US: i64 = 86_400_000_000;

/// How much the bot may trade, for everything at once (`risk mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TradingMode {
    /// Orders go as the strategies place them.
    #[default]
    Active,
    /// Only orders that reduce exposure (sells): positions wind down, nothing new is bought.
    Reducing,
    /// Nothing is placed, sells included.
    Halted,
}

impl TradingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TradingMode::Active => "active",
            TradingMode::Reducing => "reducing",
            TradingMode::Halted => "halted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "active" => Some(TradingMode::Active),
            "reducing" => Some(TradingMode::Reducing),
            "halted" => Some(TradingMode::Halted),
            _ => None,
        }
    }
}

/// What the guard decided the engine must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RiskAction {
    /// Pause the strategy (as an operator pause would), recording why.
    Pause {
        strategy: usize,
        kind: &'static str,
        message: String,
    },
    /// No new buys on the market until `until_us`.
    BuysBlocked {
        symbol: usize,
        until_us: i64,
        message: String,
    },
}

/// What survives a restart of one strategy's loss tracking (kept in its state document): a
/// restart mid-day must not hand the strategy a fresh daily budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrategyRiskState {
    /// UTC day number (days since 1970-01-01) the figures below belong to.
    pub day: i64,
    pub day_start_equity: Decimal,
    /// Loss an operator accepted by resuming after a daily-loss pause: the strategy pauses again
    /// only when it loses another `daily_loss_limit` beyond it.
    #[serde(default)]
    pub acknowledged_loss: Decimal,
}

#[derive(Debug, Default)]
struct StrategyRisk {
    limits: Option<StrategyLimits>,
    /// Its swaps spend a trading wallet's funds (a live strategy): they count as outflow.
    spends_wallet: bool,
    day: Option<StrategyRiskState>,
    /// Loss since 00:00 UTC at the last mark (negative: a gain).
    daily_loss: Decimal,
    /// `(time, failed)` of answered orders within the error-rate window.
    outcomes: VecDeque<(i64, bool)>,
    /// An operator resumed it: the loss at the next mark (the first price after a restart, if
    /// that is when) is the accepted one.
    accept_next_loss: bool,
}

#[derive(Debug, Default)]
struct MarketRisk {
    samples: VecDeque<(i64, Decimal)>,
    buys_blocked_until: i64,
    reference: Option<usize>,
}

#[derive(Debug, Default)]
pub struct RiskGuard {
    pub limits: RiskLimits,
    pub kill_switch: bool,
    /// Why nothing may be placed at all, sells included (the record of it could not be kept).
    /// Lifted only when an operator clears the kill switch, which the halt's owner engages.
    pub halted: Option<String>,
    pub mode: TradingMode,
    strategies: Vec<StrategyRisk>,
    markets: Vec<MarketRisk>,
    /// What left the trading wallets within the last hour (shared with the funds manager in
    /// the daemon).
    outflows: std::sync::Arc<super::OutflowLedger>,
    /// Keep each strategy's answered orders of the error window even without an error-rate
    /// limit, for the error rate it shows (metrics). A backtest shows none, and a grid that
    /// trades thousands of times a window would hold every answer for nothing.
    outcome_history: bool,
}

#[cfg(test)]
const HOUR_US: i64 = 3_600_000_000;

/// One strategy's figures as the guard last saw them (for metrics and `risk status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StrategyRiskView {
    pub daily_loss: Decimal,
    pub error_rate: Option<Decimal>,
    pub answered_orders: usize,
}

impl RiskGuard {
    pub fn new(limits: RiskLimits) -> Self {
        RiskGuard {
            limits,
            ..Default::default()
        }
    }

    /// Whether the error rate is shown (see `outcome_history`); the engine sets it from its
    /// recorder.
    pub fn set_outcome_history(&mut self, on: bool) {
        self.outcome_history = on;
    }

    /// Engage or clear the kill switch; an operator's clear also lifts a halt.
    pub fn set_kill_switch(&mut self, on: bool) {
        if self.kill_switch && !on {
            self.halted = None;
        }
        self.kill_switch = on;
    }

    fn strategy_mut(&mut self, ix: usize) -> &mut StrategyRisk {
        if self.strategies.len() <= ix {
            self.strategies.resize_with(ix + 1, StrategyRisk::default);
        }
        &mut self.strategies[ix]
    }

    fn market_mut(&mut self, ix: usize) -> &mut MarketRisk {
        if self.markets.len() <= ix {
            self.markets.resize_with(ix + 1, MarketRisk::default);
        }
        &mut self.markets[ix]
    }

    fn strategy_limits(&self, ix: usize) -> StrategyLimits {
        self.strategies
            .get(ix)
            .and_then(|s| s.limits)
            .unwrap_or(self.limits.strategy)
    }

    fn market_limits(&self) -> MarketLimits {
        self.limits.market
    }

    /// A strategy's own limits (its params' overrides resolved against `[risk]`).
    pub fn set_strategy_limits(&mut self, ix: usize, limits: StrategyLimits) {
        self.strategy_mut(ix).limits = Some(limits);
    }

    /// Strategy `ix` trades a wallet's funds: its swap inputs count towards the hourly outflow.
    pub fn count_outflow(&mut self, ix: usize) {
        self.strategy_mut(ix).spends_wallet = true;
    }

    /// Share the outflow ledger (the daemon gives the funds manager the same one).
    pub fn with_outflow_ledger(mut self, ledger: std::sync::Arc<super::OutflowLedger>) -> Self {
        self.outflows = ledger;
        self
    }

    /// Quote value that left the trading wallets within the hour before `now_us`.
    pub fn hourly_outflow(&self, now_us: i64) -> Decimal {
        self.outflows.last_hour(now_us.div_euclid(1000))
    }

    /// A fill of strategy `ix` spent `value` (quote) of its wallet, if it trades one.
    pub fn record_spend(&mut self, ix: usize, ts_us: i64, value: Decimal) {
        if !self.strategies.get(ix).is_some_and(|s| s.spends_wallet) {
            return;
        }
        self.outflows.record(ts_us.div_euclid(1000), value);
    }

    /// `pool` (a market priced by its pool) follows `reference` for the divergence check.
    pub fn set_reference(&mut self, pool: usize, reference: usize) {
        self.market_mut(pool).reference = Some(reference);
    }

    pub fn reference_of(&self, symbol: usize) -> Option<usize> {
        self.markets.get(symbol).and_then(|m| m.reference)
    }

    /// No new buys on `symbol` before `until_us` (a cool-down restored after a restart).
    pub fn block_buys(&mut self, symbol: usize, until_us: i64) {
        let m = self.market_mut(symbol);
        m.buys_blocked_until = m.buys_blocked_until.max(until_us);
    }

    pub fn buys_blocked_until(&self, symbol: usize, now_us: i64) -> Option<i64> {
        self.markets
            .get(symbol)
            .map(|m| m.buys_blocked_until)
            .filter(|u| *u > now_us)
    }

    pub fn state(&self, ix: usize) -> Option<StrategyRiskState> {
        self.strategies.get(ix).and_then(|s| s.day)
    }

    /// Loss tracking from the strategy's state document (after a restart).
    pub fn restore(&mut self, ix: usize, state: StrategyRiskState) {
        self.strategy_mut(ix).day = Some(state);
    }

    pub fn view(&self, ix: usize) -> Option<StrategyRiskView> {
        let s = self.strategies.get(ix)?;
        let failed = s.outcomes.iter().filter(|(_, f)| *f).count();
        let n = s.outcomes.len();
        Some(StrategyRiskView {
            daily_loss: s.daily_loss,
            error_rate: (n > 0).then(|| Decimal::from(failed) / Decimal::from(n)),
            answered_orders: n,
        })
    }

    /// Check one order. Sells pass a kill switch and the reducing mode so a stop-loss can still
    /// get out; nothing may spend more than the strategy has (a grid can get there only after
    /// losing round trips in cells too narrow for the fee).
    /// A refused order comes back with the reason, so the caller can record what was refused.
    pub fn approve<T>(&self, order: T, check: OrderCheck) -> Result<Approved<T>, (T, Refusal)> {
        match self.check(check) {
            None => Ok(Approved(order)),
            Some(refusal) => Err((order, refusal)),
        }
    }

    fn check(&self, check: OrderCheck) -> Option<Refusal> {
        if let Some(reason) = &self.halted {
            return Some(Refusal::Halted {
                reason: reason.clone(),
            });
        }
        if self.mode == TradingMode::Halted {
            return Some(Refusal::Halted {
                reason: "trading mode is halted".into(),
            });
        }
        let buys = !check.reduces_exposure;
        if self.kill_switch && buys {
            return Some(Refusal::KillSwitch);
        }
        if self.mode == TradingMode::Reducing && buys {
            return Some(Refusal::Reducing);
        }
        if !check.active {
            return Some(Refusal::NotActive);
        }
        let limits = self.strategy_limits(check.strategy);
        if let Some(limit) = limits.max_order_notional {
            if check.notional > limit {
                return Some(Refusal::MaxOrderNotional {
                    notional: check.notional,
                    limit,
                });
            }
        }
        if buys {
            if let Some(limit) = limits.max_position {
                if check.position + check.notional > limit {
                    return Some(Refusal::MaxPosition {
                        position: check.position,
                        notional: check.notional,
                        limit,
                    });
                }
            }
            if self.buys_blocked_until(check.symbol, check.ts_us).is_some() {
                return Some(Refusal::PriceJump);
            }
        }
        if let Some(limit) = self.market_limits().max_hourly_outflow {
            if self
                .strategies
                .get(check.strategy)
                .is_some_and(|s| s.spends_wallet)
            {
                let outflow = self.hourly_outflow(check.ts_us);
                if outflow + check.notional > limit {
                    return Some(Refusal::HourlyOutflow {
                        outflow,
                        notional: check.notional,
                        limit,
                    });
                }
            }
        }
        if let (Some(limit), Some(bps)) = (
            self.market_limits().max_divergence_bps,
            check.divergence_bps,
        ) {
            if bps.abs() > limit {
                return Some(Refusal::Divergence {
                    divergence_bps: bps,
                    limit_bps: limit,
                });
            }
        }
        if check.spends > check.available {
            return Some(Refusal::InsufficientFunds {
                needed: check.spends,
                available: check.available,
            });
        }
        None
    }

    /// A venue answered one of the strategy's orders. Too many failures in the window pause it.
    pub fn record_outcome(&mut self, ix: usize, ts_us: i64, failed: bool) -> Option<RiskAction> {
        let limits = self.strategy_limits(ix);
        if limits.max_error_rate.is_none() && !self.outcome_history {
            return None;
        }
        let s = self.strategy_mut(ix);
        s.outcomes.push_back((ts_us, failed));
        let since = ts_us.saturating_sub(limits.error_rate_window_us);
        while s.outcomes.front().is_some_and(|(t, _)| *t < since) {
            s.outcomes.pop_front();
        }
        let limit = limits.max_error_rate?;
        let n = s.outcomes.len();
        if !failed || n < limits.error_rate_min_orders as usize {
            return None;
        }
        let failures = s.outcomes.iter().filter(|(_, f)| *f).count();
        let rate = Decimal::from(failures) / Decimal::from(n);
        if rate <= limit {
            return None;
        }
        // Counted afresh after the pause: a resume starts a new window.
        s.outcomes.clear();
        Some(RiskAction::Pause {
            strategy: ix,
            kind: "error_rate",
            message: format!(
                "error rate {:.1} % ({failures} of {n} orders failed within {} s) is above \
                 {} {:.1} %: strategy paused",
                rate * Decimal::from(100),
                limits.error_rate_window_us / 1_000_000,
                limits.error_rate_key,
                limit * Decimal::from(100)
            ),
        })
    }

    /// The strategy's equity at a mark. Its loss since 00:00 UTC beyond the limit (and beyond
    /// what an operator accepted by resuming) pauses it if it is `active`; a paused one is
    /// tracked all the same, so a resume accepts the loss as it is.
    pub fn observe_equity(
        &mut self,
        ix: usize,
        ts_us: i64,
        equity: Decimal,
        active: bool,
    ) -> Option<RiskAction> {
        let limits = self.strategy_limits(ix);
        let today = ts_us.div_euclid(DAY_US);
        let s = self.strategy_mut(ix);
        let day = match s.day {
            Some(d) if d.day == today => d,
            _ => {
                let d = StrategyRiskState {
                    day: today,
                    day_start_equity: equity,
                    acknowledged_loss: Decimal::ZERO,
                };
                s.day = Some(d);
                d
            }
        };
        s.daily_loss = day.day_start_equity - equity;
        let mut day = day;
        if s.accept_next_loss {
            s.accept_next_loss = false;
            day.acknowledged_loss = s.daily_loss.max(Decimal::ZERO);
            s.day = Some(day);
        }
        let limit = limits.daily_loss_limit?;
        if !active || s.daily_loss <= limit + day.acknowledged_loss {
            return None;
        }
        Some(RiskAction::Pause {
            strategy: ix,
            kind: "daily_loss",
            message: format!(
                "daily loss {} since 00:00 UTC exceeds {} {limit}{}: \
                 strategy paused",
                s.daily_loss.round_dp(8).normalize(),
                limits.daily_loss_key,
                if day.acknowledged_loss > Decimal::ZERO {
                    format!(
                        " beyond the {} accepted at the last resume",
                        day.acknowledged_loss.round_dp(8).normalize()
                    )
                } else {
                    String::new()
                }
            ),
        })
    }

    /// An operator resumed the strategy: the loss today as the next mark finds it is accepted,
    /// and the error window starts afresh.
    pub fn acknowledge(&mut self, ix: usize) {
        let s = self.strategy_mut(ix);
        s.accept_next_loss = true;
        s.outcomes.clear();
    }

    /// A market's price at a mark. A move within the window beyond the limit stops new buys on
    /// it for the cool-down.
    pub fn observe_price(
        &mut self,
        symbol: usize,
        ts_us: i64,
        price: Decimal,
    ) -> Option<RiskAction> {
        let limits = self.market_limits();
        let pct = limits.price_jump_pct?;
        let m = self.market_mut(symbol);
        let since = ts_us.saturating_sub(limits.price_jump_window_us);
        while m.samples.front().is_some_and(|(t, _)| *t < since) {
            m.samples.pop_front();
        }
        m.samples.push_back((ts_us, price));
        if m.buys_blocked_until > ts_us {
            return None;
        }
        let lo = m.samples.iter().map(|(_, p)| *p).min()?;
        let hi = m.samples.iter().map(|(_, p)| *p).max()?;
        if lo <= Decimal::ZERO {
            return None;
        }
        let moved = (hi - lo) / lo * Decimal::from(100);
        if moved <= pct {
            return None;
        }
        let until = ts_us.saturating_add(limits.price_jump_cooldown_us);
        m.buys_blocked_until = until;
        m.samples.clear();
        m.samples.push_back((ts_us, price));
        Some(RiskAction::BuysBlocked {
            symbol,
            until_us: until,
            message: format!(
                "price moved {:.2} % ({lo} .. {hi}) within {} s, beyond risk.price_jump_pct {pct} %: \
                 no new buys for {} s",
                moved,
                limits.price_jump_window_us / 1_000_000,
                limits.price_jump_cooldown_us / 1_000_000
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap_or_default()
    }

    fn check(position: &str, notional: &str, sell: bool) -> OrderCheck {
        OrderCheck {
            strategy: 0,
            symbol: 0,
            active: true,
            notional: d(notional),
            reduces_exposure: sell,
            spends: Decimal::ZERO,
            available: Decimal::ONE,
            position: d(position),
            divergence_bps: None,
            ts_us: 0,
        }
    }

    #[test]
    fn position_limit_refuses_buys_only() {
        let mut g = RiskGuard::new(RiskLimits::default());
        g.set_strategy_limits(
            0,
            StrategyLimits {
                max_position: Some(d("1000")),
                ..Default::default()
            },
        );
        assert!(g.approve((), check("900", "100", false)).is_ok());
        let refused = g.approve((), check("901", "100", false)).unwrap_err().1;
        assert!(matches!(refused, Refusal::MaxPosition { .. }));
        assert!(refused.retryable());
        assert!(
            g.approve((), check("5000", "100", true)).is_ok(),
            "sells pass"
        );
    }

    #[test]
    fn daily_loss_pauses_resets_at_midnight_and_respects_a_resume() {
        let mut g = RiskGuard::new(RiskLimits::default());
        g.set_strategy_limits(
            0,
            StrategyLimits {
                daily_loss_limit: Some(d("100")),
                ..Default::default()
            },
        );
        let t0 = 3 * DAY_US + 1;
        assert_eq!(g.observe_equity(0, t0, d("1000"), true), None);
        assert_eq!(
            g.observe_equity(0, t0 + 1, d("900"), true),
            None,
            "100 is the limit"
        );
        assert!(matches!(
            g.observe_equity(0, t0 + 2, d("899.99"), true),
            Some(RiskAction::Pause {
                kind: "daily_loss",
                ..
            })
        ));
        g.acknowledge(0);
        assert_eq!(
            g.observe_equity(0, t0 + 3, d("850"), true),
            None,
            "accepted 100.01"
        );
        assert!(
            g.observe_equity(0, t0 + 4, d("749"), true).is_some(),
            "another 100"
        );
        // A new day starts from the equity then.
        assert_eq!(g.observe_equity(0, 4 * DAY_US, d("700"), true), None);
        assert_eq!(g.state(0).map(|s| s.day_start_equity), Some(d("700")));
    }

    #[test]
    fn a_daily_loss_message_names_where_its_limit_came_from() {
        let config = crate::config::RiskConfig {
            daily_loss_limit: Some(d("1000")),
            ..Default::default()
        };
        let own = crate::config::risk::StrategyRiskOverrides {
            daily_loss_limit: Some(d("100")),
            ..Default::default()
        };
        for (limits, named, not_named) in [
            (
                config.for_strategy(&own),
                crate::config::risk::OWN_DAILY_LOSS_KEY,
                "risk.daily_loss_limit",
            ),
            (
                config.for_strategy(&Default::default()),
                "risk.daily_loss_limit 1000",
                "parameter",
            ),
        ] {
            let mut g = RiskGuard::new(RiskLimits::default());
            g.set_strategy_limits(0, limits);
            let t0 = 3 * DAY_US + 1;
            g.observe_equity(0, t0, d("10000"), true);
            let Some(RiskAction::Pause { message, .. }) =
                g.observe_equity(0, t0 + 1, d("8000"), true)
            else {
                panic!("a loss of 2000 pauses");
            };
            assert!(message.contains(named), "{message}");
            assert!(!message.contains(not_named), "{message}");
        }
    }

    #[test]
    fn error_rate_needs_enough_orders() {
        let mut g = RiskGuard::new(RiskLimits::default());
        g.set_strategy_limits(
            0,
            StrategyLimits {
                max_error_rate: Some(d("0.10")),
                error_rate_min_orders: 10,
                ..Default::default()
            },
        );
        for t in 0..8 {
            assert_eq!(g.record_outcome(0, t, false), None);
        }
        assert_eq!(g.record_outcome(0, 8, true), None, "9 orders: too few");
        assert!(
            matches!(
                g.record_outcome(0, 9, true),
                Some(RiskAction::Pause {
                    kind: "error_rate",
                    ..
                })
            ),
            "2 of 10 = 20 %"
        );
    }

    #[test]
    fn a_jump_blocks_buys_for_the_cool_down() {
        let mut g = RiskGuard::new(RiskLimits {
            market: MarketLimits {
                price_jump_pct: Some(d("5")),
                price_jump_window_us: 60_000_000,
                price_jump_cooldown_us: 300_000_000,
                max_divergence_bps: None,
                max_hourly_outflow: None,
            },
            ..Default::default()
        });
        assert_eq!(g.observe_price(0, 0, d("100")), None);
        assert_eq!(g.observe_price(0, 1_000_000, d("104.9")), None);
        // Out of the window, the old price no longer counts.
        assert_eq!(g.observe_price(0, 90_000_000, d("110")), None);
        assert!(g.observe_price(0, 91_000_000, d("116")).is_some());
        let mut c = check("0", "10", false);
        c.ts_us = 91_000_001;
        assert_eq!(g.approve((), c).unwrap_err().1, Refusal::PriceJump);
        c.reduces_exposure = true;
        assert!(g.approve((), c).is_ok(), "sells pass");
        c.reduces_exposure = false;
        c.ts_us = 391_000_001;
        assert!(g.approve((), c).is_ok(), "cool-down over");
    }

    #[test]
    fn answers_are_kept_only_for_a_limit_or_a_shown_error_rate() {
        // No error-rate limit and nobody showing the rate (a backtest): nothing is kept, however
        // many orders a window answers.
        let mut quiet = RiskGuard::new(RiskLimits::default());
        let mut shown = RiskGuard::new(RiskLimits::default());
        shown.set_outcome_history(true);
        for i in 0..1_000 {
            assert!(quiet.record_outcome(0, i, i % 2 == 0).is_none());
            assert!(shown.record_outcome(0, i, i % 2 == 0).is_none());
        }
        assert_eq!(quiet.view(0).map_or(0, |v| v.answered_orders), 0);
        let v = shown.view(0).unwrap();
        assert_eq!(
            (v.answered_orders, v.error_rate),
            (1_000, Some(Decimal::new(5, 1)))
        );
        // A limit keeps them (and acts on them) whoever shows the rate.
        let mut limited = RiskGuard::new(RiskLimits {
            strategy: StrategyLimits {
                max_error_rate: Some(Decimal::new(10, 2)),
                ..StrategyLimits::default()
            },
            ..RiskLimits::default()
        });
        let paused = (0..20).any(|i| limited.record_outcome(0, i, true).is_some());
        assert!(paused, "all failing: paused");
    }

    #[test]
    fn hourly_outflow_counts_live_spends_over_a_rolling_hour() {
        let mut g = RiskGuard::new(RiskLimits {
            market: MarketLimits {
                max_hourly_outflow: Some(d("1000")),
                ..Default::default()
            },
            ..Default::default()
        });
        g.count_outflow(0);
        g.record_spend(0, 0, d("900"));
        g.record_spend(1, 0, d("5000")); // paper: no wallet spent
        let mut c = check("0", "100", true);
        c.ts_us = 1;
        assert!(g.approve((), c).is_ok(), "900 + 100 is the limit");
        c.notional = d("100.01");
        assert!(matches!(
            g.approve((), c).unwrap_err().1,
            Refusal::HourlyOutflow { .. }
        ));
        c.strategy = 1;
        assert!(
            g.approve((), c).is_ok(),
            "a paper strategy spends no wallet"
        );
        c.strategy = 0;
        c.ts_us = HOUR_US + 1_000;
        assert!(g.approve((), c).is_ok(), "an hour later");
        assert_eq!(g.hourly_outflow(HOUR_US + 1_000), Decimal::ZERO);
    }

    #[test]
    fn divergence_and_modes() {
        let mut g = RiskGuard::new(RiskLimits {
            market: MarketLimits {
                max_divergence_bps: Some(d("50")),
                ..Default::default()
            },
            ..Default::default()
        });
        let mut c = check("0", "10", true);
        c.divergence_bps = Some(d("-50.1"));
        assert!(matches!(
            g.approve((), c).unwrap_err().1,
            Refusal::Divergence { .. }
        ));
        c.divergence_bps = Some(d("49"));
        assert!(g.approve((), c).is_ok());
        g.mode = TradingMode::Reducing;
        assert!(g.approve((), c).is_ok(), "a sell reduces");
        c.reduces_exposure = false;
        assert_eq!(g.approve((), c).unwrap_err().1, Refusal::Reducing);
        g.mode = TradingMode::Halted;
        c.reduces_exposure = true;
        assert!(matches!(
            g.approve((), c).unwrap_err().1,
            Refusal::Halted { .. }
        ));
    }
}
