-- Linking needs the customer admin's confirmation, and a link whose authorization Zoom refuses is
-- marked for re-authorization (SQLite).

-- A Marketplace install exchanged at the callback and waiting for a signed-in customer admin to
-- confirm it, bound to the browser that opened the callback by the hash of an HttpOnly cookie. The
-- Zoom account and user are what /v2/users/me said; the tokens are sealed like zoom_tokens'. The
-- earlier table held bare codes: those waiting at upgrade time (five minutes' worth) are dropped.
DROP TABLE zoom_pending_installs;
CREATE TABLE zoom_pending_installs (
    id_hash             TEXT PRIMARY KEY,
    zoom_account_id     TEXT NOT NULL,
    zoom_user_id        TEXT NOT NULL,
    zoom_email          TEXT NOT NULL,
    zoom_name           TEXT NOT NULL,
    zoom_account_number TEXT NOT NULL,
    access_token        TEXT NOT NULL,
    refresh_token       TEXT NOT NULL,
    token_expires_at    TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    valid_until         TEXT NOT NULL
);
CREATE INDEX zoom_pending_installs_valid ON zoom_pending_installs (valid_until);

-- Zoom refused the link's refresh token (invalid_grant: the app was authorized again elsewhere, or
-- its grant revoked): set until new tokens for the account arrive.
ALTER TABLE zoom_links ADD COLUMN reauth_needed_at TEXT;
ALTER TABLE zoom_links ADD COLUMN reauth_reason TEXT;

-- Two more kinds of link history: 'reauthorized' (new tokens for a live link) and 'needs_reauth'.
-- SQLite cannot change a CHECK in place: the table is rebuilt.
CREATE TABLE zoom_link_events_new (
    id              INTEGER PRIMARY KEY,
    customer_id     BLOB REFERENCES customers (id),
    zoom_account_id TEXT NOT NULL,
    at              TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('linked', 'relinked', 'refused', 'removed', 'reauthorized', 'needs_reauth')),
    message         TEXT NOT NULL
);
INSERT INTO zoom_link_events_new (id, customer_id, zoom_account_id, at, kind, message)
    SELECT id, customer_id, zoom_account_id, at, kind, message FROM zoom_link_events;
DROP TABLE zoom_link_events;
ALTER TABLE zoom_link_events_new RENAME TO zoom_link_events;
CREATE INDEX zoom_link_events_customer ON zoom_link_events (customer_id, id);
