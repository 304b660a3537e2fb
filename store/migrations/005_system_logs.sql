-- The system log: API requests, webhook outcomes, payment actions, errors.
CREATE TABLE paygate_system_logs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    level       text NOT NULL,
    source      text NOT NULL,
    message     text NOT NULL,
    request_id  text NOT NULL DEFAULT '',
    method      text NOT NULL DEFAULT '',
    path        text NOT NULL DEFAULT '',
    status_code integer NOT NULL DEFAULT 0,
    duration_ms bigint NOT NULL DEFAULT 0,
    fields      jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL
);
CREATE INDEX paygate_logs_created ON paygate_system_logs (created_at);
-- Most rows are info and http: those filters walk the primary key backwards;
-- the rarer values have partial indexes, so common rows pay for none.
CREATE INDEX paygate_logs_level ON paygate_system_logs (level, id DESC) WHERE level <> 'info';
CREATE INDEX paygate_logs_source ON paygate_system_logs (source, id DESC) WHERE source <> 'http';
CREATE INDEX paygate_logs_request ON paygate_system_logs (request_id) WHERE request_id <> '';
