-- A stored webhook event's payload (Stripe's event, about 4 KB) is
-- compressed on insert. PostgreSQL's default method, pglz, cost about 8 %
-- of the server's CPU under webhook load (perf; 50 µs an event against
-- lz4's 4 µs, docs/benchmarks.md). A server built without lz4, or older
-- than PostgreSQL 14 (no per-column compression), keeps pglz: nothing else
-- depends on the method. Rows already stored keep theirs; no table is
-- rewritten. (Callback payloads are too small to be compressed at all.)
DO $$
BEGIN
    EXECUTE 'ALTER TABLE paygate_webhook_events ALTER COLUMN payload SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported OR syntax_error THEN
    RAISE NOTICE 'paygate: lz4 compression is not available, event payloads stay pglz: %', SQLERRM;
END $$;
