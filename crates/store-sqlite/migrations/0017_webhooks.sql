-- Events for the carrier's other systems (signed webhooks). Each change that matters writes its
-- event here in the transaction that makes the change; dispatchers later fan each event out to the
-- endpoints that want it (`webhook_deliveries`) and deliver those. The change path only inserts.

-- The outbox of events, in the order they were written (`seq`). `id` is the event's stable id
-- (`webhook-id`); `ordering_key` is what deliveries keep in order (the number, else the entity).
CREATE TABLE outbound_events (
    seq          INTEGER PRIMARY KEY,
    id           BLOB NOT NULL UNIQUE,
    event_type   TEXT NOT NULL,
    ordering_key TEXT NOT NULL,
    at           TEXT NOT NULL,
    data         TEXT NOT NULL,
    -- Set once the event has been fanned out to the endpoints enabled at the time.
    fanned       BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX outbound_events_unfanned ON outbound_events (seq) WHERE NOT fanned;

-- Where events are sent. `event_types` is ' a b ' (spaces around each type) or '' for all.
-- `secret` and `previous_secret` are sealed with the token keys; the previous one signs too until
-- `previous_until` (a rotation's overlap). `failures` counts failed attempts since the last success.
CREATE TABLE webhook_endpoints (
    id              BLOB PRIMARY KEY,
    url             TEXT NOT NULL,
    description     TEXT NOT NULL,
    event_types     TEXT NOT NULL,
    enabled         BOOLEAN NOT NULL,
    disabled_reason TEXT,
    secret          TEXT NOT NULL,
    previous_secret TEXT,
    previous_until  TEXT,
    failures        INTEGER NOT NULL DEFAULT 0,
    -- When the failing began (the first failure after a success).
    failing_since   TEXT,
    -- Events after this one are the endpoint's (it hears nothing from before it was made).
    from_seq        INTEGER NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

-- One event to one endpoint. Leased by dispatchers like jobs: `running` with a lease that another
-- dispatcher may take over once it has run out (the holder died).
CREATE TABLE webhook_deliveries (
    id            INTEGER PRIMARY KEY,
    endpoint_id   BLOB NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_seq     INTEGER NOT NULL REFERENCES outbound_events (seq),
    ordering_key  TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'running', 'delivered', 'failed')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    run_after     TEXT NOT NULL,
    lease_owner   TEXT,
    lease_until   TEXT,
    last_status   INTEGER,
    last_error    TEXT,
    last_attempt_at TEXT,
    delivered_at  TEXT,
    created_at    TEXT NOT NULL,
    CONSTRAINT webhook_deliveries_once UNIQUE (endpoint_id, event_seq)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, run_after);
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint_id, ordering_key, event_seq);
