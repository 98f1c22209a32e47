-- What the running daemon's funds manager is doing: "running (N wallets)", "off: --no-funds",
-- "off: no funds.treasury configured", or why it could not start.
ALTER TABLE daemon ADD COLUMN funds_status TEXT;
