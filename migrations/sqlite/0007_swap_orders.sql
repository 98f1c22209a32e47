-- A swap carries the order it executes (strategy, tag, side, limit or market, the cost of the lot
-- a sell closes), so a restart can apply a swap mined while the daemon was down to its strategy
-- even when the order's own row never learned of it.
ALTER TABLE chain_txs ADD COLUMN strategy_id INTEGER;
ALTER TABLE chain_txs ADD COLUMN order_tag INTEGER;
ALTER TABLE chain_txs ADD COLUMN order_side TEXT;
ALTER TABLE chain_txs ADD COLUMN order_market INTEGER;
ALTER TABLE chain_txs ADD COLUMN lot_cost TEXT;
CREATE INDEX chain_txs_strategy ON chain_txs (strategy_id, status);
