-- number_events loses its foreign key to numbers, as on PostgreSQL (0001): numbers are never
-- deleted and the store writes a number's events in the transaction that writes the number, while
-- the per-event lookup of the number cost a tenth of a million-number import's time on top of
-- loading the numbers alone (measured with `peerex bench import`). SQLite cannot drop a constraint,
-- so the table is rebuilt with the same columns, ids and index.
CREATE TABLE number_events_unchecked (
    id         INTEGER PRIMARY KEY,
    number_id  BLOB NOT NULL,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    from_state TEXT,
    to_state   TEXT NOT NULL,
    reason     TEXT
);
INSERT INTO number_events_unchecked (id, number_id, at, actor, from_state, to_state, reason)
    SELECT id, number_id, at, actor, from_state, to_state, reason FROM number_events;
DROP TABLE number_events;
ALTER TABLE number_events_unchecked RENAME TO number_events;
CREATE INDEX number_events_number ON number_events (number_id, id);
