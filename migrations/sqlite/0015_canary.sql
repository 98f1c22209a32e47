-- Canary rollouts: a grid's way from backtest to paper to live at its target size, one row a
-- rollout with the stage it is in and the time it has spent there (what a restart resumes with),
-- and one row per decision (promotion, hold, rollback, operator request) with the gate's figures.
CREATE TABLE canary_rollouts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    symbol TEXT NOT NULL,
    kind TEXT NOT NULL,
    params TEXT NOT NULL,
    wallet TEXT,
    settings TEXT NOT NULL,
    plan TEXT NOT NULL,
    stage INTEGER NOT NULL,
    state TEXT NOT NULL,
    state_reason TEXT,
    stage_elapsed_ms INTEGER NOT NULL,
    strategies TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX canary_rollouts_name ON canary_rollouts (name);

CREATE TABLE canary_transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rollout_id INTEGER NOT NULL REFERENCES canary_rollouts (id),
    kind TEXT NOT NULL,
    from_stage TEXT NOT NULL,
    to_stage TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    gate TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX canary_transitions_rollout ON canary_transitions (rollout_id, id);
