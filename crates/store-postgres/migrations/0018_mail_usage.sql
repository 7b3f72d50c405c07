-- Email to customers' admins and daily usage records for billing (PostgreSQL).

-- The customer's reference in the carrier's billing system, carried on its usage records.
ALTER TABLE customers ADD COLUMN billing_ref text;

-- The mail outbox: one row per mail, written in the transaction of the change that causes it.
-- `mail_key` says which mail it is ("release:<id>:waiting", "release:<id>:reminder:1", ...): a second
-- write of the same mail (a retried request, a reminder scan on two instances) is refused by the key.
-- Senders lease a row (`lease_owner`, `lease_until`) like the job outbox: a sender that died leaves a
-- lease that runs out, and every finish is a compare-and-set on the lease.
CREATE TABLE mail_outbox (
    id          uuid PRIMARY KEY,
    mail_key    text NOT NULL,
    kind        text NOT NULL,
    customer_id uuid NOT NULL REFERENCES customers (id),
    -- what the mail says (numbers, reason, ids), as JSON; rendered with the carrier's name when sent
    payload     text NOT NULL,
    state       text NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    attempts    bigint NOT NULL DEFAULT 0,
    run_after   timestamptz NOT NULL,
    lease_owner text,
    lease_until timestamptz,
    last_error  text,
    recipients  text,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    sent_at     timestamptz,
    CONSTRAINT mail_outbox_key UNIQUE (mail_key)
);
CREATE INDEX mail_outbox_due ON mail_outbox (state, run_after);

-- One record per customer and day (UTC), taken once: the key refuses a second one.
CREATE TABLE usage_records (
    customer_id     uuid NOT NULL REFERENCES customers (id),
    day             text NOT NULL,
    billing_ref     text,
    reserved        bigint NOT NULL,
    provisioning    bigint NOT NULL,
    active          bigint NOT NULL,
    release_pending bigint NOT NULL,
    releasing       bigint NOT NULL,
    suspended       bigint NOT NULL,
    porting         bigint NOT NULL,
    zoom_assigned   bigint NOT NULL,
    port_ins        bigint NOT NULL,
    releases        bigint NOT NULL,
    taken_at        timestamptz NOT NULL,
    PRIMARY KEY (customer_id, day)
);
CREATE INDEX usage_records_day ON usage_records (day);
