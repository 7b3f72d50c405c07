-- peerex foundation schema (SQLite). Ids are UUIDv7 as 16-byte blobs; times are UTC text.

CREATE TABLE customers (
    id             BLOB PRIMARY KEY,
    name           TEXT NOT NULL,
    contract_ref   TEXT NOT NULL,
    contract_state TEXT NOT NULL CHECK (contract_state IN ('active', 'ended')),
    created_at     TEXT NOT NULL,
    CONSTRAINT customers_contract_ref_key UNIQUE (contract_ref)
);

CREATE TABLE users (
    id            BLOB PRIMARY KEY,
    email         TEXT NOT NULL COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'read_only', 'customer_admin')),
    customer_id   BLOB REFERENCES customers (id),
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until  TEXT,
    created_at    TEXT NOT NULL,
    CONSTRAINT users_email_key UNIQUE (email),
    CHECK ((role = 'customer_admin') = (customer_id IS NOT NULL))
);

CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE api_tokens (
    id         BLOB PRIMARY KEY,
    name       TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    scope      TEXT NOT NULL CHECK (scope IN ('read', 'write')),
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    CONSTRAINT api_tokens_token_hash_key UNIQUE (token_hash)
);

CREATE TABLE orders (
    id           BLOB PRIMARY KEY,
    customer_id  BLOB NOT NULL REFERENCES customers (id),
    state        TEXT NOT NULL CHECK (state IN ('pending', 'applied', 'cancelled')),
    number_count INTEGER NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE INDEX orders_customer ON orders (customer_id, id);

CREATE TABLE numbers (
    id          BLOB PRIMARY KEY,
    e164        TEXT NOT NULL,
    state       TEXT NOT NULL,
    customer_id BLOB REFERENCES customers (id),
    order_id    BLOB REFERENCES orders (id),
    -- ",tag1,tag2," so a tag filter is one LIKE with exact boundaries
    tags        TEXT NOT NULL DEFAULT '',
    billing_ref TEXT,
    region      TEXT,
    note        TEXT,
    reason      TEXT,
    aging_until TEXT,
    updated_at  TEXT NOT NULL,
    CONSTRAINT numbers_e164_key UNIQUE (e164)
);
CREATE INDEX numbers_state_e164 ON numbers (state, e164);
CREATE INDEX numbers_customer_e164 ON numbers (customer_id, e164) WHERE customer_id IS NOT NULL;
CREATE INDEX numbers_order ON numbers (order_id) WHERE order_id IS NOT NULL;

CREATE TABLE number_events (
    id         INTEGER PRIMARY KEY,
    number_id  BLOB NOT NULL REFERENCES numbers (id),
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    from_state TEXT,
    to_state   TEXT NOT NULL,
    reason     TEXT
);
CREATE INDEX number_events_number ON number_events (number_id, id);
