//! A rollout as a state machine: the stage it is in, whether it runs, and the time it has spent
//! in the stage while running. Every change is a [`Transition`], the record and the audit entry of
//! a decision. Pure: time is handed in, nothing is read or written here, so a restarted daemon
//! that restores a rollout from its record resumes it with the time it had.

use serde::Serialize;

use super::gates::GateReport;
use super::plan::RolloutPlan;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RolloutState {
    Running,
    /// A gate failed or a live stage breached; nothing advances until an operator resumes
    /// (the stage runs again from its start) or aborts.
    Held {
        reason: String,
    },
    /// Held by an operator, the daemon's pause or `emergency stop-all`; the stage's clock stops.
    Paused {
        reason: String,
    },
    Aborted {
        reason: String,
    },
    /// Every stage passed: the grid trades live at its target size.
    Done,
}

impl TransitionKind {
    pub fn name(&self) -> &'static str {
        match self {
            TransitionKind::Promote => "promote",
            TransitionKind::Hold => "hold",
            TransitionKind::Rollback => "rollback",
            TransitionKind::ForcedPromote => "forced_promote",
            TransitionKind::Pause => "pause",
            TransitionKind::Resume => "resume",
            TransitionKind::Abort => "abort",
            TransitionKind::Done => "done",
        }
    }
}

impl RolloutState {
    pub fn name(&self) -> &'static str {
        match self {
            RolloutState::Running => "running",
            RolloutState::Held { .. } => "held",
            RolloutState::Paused { .. } => "paused",
            RolloutState::Aborted { .. } => "aborted",
            RolloutState::Done => "done",
        }
    }

    fn is_over(&self) -> bool {
        matches!(self, RolloutState::Aborted { .. } | RolloutState::Done)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionKind {
    /// The stage's gate passed: on to the next stage.
    Promote,
    /// A gate failed before anything traded live: held at the stage.
    Hold,
    /// A live stage failed its gate or breached: its strategy is paused, the rollout held.
    Rollback,
    /// An operator skipped a failing gate.
    ForcedPromote,
    Pause,
    Resume,
    Abort,
    Done,
}

/// One decision, as recorded: from which stage and state to which, why, by whom, with the gate's
/// figures when a gate decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transition {
    pub kind: TransitionKind,
    pub from_stage: String,
    pub to_stage: String,
    pub from_state: &'static str,
    pub to_state: &'static str,
    pub reason: String,
    pub actor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateReport>,
}

/// A request the rollout's state does not allow (resuming a running rollout, promoting a
/// finished one …); nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rollout is {state} at stage {stage}: cannot {action}")]
pub struct RefusedTransition {
    pub state: &'static str,
    pub stage: String,
    pub action: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rollout {
    pub plan: RolloutPlan,
    /// Index into `plan.stages`.
    pub stage: usize,
    pub state: RolloutState,
    /// Time spent in the current stage while running (ms); what a restart resumes with.
    pub stage_elapsed_ms: i64,
}

impl Rollout {
    pub fn new(plan: RolloutPlan) -> Rollout {
        Rollout {
            plan,
            stage: 0,
            state: RolloutState::Running,
            stage_elapsed_ms: 0,
        }
    }

    pub fn stage_name(&self) -> String {
        self.plan
            .stages
            .get(self.stage)
            .map_or_else(|| "none".into(), |s| s.stage.name())
    }

    /// Count `ms` of running time towards the stage (only while running).
    pub fn run_for(&mut self, ms: i64) {
        if self.state == RolloutState::Running {
            self.stage_elapsed_ms = self.stage_elapsed_ms.saturating_add(ms.max(0));
        }
    }

    /// Time left before the stage's gate is measured (0: due now).
    pub fn remaining_ms(&self) -> i64 {
        let length = self
            .plan
            .stages
            .get(self.stage)
            .map_or(0, |s| s.duration_ms());
        (length - self.stage_elapsed_ms).max(0)
    }

    /// Is the stage's gate to be measured now?
    pub fn gate_due(&self) -> bool {
        self.state == RolloutState::Running && self.remaining_ms() == 0
    }

    fn transition(
        &mut self,
        kind: TransitionKind,
        to_stage: usize,
        to_state: RolloutState,
        reason: String,
        actor: &str,
        gate: Option<GateReport>,
    ) -> Transition {
        let from_stage = self.stage_name();
        let from_state = self.state.name();
        if to_stage != self.stage {
            self.stage_elapsed_ms = 0;
        }
        self.stage = to_stage;
        self.state = to_state;
        Transition {
            kind,
            from_stage,
            to_stage: self.stage_name(),
            from_state,
            to_state: self.state.name(),
            reason,
            actor: actor.into(),
            gate,
        }
    }

    fn next_stage(
        &mut self,
        kind: TransitionKind,
        reason: String,
        actor: &str,
        gate: Option<GateReport>,
    ) -> Transition {
        if self.stage + 1 >= self.plan.stages.len() {
            let mut t = self.transition(kind, self.stage, RolloutState::Done, reason, actor, gate);
            if kind == TransitionKind::Promote {
                t.kind = TransitionKind::Done;
            }
            return t;
        }
        self.transition(
            kind,
            self.stage + 1,
            RolloutState::Running,
            reason,
            actor,
            gate,
        )
    }

    /// Apply the gate measured at the end of the stage: promote when it passed, otherwise hold
    /// (or roll back, when the stage was live).
    pub fn decide(&mut self, report: GateReport) -> Result<Transition, RefusedTransition> {
        if !self.gate_due() {
            return Err(self.refused("decide its gate before the stage has run"));
        }
        Ok(match report.failures() {
            None => self.next_stage(
                TransitionKind::Promote,
                format!("{} gate passed", report.gate),
                "daemon",
                Some(report),
            ),
            Some(why) => self.hold(why, "daemon", Some(report)),
        })
    }

    /// Something went wrong while the stage ran (a risk event, a divergence alarm, a failed
    /// share past its threshold): held at once, rolled back when live.
    pub fn breach(&mut self, reason: String) -> Result<Transition, RefusedTransition> {
        if self.state != RolloutState::Running {
            return Err(self.refused("breach"));
        }
        Ok(self.hold(reason, "daemon", None))
    }

    fn hold(&mut self, reason: String, actor: &str, gate: Option<GateReport>) -> Transition {
        let live = self
            .plan
            .stages
            .get(self.stage)
            .is_some_and(|s| s.stage.is_live());
        let kind = if live {
            TransitionKind::Rollback
        } else {
            TransitionKind::Hold
        };
        self.transition(
            kind,
            self.stage,
            RolloutState::Held {
                reason: reason.clone(),
            },
            reason,
            actor,
            gate,
        )
    }

    pub fn pause(&mut self, reason: String, actor: &str) -> Result<Transition, RefusedTransition> {
        if self.state != RolloutState::Running {
            return Err(self.refused("pause"));
        }
        Ok(self.transition(
            TransitionKind::Pause,
            self.stage,
            RolloutState::Paused {
                reason: reason.clone(),
            },
            reason,
            actor,
            None,
        ))
    }

    /// A paused rollout goes on with the time it had; a held one runs its stage again from the
    /// start (its gate is measured anew over a whole stage).
    pub fn resume(&mut self, reason: String, actor: &str) -> Result<Transition, RefusedTransition> {
        match self.state {
            RolloutState::Paused { .. } => {}
            RolloutState::Held { .. } => self.stage_elapsed_ms = 0,
            _ => return Err(self.refused("resume")),
        }
        Ok(self.transition(
            TransitionKind::Resume,
            self.stage,
            RolloutState::Running,
            reason,
            actor,
            None,
        ))
    }

    pub fn abort(&mut self, reason: String, actor: &str) -> Result<Transition, RefusedTransition> {
        if self.state.is_over() {
            return Err(self.refused("abort"));
        }
        Ok(self.transition(
            TransitionKind::Abort,
            self.stage,
            RolloutState::Aborted {
                reason: reason.clone(),
            },
            reason,
            actor,
            None,
        ))
    }

    /// An operator skips the current stage's gate (it failed, or has not been measured): on to
    /// the next stage, on record with who and why.
    pub fn force_promote(
        &mut self,
        reason: String,
        actor: &str,
    ) -> Result<Transition, RefusedTransition> {
        // Not from a pause: a daemon pause or `emergency stop-all` holds every rollout until it
        // is resumed, and a promotion must not slip past it.
        if !matches!(
            self.state,
            RolloutState::Running | RolloutState::Held { .. }
        ) {
            return Err(self.refused("promote"));
        }
        if reason.trim().is_empty() {
            return Err(self.refused("promote without a reason"));
        }
        if actor.trim().is_empty() {
            return Err(self.refused("promote without naming who"));
        }
        Ok(self.next_stage(TransitionKind::ForcedPromote, reason, actor, None))
    }

    fn refused(&self, action: &'static str) -> RefusedTransition {
        RefusedTransition {
            state: self.state.name(),
            stage: self.stage_name(),
            action,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canary::gates::GateValue;
    use crate::config::canary::CanaryConfig;
    use rust_decimal::Decimal;

    fn rollout() -> Rollout {
        Rollout::new(RolloutPlan::new(Decimal::from(100), &CanaryConfig::default()).expect("plan"))
    }

    fn report(gate: &str, passed: bool) -> GateReport {
        GateReport {
            gate: gate.into(),
            values: vec![GateValue {
                measure: "m",
                value: Some("1".into()),
                threshold: "≤ 0".into(),
                passed,
            }],
        }
    }

    #[test]
    fn a_sound_grid_walks_every_stage_to_done() {
        let mut r = rollout();
        let mut kinds = Vec::new();
        for _ in 0..r.plan.stages.len() {
            let timed = r.plan.stages[r.stage].hours.is_some();
            assert_eq!(
                r.gate_due(),
                !timed,
                "{}: due at once only untimed",
                r.stage_name()
            );
            r.run_for(r.remaining_ms());
            let t = r.decide(report(&r.stage_name(), true)).expect("due");
            kinds.push((t.kind, t.from_stage, t.to_stage));
        }
        assert_eq!(r.state, RolloutState::Done);
        assert_eq!(kinds.last().map(|k| k.0), Some(TransitionKind::Done));
        assert_eq!(
            kinds.iter().map(|k| k.2.as_str()).collect::<Vec<_>>(),
            [
                "paper",
                "live 10%",
                "live 25%",
                "live 50%",
                "live 100%",
                "live 100%"
            ]
        );
    }

    #[test]
    fn a_gate_is_not_decided_before_its_stage_ran_and_time_stops_while_paused() {
        let mut r = rollout();
        r.run_for(0);
        r.decide(report("backtest", true))
            .expect("the backtest is due at once");
        assert_eq!(r.stage_name(), "paper");
        r.run_for(3_600_000);
        assert_eq!(r.remaining_ms(), 23 * 3_600_000);
        let e = r.decide(report("paper", true)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "rollout is running at stage paper: cannot decide its gate before the stage has run"
        );
        r.pause("daemon paused".into(), "ops").expect("pause");
        assert!(
            r.force_promote("skip".into(), "ops").is_err(),
            "a pause is not slipped past"
        );
        r.run_for(10 * 3_600_000);
        assert_eq!(r.remaining_ms(), 23 * 3_600_000);
        r.resume("back".into(), "ops").expect("resume");
        assert_eq!(
            r.remaining_ms(),
            23 * 3_600_000,
            "a pause keeps the time it had"
        );
    }

    #[test]
    fn a_failing_live_gate_rolls_back_and_a_held_stage_runs_again_from_its_start() {
        let mut r = rollout();
        r.force_promote("skip".into(), "alice").expect("promote");
        r.force_promote("skip".into(), "alice").expect("promote");
        assert_eq!(r.stage_name(), "live 10%");
        r.run_for(r.remaining_ms());
        let t = r.decide(report("live", false)).expect("due");
        assert_eq!(t.kind, TransitionKind::Rollback);
        assert_eq!((t.from_state, t.to_state), ("running", "held"));
        assert_eq!(t.reason, "live gate: m 1 (needs ≤ 0)");
        assert!(
            r.decide(report("live", true)).is_err(),
            "held: nothing advances"
        );
        r.resume("fixed the pool".into(), "alice").expect("resume");
        assert_eq!(r.remaining_ms(), 2 * 3_600_000);

        let t = r.breach("price jump 9%".into()).expect("running");
        assert_eq!(t.kind, TransitionKind::Rollback);
        let t = r.abort("gave up".into(), "bob").expect("abort");
        assert_eq!(t.actor, "bob");
        assert!(r.resume("again".into(), "bob").is_err());
        assert!(r.force_promote("again".into(), "bob").is_err());
    }

    #[test]
    fn a_failing_gate_before_live_holds_and_forcing_needs_a_reason() {
        let mut r = rollout();
        let t = r.decide(report("backtest", false)).expect("due");
        assert_eq!(t.kind, TransitionKind::Hold);
        assert_eq!(r.stage_name(), "backtest");
        assert!(r.force_promote("  ".into(), "alice").is_err());
        assert!(r
            .force_promote("the window was a crash".into(), " ")
            .is_err());
        let t = r
            .force_promote("the window was a crash".into(), "alice")
            .expect("forced");
        assert_eq!(t.kind, TransitionKind::ForcedPromote);
        assert_eq!(
            (t.from_stage.as_str(), t.to_stage.as_str()),
            ("backtest", "paper")
        );
        assert_eq!(r.state, RolloutState::Running);
    }
}
