-- Call routing follows the customers' Zoom links (SQLite): a customer whose link is removed (the app
-- was removed in Zoom) has its suspended numbers answer `deauthorized`, so a link change is a
-- routing change. NULL: customers changed (the snapshot reloads them).

CREATE TRIGGER zoom_links_routing_inserted AFTER INSERT ON zoom_links
BEGIN
    INSERT INTO routing_changes (e164) VALUES (NULL);
END;

CREATE TRIGGER zoom_links_routing_changed AFTER UPDATE OF state, customer_id ON zoom_links
WHEN OLD.state IS NOT NEW.state OR OLD.customer_id IS NOT NEW.customer_id
BEGIN
    INSERT INTO routing_changes (e164) VALUES (NULL);
END;

CREATE TRIGGER zoom_links_routing_deleted AFTER DELETE ON zoom_links
BEGIN
    INSERT INTO routing_changes (e164) VALUES (NULL);
END;
