-- Releases approved by the customer (issue 6, PostgreSQL): the carrier starts the release of some of
-- a customer's active numbers; each number's line records where it is (waiting for the customer's
-- approval, releasing, released, refused by Zoom with the reason, withdrawn).

CREATE TABLE releases (
    id          uuid PRIMARY KEY,
    customer_id uuid NOT NULL REFERENCES customers (id),
    reason      text NOT NULL,
    started_by  text NOT NULL,
    started_at  timestamptz NOT NULL
);
CREATE INDEX releases_customer ON releases (customer_id, started_at);

CREATE TABLE release_numbers (
    release_id  uuid NOT NULL REFERENCES releases (id),
    number_id   uuid NOT NULL REFERENCES numbers (id),
    e164        text NOT NULL,
    state       text NOT NULL CHECK (state IN ('waiting', 'releasing', 'released', 'refused', 'withdrawn')),
    -- Zoom's refusal as the customer reads it
    message     text,
    -- the job carrying the latest approval to Zoom: a line left `releasing` after it ended is converged
    job_id      uuid,
    approved_by text,
    approved_at timestamptz,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (release_id, number_id)
);
CREATE INDEX release_numbers_number ON release_numbers (number_id, state);
CREATE INDEX release_numbers_open ON release_numbers (state) WHERE state IN ('waiting', 'releasing', 'refused');

-- The outbox learns a new kind of job.
ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check CHECK (kind IN ('push_numbers', 'poll_numbers', 'release_numbers'));

-- Numbers whose quarantine ends are found without a scan.
CREATE INDEX numbers_aging ON numbers (aging_until) WHERE state = 'aging';
