-- Linking needs the customer admin's confirmation, and a link whose authorization Zoom refuses is
-- marked for re-authorization (PostgreSQL).

-- A Marketplace install exchanged at the callback and waiting for a signed-in customer admin to
-- confirm it, bound to the browser that opened the callback by the hash of an HttpOnly cookie. The
-- Zoom account and user are what /v2/users/me said; the tokens are sealed like zoom_tokens'. The
-- earlier table held bare codes: those waiting at upgrade time (five minutes' worth) are dropped.
DROP TABLE zoom_pending_installs;
CREATE TABLE zoom_pending_installs (
    id_hash             text PRIMARY KEY,
    zoom_account_id     text NOT NULL,
    zoom_user_id        text NOT NULL,
    zoom_email          text NOT NULL,
    zoom_name           text NOT NULL,
    zoom_account_number text NOT NULL,
    access_token        text NOT NULL,
    refresh_token       text NOT NULL,
    token_expires_at    timestamptz NOT NULL,
    created_at          timestamptz NOT NULL,
    valid_until         timestamptz NOT NULL
);
CREATE INDEX zoom_pending_installs_valid ON zoom_pending_installs (valid_until);

-- Zoom refused the link's refresh token (invalid_grant: the app was authorized again elsewhere, or
-- its grant revoked): set until new tokens for the account arrive.
ALTER TABLE zoom_links ADD COLUMN reauth_needed_at timestamptz;
ALTER TABLE zoom_links ADD COLUMN reauth_reason text;

-- Two more kinds of link history: 'reauthorized' (new tokens for a live link) and 'needs_reauth'.
ALTER TABLE zoom_link_events DROP CONSTRAINT zoom_link_events_kind_check;
ALTER TABLE zoom_link_events ADD CONSTRAINT zoom_link_events_kind_check
    CHECK (kind IN ('linked', 'relinked', 'refused', 'removed', 'reauthorized', 'needs_reauth'));
