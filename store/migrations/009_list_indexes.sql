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
