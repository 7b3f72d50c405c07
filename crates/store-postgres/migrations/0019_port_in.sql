-- Port-in (PostgreSQL): a customer brings its own numbers from another carrier. The port-in records
-- the losing carrier and the requested date; its numbers are pushed to Zoom inactive and activated on
-- that date. Its state moves by compare-and-set; its history keeps state changes and moved dates.

CREATE TABLE port_ins (
    id             uuid PRIMARY KEY,
    customer_id    uuid NOT NULL REFERENCES customers (id),
    losing_carrier text NOT NULL CHECK (losing_carrier <> ''),
    requested_date date NOT NULL,
    state          text NOT NULL CHECK (state IN ('requested', 'pushed_inactive', 'activating', 'active', 'cancelled')),
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX port_ins_customer ON port_ins (customer_id, created_at);
CREATE INDEX port_ins_due ON port_ins (state, requested_date);

CREATE TABLE port_in_numbers (
    port_in_id uuid NOT NULL REFERENCES port_ins (id),
    number_id  uuid NOT NULL REFERENCES numbers (id),
    e164       text NOT NULL,
    -- what Zoom holds of the number for this port-in: NULL (not yet pushed), inactive, active, removed
    in_zoom    text CHECK (in_zoom IN ('inactive', 'active', 'removed')),
    PRIMARY KEY (port_in_id, number_id)
);
CREATE INDEX port_in_numbers_number ON port_in_numbers (number_id);

CREATE TABLE port_in_events (
    id         bigserial PRIMARY KEY,
    port_in_id uuid NOT NULL REFERENCES port_ins (id),
    at         timestamptz NOT NULL,
    actor      text NOT NULL,
    from_state text,
    to_state   text NOT NULL,
    note       text
);
CREATE INDEX port_in_events_port_in ON port_in_events (port_in_id, id);

-- The jobs queued for a port-in, by step, so a step whose jobs all ended without moving every number
-- is queued again, and one with a job still open (or failed, for an operator) is not.
CREATE TABLE port_in_jobs (
    port_in_id uuid NOT NULL REFERENCES port_ins (id),
    job_id     uuid NOT NULL REFERENCES jobs (id),
    step       text NOT NULL CHECK (step IN ('push_inactive', 'activate', 'remove')),
    PRIMARY KEY (port_in_id, job_id)
);
