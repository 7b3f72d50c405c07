-- Zoom trunks and call routing (SQLite).

-- A trunk is a `sip_trunk_name` Zoom knows; calls for its numbers go to its destinations.
CREATE TABLE zoom_trunks (
    name                 TEXT PRIMARY KEY,
    -- SIP URIs of Zoom's peering SBCs for this trunk, one per line, most preferred first
    destinations         TEXT NOT NULL CHECK (destinations <> ''),
    -- how inbound Request-URI digits become E.164 (domain::trunk::NumberingRule)
    country_code         TEXT NOT NULL,
    national_prefix      TEXT NOT NULL DEFAULT '',
    international_prefix TEXT NOT NULL DEFAULT '00',
    created_at           TEXT NOT NULL
);

-- NULL: the customer has no trunk yet, and its numbers cannot be pushed to Zoom.
ALTER TABLE customers ADD COLUMN zoom_trunk TEXT REFERENCES zoom_trunks (name);
CREATE INDEX customers_zoom_trunk ON customers (zoom_trunk) WHERE zoom_trunk IS NOT NULL;

-- The feed routing snapshots follow: every write that can change a call's routing decision appends
-- a row (by trigger, so no use-case can forget). `e164` names the number; NULL means customers or
-- trunks changed. The highest id is the routing generation.
CREATE TABLE routing_changes (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    e164 TEXT
);

CREATE TRIGGER numbers_routing_changed AFTER UPDATE OF state, customer_id, reason ON numbers
WHEN OLD.state IS NOT NEW.state OR OLD.customer_id IS NOT NEW.customer_id OR OLD.reason IS NOT NEW.reason
BEGIN
    INSERT INTO routing_changes (e164) VALUES (NEW.e164);
END;

CREATE TRIGGER customers_routing_changed AFTER UPDATE OF zoom_trunk ON customers
WHEN OLD.zoom_trunk IS NOT NEW.zoom_trunk
BEGIN
    INSERT INTO routing_changes (e164) VALUES (NULL);
END;

CREATE TRIGGER zoom_trunks_inserted AFTER INSERT ON zoom_trunks BEGIN INSERT INTO routing_changes (e164) VALUES (NULL); END;
CREATE TRIGGER zoom_trunks_updated AFTER UPDATE ON zoom_trunks BEGIN INSERT INTO routing_changes (e164) VALUES (NULL); END;
CREATE TRIGGER zoom_trunks_deleted AFTER DELETE ON zoom_trunks BEGIN INSERT INTO routing_changes (e164) VALUES (NULL); END;
