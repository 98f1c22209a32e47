-- Which pool filled a swap (best execution picks one of several per swap): its kind and fee tier
-- (`v2`, `v3:500`) and its address, and how many initialized ticks a V3 swap crossed (as quoted
-- from the pool's state just before it).
ALTER TABLE chain_txs ADD COLUMN pool_kind TEXT;
ALTER TABLE chain_txs ADD COLUMN pool_address TEXT;
ALTER TABLE chain_txs ADD COLUMN ticks_crossed BIGINT;
