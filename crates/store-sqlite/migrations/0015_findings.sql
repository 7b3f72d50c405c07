-- Reconciliation (SQLite): what the reconciler found when it compared peerex, Zoom and the routing
-- instances, and what it needs to share between instances.

-- One row per disagreement, from when it was first seen until it was no longer seen (or repaired).
-- `subject` is the phone number (E.164), or the routing instance for `routing_behind`. `scope` is the
-- comparison that reports it ("account:<zoom account id>", "routing"): a cycle of that scope closes the
-- scope's open findings it no longer observes. `seen_in` is the last cycle that observed it.
CREATE TABLE findings (
    id           BLOB PRIMARY KEY,
    kind         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    scope        TEXT NOT NULL,
    customer_id  BLOB REFERENCES customers (id),
    zoom_account TEXT,
    detail       TEXT NOT NULL,
    repair       TEXT NOT NULL,
    repair_state TEXT NOT NULL CHECK (repair_state IN ('proposed', 'queued', 'repaired', 'manual')),
    repaired_by  TEXT,
    first_seen   TEXT NOT NULL,
    last_seen    TEXT NOT NULL,
    seen_in      BLOB NOT NULL,
    resolved_at  TEXT,
    resolved_by  TEXT,
    version      INTEGER NOT NULL DEFAULT 0
);
-- At most one open finding of a kind per number (or instance).
CREATE UNIQUE INDEX findings_open ON findings (kind, subject) WHERE resolved_at IS NULL;
CREATE INDEX findings_scope_open ON findings (scope) WHERE resolved_at IS NULL;
CREATE INDEX findings_customer ON findings (customer_id, first_seen);

-- Each routing follower's position: the change generation its snapshot has applied, written (upsert)
-- whenever it applies changes or checks the feed. The reconciler compares it with the database's.
CREATE TABLE routing_instances (
    instance    TEXT PRIMARY KEY,
    generation  INTEGER NOT NULL,
    reported_at TEXT NOT NULL
);

-- The database's routing generation as reconciliation cycles sampled it: an instance is behind when
-- it has not applied a generation the database reached a while ago.
CREATE TABLE routing_generation_samples (
    sampled_at TEXT NOT NULL,
    generation INTEGER NOT NULL
);
CREATE INDEX routing_generation_samples_at ON routing_generation_samples (sampled_at);

-- Who runs the reconciliation of each scope now, and when it last completed: a lease, so two instances
-- never run the same account's cycle at the same time, and the schedule shared by all of them.
CREATE TABLE reconcile_leases (
    scope        TEXT PRIMARY KEY,
    owner        TEXT,
    lease_until  TEXT,
    completed_at TEXT
);
