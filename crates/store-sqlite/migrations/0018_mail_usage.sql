-- Email to customers' admins and daily usage records for billing (SQLite).

-- The customer's reference in the carrier's billing system, carried on its usage records.
ALTER TABLE customers ADD COLUMN billing_ref TEXT;

-- The mail outbox: one row per mail, written in the transaction of the change that causes it.
-- `mail_key` says which mail it is ("release:<id>:waiting", "release:<id>:reminder:1", ...): a second
-- write of the same mail (a retried request, a reminder scan on two instances) is refused by the key.
-- Senders lease a row (`lease_owner`, `lease_until`) like the job outbox: a sender that died leaves a
-- lease that runs out, and every finish is a compare-and-set on the lease.
CREATE TABLE mail_outbox (
    id          BLOB PRIMARY KEY,
    mail_key    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    customer_id BLOB NOT NULL REFERENCES customers (id),
    -- what the mail says (numbers, reason, ids), as JSON; rendered with the carrier's name when sent
    payload     TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    run_after   TEXT NOT NULL,
    lease_owner TEXT,
    lease_until TEXT,
    last_error  TEXT,
    recipients  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    sent_at     TEXT,
    CONSTRAINT mail_outbox_key UNIQUE (mail_key)
);
CREATE INDEX mail_outbox_due ON mail_outbox (state, run_after);

-- One record per customer and day (UTC), taken once: the key refuses a second one.
CREATE TABLE usage_records (
    customer_id     BLOB NOT NULL REFERENCES customers (id),
    day             TEXT NOT NULL,
    billing_ref     TEXT,
    reserved        INTEGER NOT NULL,
    provisioning    INTEGER NOT NULL,
    active          INTEGER NOT NULL,
    release_pending INTEGER NOT NULL,
    releasing       INTEGER NOT NULL,
    suspended       INTEGER NOT NULL,
    porting         INTEGER NOT NULL,
    zoom_assigned   INTEGER NOT NULL,
    port_ins        INTEGER NOT NULL,
    releases        INTEGER NOT NULL,
    taken_at        TEXT NOT NULL,
    PRIMARY KEY (customer_id, day)
);
CREATE INDEX usage_records_day ON usage_records (day);
