-- Gas of a fill in quote (the AMM fill model's charge, or a swap's BNB gas at BNB's price then)
-- and the BNB price that converted it: PnL net of gas is computed from these, and the conversion
-- stays on record.
ALTER TABLE trades ADD COLUMN gas_quote TEXT;
ALTER TABLE trades ADD COLUMN gas_bnb_price TEXT;
