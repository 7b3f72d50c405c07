-- Nothing to change on SQLite (kept so both dialects number their migrations alike). PostgreSQL's
-- 0006 records each routing change's transaction because its change ids are taken at insert and can
-- commit out of order; SQLite has one writer at a time, so ids always commit in order.
SELECT 1;
