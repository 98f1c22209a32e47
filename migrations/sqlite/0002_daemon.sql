-- The running daemon (one row), and the strategy-chosen tag of each order so a restarted daemon
-- can match the orders it re-derives from persisted state with the ones already on record.
CREATE TABLE daemon (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    pid            INTEGER NOT NULL,
    host           TEXT NOT NULL,
    api_addr       TEXT NOT NULL,
    started_at     INTEGER NOT NULL,
    heartbeat_at   INTEGER NOT NULL,
    stopped_at     INTEGER,
    stop_requested INTEGER NOT NULL DEFAULT 0
);
ALTER TABLE orders ADD COLUMN tag INTEGER;
