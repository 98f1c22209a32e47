-- bsc-bot schema, SQLite flavour. Decimals are TEXT (exact), times are epoch milliseconds.
-- The PostgreSQL flavour in ../postgres/ has the same tables, columns and meanings.

CREATE TABLE control_state (
    id                  INTEGER PRIMARY KEY CHECK (id = 1),
    kill_switch         INTEGER NOT NULL DEFAULT 0,
    kill_switch_reason  TEXT,
    kill_switch_actor   TEXT,
    kill_switch_at      INTEGER,
    -- bumped by every operator write; the daemon re-reads desired state when it changes
    revision            INTEGER NOT NULL DEFAULT 0,
    updated_at          INTEGER NOT NULL
);
INSERT INTO control_state (id, kill_switch, revision, updated_at) VALUES (1, 0, 0, 0);

CREATE TABLE strategies (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL,
    symbol         TEXT NOT NULL,
    mode           TEXT NOT NULL CHECK (mode IN ('paper', 'live')),
    status         TEXT NOT NULL CHECK (status IN ('active', 'paused', 'stopped')),
    status_reason  TEXT,
    params         TEXT NOT NULL,
    state          TEXT,
    state_version  INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    stopped_at     INTEGER
);
CREATE UNIQUE INDEX strategies_live_name ON strategies (name) WHERE status <> 'stopped';
CREATE INDEX strategies_status ON strategies (status);

CREATE TABLE orders (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    strategy_id      INTEGER NOT NULL REFERENCES strategies (id),
    client_order_id  TEXT NOT NULL UNIQUE,
    kind             TEXT NOT NULL,
    side             TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    trigger_price    TEXT,
    quote_amount     TEXT,
    base_amount      TEXT,
    cell             INTEGER,
    status           TEXT NOT NULL,
    status_reason    TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX orders_strategy_status ON orders (strategy_id, status);
CREATE INDEX orders_status ON orders (status);

CREATE TABLE trades (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    strategy_id    INTEGER NOT NULL REFERENCES strategies (id),
    order_id       INTEGER REFERENCES orders (id),
    side           TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    price          TEXT NOT NULL,
    base_amount    TEXT NOT NULL,
    quote_amount   TEXT NOT NULL,
    fee_quote      TEXT NOT NULL,
    realized_pnl   TEXT,
    tx_hash        TEXT,
    gas_fee        TEXT,
    status         TEXT NOT NULL,
    executed_at    INTEGER NOT NULL
);
CREATE INDEX trades_strategy ON trades (strategy_id, executed_at);

CREATE TABLE funds_operations (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL CHECK (kind IN ('drip', 'sweep')),
    wallet       TEXT NOT NULL,
    destination  TEXT NOT NULL,
    asset        TEXT NOT NULL,
    amount       TEXT NOT NULL,
    tx_hash      TEXT,
    status       TEXT NOT NULL,
    error        TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE risk_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    strategy_id  INTEGER REFERENCES strategies (id),
    kind         TEXT NOT NULL,
    severity     TEXT NOT NULL,
    message      TEXT NOT NULL,
    details      TEXT,
    created_at   INTEGER NOT NULL
);
CREATE INDEX risk_events_created ON risk_events (created_at);

CREATE TABLE backtests (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT NOT NULL,
    symbol        TEXT NOT NULL,
    params        TEXT NOT NULL,
    data_path     TEXT NOT NULL,
    result        TEXT NOT NULL,
    fills_path    TEXT,
    chart_path    TEXT,
    created_at    INTEGER NOT NULL
);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    command     TEXT NOT NULL,
    arguments   TEXT NOT NULL,
    actor       TEXT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('ok', 'error')),
    detail      TEXT,
    created_at  INTEGER NOT NULL
);
