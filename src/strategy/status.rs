//! Strategy lifecycle states and the transitions operators may ask for.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Desired state of a strategy as stored in the database (the daemon follows it).
/// `stopped` is final: a stopped grid has cancelled its orders and an operator who wants it back
/// creates a new one, so history of the old one stays intact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StrategyStatus {
    Active,
    Paused,
    Stopped,
}

/// Paper trades on the simulated venue, live on-chain; backtests never create strategy rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StrategyMode {
    Paper,
    Live,
}

/// What an operator asked for; kept apart from the resulting status so errors can say both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleAction {
    Pause,
    Resume,
    Stop,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cannot {action} a strategy that is {from}")]
pub struct InvalidTransition {
    pub action: LifecycleAction,
    pub from: StrategyStatus,
}

impl StrategyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StrategyStatus::Active => "active",
            StrategyStatus::Paused => "paused",
            StrategyStatus::Stopped => "stopped",
        }
    }

    /// active ⇄ paused, anything not stopped → stopped.
    pub fn apply(self, action: LifecycleAction) -> Result<StrategyStatus, InvalidTransition> {
        use LifecycleAction as A;
        use StrategyStatus as S;
        match (self, action) {
            (S::Active, A::Pause) => Ok(S::Paused),
            (S::Paused, A::Resume) => Ok(S::Active),
            (S::Active | S::Paused, A::Stop) => Ok(S::Stopped),
            (from, action) => Err(InvalidTransition { action, from }),
        }
    }
}

impl StrategyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StrategyMode::Paper => "paper",
            StrategyMode::Live => "live",
        }
    }
}

impl LifecycleAction {
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleAction::Pause => "pause",
            LifecycleAction::Resume => "resume",
            LifecycleAction::Stop => "stop",
        }
    }
}

impl fmt::Display for StrategyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for StrategyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for LifecycleAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field} {value:?} is not one of: {expected}")]
pub struct UnknownVariant {
    pub field: &'static str,
    pub value: String,
    pub expected: &'static str,
}

impl FromStr for StrategyStatus {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(StrategyStatus::Active),
            "paused" => Ok(StrategyStatus::Paused),
            "stopped" => Ok(StrategyStatus::Stopped),
            _ => Err(UnknownVariant {
                field: "status",
                value: s.to_string(),
                expected: "active, paused, stopped",
            }),
        }
    }
}

impl FromStr for StrategyMode {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "paper" => Ok(StrategyMode::Paper),
            "live" => Ok(StrategyMode::Live),
            _ => Err(UnknownVariant {
                field: "mode",
                value: s.to_string(),
                expected: "paper, live",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LifecycleAction as A;
    use super::StrategyStatus as S;

    #[test]
    fn transition_table() {
        let cases = [
            (S::Active, A::Pause, Some(S::Paused)),
            (S::Active, A::Resume, None),
            (S::Active, A::Stop, Some(S::Stopped)),
            (S::Paused, A::Pause, None),
            (S::Paused, A::Resume, Some(S::Active)),
            (S::Paused, A::Stop, Some(S::Stopped)),
            (S::Stopped, A::Pause, None),
            (S::Stopped, A::Resume, None),
            (S::Stopped, A::Stop, None),
        ];
        for (from, action, want) in cases {
            assert_eq!(from.apply(action).ok(), want, "{from} --{action}-->");
        }
    }
}
