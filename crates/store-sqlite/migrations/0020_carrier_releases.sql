-- Releases the carrier starts without the customer's approval (SQLite): a port-out to another
-- carrier, the end of the customer's contract, or a number the customer gave back in Zoom. They run
-- through the same release lines; from `due_at` the numbers stop routing and are removed from Zoom.

ALTER TABLE releases ADD COLUMN kind TEXT NOT NULL DEFAULT 'approval'
    CHECK (kind IN ('approval', 'port_out', 'contract_end', 'returned'));
ALTER TABLE releases ADD COLUMN due_at TEXT;
-- the carrier that won the numbers (port-out only)
ALTER TABLE releases ADD COLUMN gaining_carrier TEXT;
CREATE INDEX releases_due ON releases (due_at) WHERE kind <> 'approval';
