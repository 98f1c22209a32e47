-- The running daemon (one row), and the strategy-chosen tag of each order so a restarted daemon
-- can match the orders it re-derives from persisted state with the ones already on record.
CREATE TABLE daemon (
    id             BIGINT PRIMARY KEY CHECK (id = 1),
    pid            BIGINT NOT NULL,
    host           TEXT NOT NULL,
    api_addr       TEXT NOT NULL,
    started_at     BIGINT NOT NULL,
    heartbeat_at   BIGINT NOT NULL,
    stopped_at     BIGINT,
    stop_requested BIGINT NOT NULL DEFAULT 0
);
ALTER TABLE orders ADD COLUMN tag BIGINT;
