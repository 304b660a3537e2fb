-- The callback outbox and its attempt log.
ALTER TABLE paygate_payments ADD COLUMN callback_seq bigint NOT NULL DEFAULT 0;

CREATE TABLE paygate_callbacks (
    id               text PRIMARY KEY,      -- cb_…, the webhook-id of every attempt
    payment_id       text NOT NULL REFERENCES paygate_payments (id),
    webhook_event_id text NOT NULL,
    sequence         bigint NOT NULL,
    event_type       text NOT NULL,
    action           text NOT NULL,
    url              text NOT NULL,
    payload          json NOT NULL,         -- exactly the body sent
    status           text NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    lease_token      text,
    lease_expires_at timestamptz,
    last_error       text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    delivered_at     timestamptz,
    UNIQUE (payment_id, sequence)
);
-- Workers claim due callbacks in this order.
CREATE INDEX paygate_callbacks_due ON paygate_callbacks (next_attempt_at, id) WHERE status = 'pending';

CREATE TABLE paygate_callback_attempts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    callback_id      text NOT NULL REFERENCES paygate_callbacks (id),
    webhook_event_id text NOT NULL,
    payment_id       text NOT NULL,
    url              text NOT NULL,
    attempt          integer NOT NULL,
    success          boolean NOT NULL,
    status_code      integer NOT NULL DEFAULT 0,
    error            text NOT NULL DEFAULT '',
    error_class      text NOT NULL DEFAULT '',
    duration_ms      bigint NOT NULL DEFAULT 0,
    response_body    text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL
);
CREATE INDEX paygate_attempts_event ON paygate_callback_attempts (webhook_event_id, id DESC);
CREATE INDEX paygate_attempts_payment ON paygate_callback_attempts (payment_id, id DESC);
CREATE INDEX paygate_attempts_success ON paygate_callback_attempts (success, id DESC);
CREATE INDEX paygate_attempts_callback ON paygate_callback_attempts (callback_id, id);
