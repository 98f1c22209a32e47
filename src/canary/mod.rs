//! Canary rollouts (floor 3, may use floors 0–2): backtest → paper → live canary → scale, gated.
//!
//! The pure core of a rollout: its plan (stages, lengths, sizes), the gates between stages (what
//! each measures against which threshold of `[canary]`, the paper fidelity check fill for fill)
//! and the state machine that turns gate reports, breaches and operator requests into recorded
//! transitions. It reads no clock and touches no store or chain: the daemon that drives rollouts
//! hands it time and measures, and keeps what it answers.

pub mod gates;
pub mod plan;
pub mod rollout;

pub use gates::{GateReport, GateValue};
pub use plan::{RolloutPlan, Stage};
pub use rollout::{Rollout, RolloutState, Transition, TransitionKind};
