-- The system log lists newest first by time (with the id as tie breaker),
-- so that a from/to window reads an index in order however deep it lies;
-- the level and source filters keep their partial indexes in that order.
DROP INDEX paygate_logs_created;
DROP INDEX paygate_logs_level;
DROP INDEX paygate_logs_source;
CREATE INDEX paygate_logs_created ON paygate_system_logs (created_at DESC, id DESC);
CREATE INDEX paygate_logs_level ON paygate_system_logs (level, created_at DESC, id DESC) WHERE level <> 'info';
CREATE INDEX paygate_logs_source ON paygate_system_logs (source, created_at DESC, id DESC) WHERE source <> 'http';

-- Nearly every event is processed: the status index only holds the others,
-- and a list of processed events reads the received-order index, filtered.
-- One index entry less for every event stored.
DROP INDEX paygate_events_status;
CREATE INDEX paygate_events_status ON paygate_webhook_events (status, received_at DESC, id DESC) WHERE status <> 'processed';

-- Room on each page for the new versions of updated rows, so that updates
-- which change no indexed column (a payment's attempts, callback sequence,
-- updated_at; a callback's lease) stay on their page (HOT): no index entry.
ALTER TABLE paygate_payments SET (fillfactor = 85);
ALTER TABLE paygate_callbacks SET (fillfactor = 80);

-- Callback attempts: nobody looks attempts up by callback (the foreign key
-- is never checked the other way: callbacks are not deleted), and the
-- success filter is for finding failures: two index entries less for every
-- attempt recorded.
DROP INDEX paygate_attempts_callback;
DROP INDEX paygate_attempts_success;
CREATE INDEX paygate_attempts_failed ON paygate_callback_attempts (id DESC) WHERE NOT success;
