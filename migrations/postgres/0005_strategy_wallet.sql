-- The wallet (keystore name) a live strategy trades from; NULL for paper strategies.
ALTER TABLE strategies ADD COLUMN wallet TEXT;
