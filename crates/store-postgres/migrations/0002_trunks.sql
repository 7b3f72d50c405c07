-- Zoom trunks and call routing (PostgreSQL).

-- A trunk is a `sip_trunk_name` Zoom knows; calls for its numbers go to its destinations.
CREATE TABLE zoom_trunks (
    name                 text PRIMARY KEY,
    -- SIP URIs of Zoom's peering SBCs for this trunk, one per line, most preferred first
    destinations         text NOT NULL CHECK (destinations <> ''),
    -- how inbound Request-URI digits become E.164 (domain::trunk::NumberingRule)
    country_code         text NOT NULL,
    national_prefix      text NOT NULL DEFAULT '',
    international_prefix text NOT NULL DEFAULT '00',
    created_at           timestamptz NOT NULL
);

-- NULL: the customer has no trunk yet, and its numbers cannot be pushed to Zoom.
ALTER TABLE customers ADD COLUMN zoom_trunk text REFERENCES zoom_trunks (name);
CREATE INDEX customers_zoom_trunk ON customers (zoom_trunk) WHERE zoom_trunk IS NOT NULL;

-- The feed routing snapshots follow: every write that can change a call's routing decision appends
-- a row (by trigger, so no use-case can forget) and wakes listeners with NOTIFY peerex_routing at
-- commit. `e164` names the number; NULL means customers or trunks changed. The highest id is the
-- routing generation.
CREATE TABLE routing_changes (
    id   bigserial PRIMARY KEY,
    e164 text
);

CREATE FUNCTION routing_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'numbers' THEN
        INSERT INTO routing_changes (e164) VALUES (NEW.e164);
    ELSE
        INSERT INTO routing_changes (e164) VALUES (NULL);
    END IF;
    -- Identical notifications in one transaction are delivered once, at commit.
    PERFORM pg_notify('peerex_routing', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER numbers_routing_changed AFTER UPDATE OF state, customer_id, reason ON numbers
FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.customer_id IS DISTINCT FROM NEW.customer_id OR OLD.reason IS DISTINCT FROM NEW.reason)
EXECUTE FUNCTION routing_changed();

CREATE TRIGGER customers_routing_changed AFTER UPDATE OF zoom_trunk ON customers
FOR EACH ROW WHEN (OLD.zoom_trunk IS DISTINCT FROM NEW.zoom_trunk)
EXECUTE FUNCTION routing_changed();

CREATE TRIGGER zoom_trunks_changed AFTER INSERT OR UPDATE OR DELETE ON zoom_trunks
FOR EACH STATEMENT EXECUTE FUNCTION routing_changed();
