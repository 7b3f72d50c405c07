-- Reconciliation (PostgreSQL): what the reconciler found when it compared peerex, Zoom and the routing
-- instances, and what it needs to share between instances.

-- One row per disagreement, from when it was first seen until it was no longer seen (or repaired).
-- `subject` is the phone number (E.164), or the routing instance for `routing_behind`. `scope` is the
-- comparison that reports it ("account:<zoom account id>", "routing"): a cycle of that scope closes the
-- scope's open findings it no longer observes. `seen_in` is the last cycle that observed it.
CREATE TABLE findings (
    id           uuid PRIMARY KEY,
    kind         text NOT NULL,
    subject      text COLLATE "C" NOT NULL,
    scope        text NOT NULL,
    customer_id  uuid REFERENCES customers (id),
    zoom_account text,
    detail       text NOT NULL,
    repair       text NOT NULL,
    repair_state text NOT NULL CHECK (repair_state IN ('proposed', 'queued', 'repaired', 'manual')),
    repaired_by  text,
    first_seen   timestamptz NOT NULL,
    last_seen    timestamptz NOT NULL,
    seen_in      uuid NOT NULL,
    resolved_at  timestamptz,
    resolved_by  text,
    version      bigint NOT NULL DEFAULT 0
);
-- At most one open finding of a kind per number (or instance).
CREATE UNIQUE INDEX findings_open ON findings (kind, subject) WHERE resolved_at IS NULL;
CREATE INDEX findings_scope_open ON findings (scope) WHERE resolved_at IS NULL;
CREATE INDEX findings_customer ON findings (customer_id, first_seen);

-- Each routing follower's position: the change generation its snapshot has applied, written (upsert)
-- whenever it applies changes or checks the feed. The reconciler compares it with the database's.
CREATE TABLE routing_instances (
    instance    text PRIMARY KEY,
    generation  bigint NOT NULL,
    reported_at timestamptz NOT NULL
);

-- The database's routing generation as reconciliation cycles sampled it: an instance is behind when
-- it has not applied a generation the database reached a while ago.
CREATE TABLE routing_generation_samples (
    sampled_at timestamptz NOT NULL,
    generation bigint NOT NULL
);
CREATE INDEX routing_generation_samples_at ON routing_generation_samples (sampled_at);

-- Who runs the reconciliation of each scope now, and when it last completed: a lease, so two instances
-- never run the same account's cycle at the same time, and the schedule shared by all of them.
CREATE TABLE reconcile_leases (
    scope        text PRIMARY KEY,
    owner        text,
    lease_until  timestamptz,
    completed_at timestamptz
);
