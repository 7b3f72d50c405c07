-- A heartbeat the writing side keeps, so a routing instance on a read replica can tell a replica
-- that still receives changes from one cut off from its primary (which keeps answering queries,
-- with nothing new in them). Every `peerex serve` (and every `peerex route` given a
-- report_database_url) moves `beat_at` to the primary's own now() every few seconds, by a
-- compare-and-set that lets at most one of them write per half interval. A follower on a replica
-- counts its snapshot current only as of the last beat it saw arrive.
CREATE TABLE routing_heartbeat (
    id      integer PRIMARY KEY CHECK (id = 1),
    beat_at timestamptz NOT NULL
);
INSERT INTO routing_heartbeat (id, beat_at) VALUES (1, now());
