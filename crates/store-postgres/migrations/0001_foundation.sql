-- peerex foundation schema (PostgreSQL).

CREATE TABLE customers (
    id             uuid PRIMARY KEY,
    name           text NOT NULL,
    contract_ref   text NOT NULL,
    contract_state text NOT NULL CHECK (contract_state IN ('active', 'ended')),
    created_at     timestamptz NOT NULL,
    CONSTRAINT customers_contract_ref_key UNIQUE (contract_ref)
);

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL,
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'read_only', 'customer_admin')),
    customer_id   uuid REFERENCES customers (id),
    failed_logins bigint NOT NULL DEFAULT 0,
    locked_until  timestamptz,
    created_at    timestamptz NOT NULL,
    CHECK ((role = 'customer_admin') = (customer_id IS NOT NULL))
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE sessions (
    id_hash    text PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE api_tokens (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    token_hash text NOT NULL,
    scope      text NOT NULL CHECK (scope IN ('read', 'write')),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz,
    CONSTRAINT api_tokens_token_hash_key UNIQUE (token_hash)
);

CREATE TABLE orders (
    id           uuid PRIMARY KEY,
    customer_id  uuid NOT NULL REFERENCES customers (id),
    state        text NOT NULL CHECK (state IN ('pending', 'applied', 'cancelled')),
    number_count bigint NOT NULL,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL
);
CREATE INDEX orders_customer ON orders (customer_id, id);

CREATE TABLE numbers (
    id          uuid PRIMARY KEY,
    -- "C" collation: E.164 strings sort and range-scan bytewise, whatever the server's locale.
    e164        text COLLATE "C" NOT NULL,
    state       text NOT NULL,
    customer_id uuid REFERENCES customers (id),
    order_id    uuid REFERENCES orders (id),
    tags        text NOT NULL DEFAULT '',
    billing_ref text,
    region      text,
    note        text,
    reason      text,
    aging_until timestamptz,
    updated_at  timestamptz NOT NULL,
    CONSTRAINT numbers_e164_key UNIQUE (e164)
);
CREATE INDEX numbers_state_e164 ON numbers (state, e164);
CREATE INDEX numbers_customer_e164 ON numbers (customer_id, e164) WHERE customer_id IS NOT NULL;
CREATE INDEX numbers_order ON numbers (order_id) WHERE order_id IS NOT NULL;

CREATE TABLE number_events (
    id         bigint GENERATED ALWAYS AS IDENTITY,
    -- No foreign key to numbers: numbers are never deleted and the store writes a number's events in
    -- the transaction that writes the number, while the per-row check cost two thirds of a
    -- million-number import (measured with `peerex bench import`).
    number_id  uuid NOT NULL,
    at         timestamptz NOT NULL,
    actor      text NOT NULL,
    from_state text,
    to_state   text NOT NULL,
    reason     text,
    -- One index serves both identity and the audit-trail read (a number's events in order); a
    -- second one on `id` alone would only slow down imports.
    PRIMARY KEY (number_id, id)
);
