-- What a mined swap's price was made of, beside its pool fee and gas: the pool's mid price just
-- before it (from the reserves its Sync event logged, less its own amounts) and its price impact
-- in basis points (how much worse than that mid price it filled, before the fee).
ALTER TABLE chain_txs ADD COLUMN pool_price_before TEXT;
ALTER TABLE chain_txs ADD COLUMN price_impact_bps TEXT;
