//! Orders between submission and their venue's answer.
//!
//! An order's life: resting (in the trigger book) → submitted (handed to the venue) → accepted
//! (the venue knows it, e.g. a broadcast transaction) → filled | failed; or refused by the risk
//! guard, or cancelled while resting. What a submitted order spends is reserved in its strategy's
//! ledger until the answer comes, so two orders in flight can never spend the same quote.

use rust_decimal::Decimal;
use serde::Serialize;

use super::venue::Execution;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderState {
    Resting,
    Submitted,
    Accepted,
    Filled,
    Failed,
    Refused,
    Cancelled,
}

impl OrderState {
    /// As stored in `orders.status` (a resting order is `pending` there, as it always was).
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Resting => "pending",
            OrderState::Submitted => "submitted",
            OrderState::Accepted => "accepted",
            OrderState::Filled => "filled",
            OrderState::Failed => "failed",
            OrderState::Refused => "refused",
            OrderState::Cancelled => "cancelled",
        }
    }
}

/// An order the venue has and has not answered for yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    /// The order as it was approved and handed to the venue.
    pub order: Execution,
    /// Quote (buys) or base (sells) held back in the ledger for this order.
    pub reserved: Decimal,
    pub submitted_us: i64,
    /// The venue's name for it once accepted (a tx hash on chain).
    pub reference: Option<String>,
}

impl InFlight {
    pub fn state(&self) -> OrderState {
        if self.reference.is_some() {
            OrderState::Accepted
        } else {
            OrderState::Submitted
        }
    }
}
