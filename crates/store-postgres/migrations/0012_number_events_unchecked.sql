-- SQLite's 0012 drops number_events' foreign key to numbers; this schema never had it (see 0001).
-- This file keeps the two dialects' migration lists alike.
SELECT 1;
