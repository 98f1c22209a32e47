-- Several daemons on one database. Each daemon has a row of its own in `daemon` (its node id),
-- and every unit of work (a wallet with its live strategies, a paper strategy, the funds manager,
-- the canary driver) has a lease: its owner, a fencing epoch that grows at every change of owner,
-- and an expiry on the database's clock. Writes that belong to a unit check the epoch in the same
-- transaction (SELECT ... FOR SHARE), so a daemon that lost a lease can neither record nor send.
ALTER TABLE daemon DROP CONSTRAINT IF EXISTS daemon_id_check;
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
-- Every change of owner, for `cluster list`, the failover alert and the failover count.
CREATE TABLE lease_handovers (
    id         BIGSERIAL PRIMARY KEY,
    unit       TEXT NOT NULL,
    from_node  BIGINT,
    to_node    BIGINT NOT NULL,
    epoch      BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    at         BIGINT NOT NULL
);
