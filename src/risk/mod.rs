//! The risk guard: every order passes it before a venue sees it.
//!
//! Approval is a type: a venue only executes an [`Approved`] value, and only this module can make
//! one, so an unchecked order cannot reach a venue by construction.

use rust_decimal::Decimal;
use serde::Serialize;

/// An order the guard let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved<T>(T);

impl<T> Approved<T> {
    pub fn inner(&self) -> &T {
        &self.0
    }

    /// The order itself, for the venue that executes it.
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// Why an order was refused; recorded as a risk event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub enum Refusal {
    #[error("kill switch engaged")]
    KillSwitch,
    #[error("strategy is not active")]
    NotActive,
    #[error("order notional {notional} exceeds the limit {limit}")]
    MaxOrderNotional { notional: Decimal, limit: Decimal },
    #[error("trading halted: {reason}")]
    Halted { reason: String },
    #[error("insufficient funds: needs {needed}, has {available}")]
    InsufficientFunds { needed: Decimal, available: Decimal },
}

/// What the guard needs to know about one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderCheck {
    /// The strategy may trade (active, or liquidating on its way to stopped).
    pub active: bool,
    /// Quote value of the order.
    pub notional: Decimal,
    /// A sell: it reduces exposure, so it may pass the kill switch.
    pub reduces_exposure: bool,
    /// What the order spends (quote for buys, base for sells) and what the strategy has of it.
    pub spends: Decimal,
    pub available: Decimal,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RiskLimits {
    /// Largest quote value of one order; `None` = unlimited.
    pub max_order_notional: Option<Decimal>,
}

#[derive(Debug, Default)]
pub struct RiskGuard {
    pub limits: RiskLimits,
    pub kill_switch: bool,
    /// Why nothing may be placed at all, sells included (the record of it could not be kept).
    /// Lifted only when an operator clears the kill switch, which the halt's owner engages.
    pub halted: Option<String>,
}

impl RiskGuard {
    pub fn new(limits: RiskLimits) -> Self {
        RiskGuard {
            limits,
            kill_switch: false,
            halted: None,
        }
    }

    /// Check one order. Sells pass a kill switch so a stop-loss can still get out; nothing may
    /// spend more than the strategy has (a grid can get there only after losing round trips in
    /// cells too narrow for the fee).
    /// Engage or clear the kill switch; an operator's clear also lifts a halt.
    pub fn set_kill_switch(&mut self, on: bool) {
        if self.kill_switch && !on {
            self.halted = None;
        }
        self.kill_switch = on;
    }

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
        if self.kill_switch && !check.reduces_exposure {
            return Some(Refusal::KillSwitch);
        }
        if !check.active {
            return Some(Refusal::NotActive);
        }
        if let Some(limit) = self.limits.max_order_notional {
            if check.notional > limit {
                return Some(Refusal::MaxOrderNotional {
                    notional: check.notional,
                    limit,
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
}
