-- Idempotency-Key records: the request's hash and, once done, its response.
CREATE TABLE paygate_idempotency_keys (
    scope           text NOT NULL,  -- the caller (API key id)
    key             text NOT NULL,
    request_hash    bytea NOT NULL,
    status          text NOT NULL,  -- in_flight | done
    response_status integer,
    response_body   bytea,
    locked_at       timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX paygate_idempotency_expires ON paygate_idempotency_keys (expires_at);
