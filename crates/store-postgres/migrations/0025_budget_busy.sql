-- Until when the account's budget has a call (a push, a release, an install) planned, in
-- microseconds since the epoch: a reconciliation's listing gives way to such calls until then.
ALTER TABLE zoom_rate_budget ADD COLUMN busy_until_us BIGINT NOT NULL DEFAULT 0;
