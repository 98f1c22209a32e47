-- A drip's or sweep's value in the quote asset when it was made (the hourly outflow limit adds
-- it to the live swaps' inputs); NULL when the asset has no pool to price it.
ALTER TABLE funds_operations ADD COLUMN quote_value TEXT;
