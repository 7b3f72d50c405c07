-- The routing heartbeat (see the PostgreSQL migration). A single SQLite file has no replica, so
-- followers never need it; it is kept so both databases have the same tables and the writers' one
-- compare-and-set. `beat_ms`: milliseconds since 1970 (integers compare where text timestamps of
-- varying precision would not).
CREATE TABLE routing_heartbeat (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    beat_ms INTEGER NOT NULL
);
INSERT INTO routing_heartbeat (id, beat_ms) VALUES (1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
