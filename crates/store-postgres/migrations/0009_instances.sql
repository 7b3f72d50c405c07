-- Several `peerex serve` instances on one database (PostgreSQL): what they must share lives here, not in
-- any one process's memory.

-- Zoom webhook deliveries already acted on, by every instance: the SHA-256 of the signed content
-- ("v0:{timestamp}:{body}", hex), so the same delivery is refused however its signature header is
-- written. Kept until its timestamp leaves the accepted window (after that the window refuses it).
CREATE TABLE zoom_webhook_deliveries (
    digest     text PRIMARY KEY,
    seen_at    timestamptz NOT NULL,
    keep_until timestamptz NOT NULL
);
CREATE INDEX zoom_webhook_deliveries_keep ON zoom_webhook_deliveries (keep_until);

-- Each Zoom account's request budget, shared by every worker of every instance: the next free slot for
-- a call, in microseconds since the epoch. A caller takes a slot and moves it on by one gap (1 / rate)
-- in one statement; a 429 moves it to Zoom's Retry-After.
CREATE TABLE zoom_rate_budget (
    zoom_account text PRIMARY KEY,
    next_slot_us bigint NOT NULL
);
