-- Whether the running daemon trades its strategies ("running", or "off: --market-only" …).
ALTER TABLE daemon ADD COLUMN strategies_status TEXT;
