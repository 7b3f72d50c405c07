-- The routing feed's change ids come from a sequence, taken when a row is inserted, not when its
-- transaction commits: a long transaction (an app removal suspending 100,000 numbers) holds low ids
-- while later ones commit above them. Each change now records its (top-level) transaction, so a
-- follower that read past ids still held open can watch those transactions, not the ids, and read
-- their changes the moment they commit, however many and however late (routing/src/follow.rs).
-- Rows from before this migration have NULL: their transactions ended long ago.
ALTER TABLE routing_changes ADD COLUMN xid bigint;
-- The triggers insert after the row they follow was written, so the transaction already has its id.
ALTER TABLE routing_changes ALTER COLUMN xid SET DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX routing_changes_xid ON routing_changes (xid);
