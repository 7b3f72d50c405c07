-- How many state changes each number has been through. Every state write compares it with the count
-- the writer read and adds one, so a number that left a state and came back in between (the same
-- state, a newer history) is not overwritten with a decision taken on its older self.
ALTER TABLE numbers ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
