-- Sign-in throttling and server secrets (SQLite).

-- Counters of sign-in attempts, shared by every instance (domain::sign_in has the rules). `key` is
-- the SHA-256 of "source:<address>", "account:<e-mail>" or "account_source:<e-mail>|<address>", so
-- no address or e-mail is kept in the clear, known or not.
CREATE TABLE sign_in_throttle (
    key           TEXT PRIMARY KEY,
    failures      INTEGER NOT NULL,
    window_start  TEXT NOT NULL,
    blocked_until TEXT,
    strikes       INTEGER NOT NULL,
    next_slot     TEXT,
    trusted_until TEXT,
    updated_at    TEXT NOT NULL
);
CREATE INDEX sign_in_throttle_updated ON sign_in_throttle (updated_at);

-- Secrets the server makes for itself on first use and every instance shares (the key that signs
-- the sign-in form's CSRF token).
CREATE TABLE server_secrets (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at TEXT NOT NULL
);
