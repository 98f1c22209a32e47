-- Orders in flight: besides 'pending' (resting in the trigger book), 'filled' and 'cancelled',
-- an order can now be 'submitted' (handed to the venue), 'accepted' (the venue knows it under
-- venue_ref, e.g. a transaction hash), 'failed' (the venue did not execute it; status_reason says
-- why) or 'refused' (the risk guard stopped it before any venue saw it).
ALTER TABLE orders ADD COLUMN venue_ref TEXT;
