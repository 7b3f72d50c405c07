-- Releases the carrier starts without the customer's approval (PostgreSQL): a port-out to another
-- carrier, the end of the customer's contract, or a number the customer gave back in Zoom. They run
-- through the same release lines; from `due_at` the numbers stop routing and are removed from Zoom.

ALTER TABLE releases ADD COLUMN kind text NOT NULL DEFAULT 'approval'
    CHECK (kind IN ('approval', 'port_out', 'contract_end', 'returned'));
ALTER TABLE releases ADD COLUMN due_at timestamptz;
-- the carrier that won the numbers (port-out only)
ALTER TABLE releases ADD COLUMN gaining_carrier text;
CREATE INDEX releases_due ON releases (due_at) WHERE kind <> 'approval';
