-- Releases approved by the customer (issue 6, SQLite): the carrier starts the release of some of a
-- customer's active numbers; each number's line records where it is (waiting for the customer's
-- approval, releasing, released, refused by Zoom with the reason, withdrawn).

CREATE TABLE releases (
    id          BLOB PRIMARY KEY,
    customer_id BLOB NOT NULL REFERENCES customers (id),
    reason      TEXT NOT NULL,
    started_by  TEXT NOT NULL,
    started_at  TEXT NOT NULL
);
CREATE INDEX releases_customer ON releases (customer_id, started_at);

CREATE TABLE release_numbers (
    release_id  BLOB NOT NULL REFERENCES releases (id),
    number_id   BLOB NOT NULL REFERENCES numbers (id),
    e164        TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('waiting', 'releasing', 'released', 'refused', 'withdrawn')),
    -- Zoom's refusal as the customer reads it
    message     TEXT,
    -- the job carrying the latest approval to Zoom: a line left `releasing` after it ended is converged
    job_id      BLOB,
    approved_by TEXT,
    approved_at TEXT,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (release_id, number_id)
);
CREATE INDEX release_numbers_number ON release_numbers (number_id, state);
CREATE INDEX release_numbers_open ON release_numbers (state) WHERE state IN ('waiting', 'releasing', 'refused');

-- The outbox learns a new kind of job. SQLite cannot change a CHECK constraint in place: the table is
-- rebuilt with the same columns and indexes (nothing references jobs).
CREATE TABLE jobs_new (
    id           BLOB PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('push_numbers', 'poll_numbers', 'release_numbers')),
    payload      TEXT NOT NULL,
    customer_id  BLOB REFERENCES customers (id),
    order_id     BLOB REFERENCES orders (id),
    zoom_account TEXT,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    run_after    TEXT NOT NULL,
    lease_owner  TEXT,
    lease_until  TEXT,
    last_error   TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
INSERT INTO jobs_new (id, kind, payload, customer_id, order_id, zoom_account, state, attempts, run_after, lease_owner, lease_until, last_error, created_at, updated_at)
    SELECT id, kind, payload, customer_id, order_id, zoom_account, state, attempts, run_after, lease_owner, lease_until, last_error, created_at, updated_at FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
CREATE INDEX jobs_due ON jobs (state, run_after);
CREATE INDEX jobs_order ON jobs (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX jobs_customer ON jobs (customer_id, state);

-- Numbers whose quarantine ends are found without a scan.
CREATE INDEX numbers_aging ON numbers (aging_until) WHERE state = 'aging';
