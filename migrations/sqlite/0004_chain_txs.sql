-- Every transaction the bot signs, committed before it is broadcast: its wallet and nonce (the
-- bot owns its nonces), hash and signed bytes (re-broadcast after a crash is the same
-- transaction, never a second one), what it is for, and what the chain made of it.
CREATE TABLE chain_txs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    chain_id       INTEGER NOT NULL,
    wallet         TEXT NOT NULL,
    nonce          INTEGER NOT NULL,
    tx_hash        TEXT NOT NULL UNIQUE,
    raw_tx         TEXT NOT NULL,
    purpose        TEXT NOT NULL,
    reference      TEXT,
    gas_price_wei  TEXT NOT NULL,
    gas_limit      INTEGER NOT NULL,
    status         TEXT NOT NULL,
    gas_used       INTEGER,
    fee_bnb        TEXT,
    error          TEXT,
    block_number   INTEGER,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX chain_txs_wallet_nonce ON chain_txs (chain_id, wallet, nonce);
CREATE INDEX chain_txs_status ON chain_txs (status);
