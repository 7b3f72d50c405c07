-- Onboarding from the Zoom Marketplace (PostgreSQL): links between customers and Zoom accounts, their
-- encrypted OAuth tokens, the jobs outbox that carries changes to Zoom, and what Zoom says of numbers.

-- One row per link; a re-install of the same account by the same customer brings its row back to
-- `linked`. At most one live link per Zoom account and per customer.
CREATE TABLE zoom_links (
    id              uuid PRIMARY KEY,
    customer_id     uuid NOT NULL REFERENCES customers (id),
    zoom_account_id text NOT NULL,
    -- the Zoom user who installed the app
    zoom_user_id    text NOT NULL,
    state           text NOT NULL CHECK (state IN ('linked', 'removed')),
    linked_at       timestamptz NOT NULL,
    removed_at      timestamptz,
    -- Zoom's per-account rate limit, shared by every worker: no call for this account before it.
    not_before      timestamptz,
    last_polled_at  timestamptz
);
CREATE UNIQUE INDEX zoom_links_account_live ON zoom_links (zoom_account_id) WHERE state = 'linked';
CREATE UNIQUE INDEX zoom_links_customer_live ON zoom_links (customer_id) WHERE state = 'linked';
CREATE INDEX zoom_links_customer ON zoom_links (customer_id, linked_at);

-- What happened to a customer's link, refusals included, for operators.
CREATE TABLE zoom_link_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id     uuid REFERENCES customers (id),
    zoom_account_id text NOT NULL,
    at              timestamptz NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('linked', 'relinked', 'refused', 'removed')),
    message         text NOT NULL
);
CREATE INDEX zoom_link_events_customer ON zoom_link_events (customer_id, id);

-- Tokens encrypted at rest ("<key id>:<base64 nonce+ciphertext>"). `generation` makes a refresh a
-- compare-and-swap; the refresh lease keeps a second worker from spending the same refresh token.
CREATE TABLE zoom_tokens (
    link_id               uuid PRIMARY KEY REFERENCES zoom_links (id) ON DELETE CASCADE,
    access_token          text NOT NULL,
    refresh_token         text NOT NULL,
    expires_at            timestamptz NOT NULL,
    generation            bigint NOT NULL,
    refresh_owner         text,
    refresh_lease_until   timestamptz,
    updated_at            timestamptz NOT NULL
);

-- A Marketplace install whose admin was not signed in yet: the code waits here (encrypted), keyed by
-- the hash of a cookie, never in a URL.
CREATE TABLE zoom_pending_installs (
    id_hash    text PRIMARY KEY,
    code       text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

-- The outbox: a state change and the job that carries it to Zoom are written in one transaction.
CREATE TABLE jobs (
    id           uuid PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('push_numbers', 'poll_numbers')),
    payload      jsonb NOT NULL,
    customer_id  uuid REFERENCES customers (id),
    order_id     uuid REFERENCES orders (id),
    -- the Zoom account whose rate limit (zoom_links.not_before) the job obeys
    zoom_account text,
    state        text NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
    attempts     bigint NOT NULL DEFAULT 0,
    run_after    timestamptz NOT NULL,
    lease_owner  text,
    lease_until  timestamptz,
    last_error   text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX jobs_due ON jobs (state, run_after);
CREATE INDEX jobs_order ON jobs (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX jobs_customer ON jobs (customer_id, state);

-- What Zoom last said of an active number: assigned to a user or not, and when it was seen.
ALTER TABLE numbers ADD COLUMN zoom_assigned boolean;
ALTER TABLE numbers ADD COLUMN zoom_seen_at timestamptz;
