-- Sign-in throttling and server secrets (PostgreSQL).

-- Counters of sign-in attempts, shared by every instance (domain::sign_in has the rules). `key` is
-- the SHA-256 of "source:<address>", "account:<e-mail>" or "account_source:<e-mail>|<address>", so
-- no address or e-mail is kept in the clear, known or not.
CREATE TABLE sign_in_throttle (
    key           text PRIMARY KEY,
    failures      bigint NOT NULL,
    window_start  timestamptz NOT NULL,
    blocked_until timestamptz,
    strikes       bigint NOT NULL,
    next_slot     timestamptz,
    trusted_until timestamptz,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX sign_in_throttle_updated ON sign_in_throttle (updated_at);

-- Secrets the server makes for itself on first use and every instance shares (the key that signs
-- the sign-in form's CSRF token).
CREATE TABLE server_secrets (
    name       text PRIMARY KEY,
    value      text NOT NULL,
    created_at timestamptz NOT NULL
);
