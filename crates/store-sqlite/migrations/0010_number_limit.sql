-- The most numbers a customer may hold at once (reserved, being pushed, active, waiting for release,
-- suspended), set by the carrier's operators (SQLite). NULL: no limit.
ALTER TABLE customers ADD COLUMN number_limit INTEGER CHECK (number_limit >= 0);
