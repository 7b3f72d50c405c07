-- Call routing follows the customers' Zoom links (PostgreSQL): a customer whose link is removed (the
-- app was removed in Zoom) has its suspended numbers answer `deauthorized`, so a link change is a
-- routing change (routing_changed() appends a NULL row: customers changed, and NOTIFYs).

CREATE TRIGGER zoom_links_routing_inserted AFTER INSERT OR DELETE ON zoom_links
FOR EACH ROW EXECUTE FUNCTION routing_changed();

CREATE TRIGGER zoom_links_routing_changed AFTER UPDATE OF state, customer_id ON zoom_links
FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.customer_id IS DISTINCT FROM NEW.customer_id)
EXECUTE FUNCTION routing_changed();
