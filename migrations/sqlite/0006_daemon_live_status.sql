-- What the running daemon does with each live strategy: {"<strategy id>": "running" | reason}.
ALTER TABLE daemon ADD COLUMN live_status TEXT;
