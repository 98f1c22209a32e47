-- Cluster columns and tables (see the PostgreSQL migration). SQLite keeps one daemon per file, so
-- they stay empty here; they exist so both backends share one schema.
ALTER TABLE daemon ADD COLUMN version TEXT;
ALTER TABLE daemon ADD COLUMN capacity BIGINT;
ALTER TABLE daemon ADD COLUMN draining BIGINT NOT NULL DEFAULT 0;
ALTER TABLE daemon ADD COLUMN cluster BIGINT NOT NULL DEFAULT 0;
CREATE TABLE unit_leases (
    unit        TEXT PRIMARY KEY,
    owner       BIGINT,
    epoch       BIGINT NOT NULL DEFAULT 0,
    expires_at  BIGINT NOT NULL DEFAULT 0,
    acquired_at BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX unit_leases_owner ON unit_leases (owner);
CREATE TABLE lease_handovers (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    unit       TEXT NOT NULL,
    from_node  BIGINT,
    to_node    BIGINT NOT NULL,
    epoch      BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    at         BIGINT NOT NULL
);
