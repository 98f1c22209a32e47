-- Live markets as the running daemon sees them, refreshed with its heartbeat:
-- {"BTC/USDT": {"dex_price": "...", "reference_price": "...", "divergence_bps": "...", "at_ms": ...}}.
ALTER TABLE daemon ADD COLUMN markets TEXT;
