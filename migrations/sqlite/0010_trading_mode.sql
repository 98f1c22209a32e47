-- The operator's trading mode for everything at once (`risk mode`): 'active', 'reducing' (only
-- orders that reduce exposure) or 'halted' (nothing placed), with who set it, why and when.
ALTER TABLE control_state ADD COLUMN trading_mode TEXT NOT NULL DEFAULT 'active';
ALTER TABLE control_state ADD COLUMN trading_mode_reason TEXT;
ALTER TABLE control_state ADD COLUMN trading_mode_actor TEXT;
ALTER TABLE control_state ADD COLUMN trading_mode_at BIGINT;
