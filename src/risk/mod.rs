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
}

impl RiskGuard {
    pub fn new(limits: RiskLimits) -> Self {
        RiskGuard {
            limits,
            kill_switch: false,
        }
    }

    /// Check one order of a strategy that is `active` with quote value `notional`.
    /// Closing sells (`reduces_exposure`) pass a kill switch so a stop-loss can still get out.
    pub fn approve<T>(
        &self,
        order: T,
        active: bool,
        notional: Decimal,
        reduces_exposure: bool,
    ) -> Result<Approved<T>, Refusal> {
        if self.kill_switch && !reduces_exposure {
            return Err(Refusal::KillSwitch);
        }
        if !active {
            return Err(Refusal::NotActive);
        }
        if let Some(limit) = self.limits.max_order_notional {
            if notional > limit {
                return Err(Refusal::MaxOrderNotional { notional, limit });
            }
        }
        Ok(Approved(order))
    }
}
