-- The SQLite schema: the same tables and indexes as PostgreSQL migrations 001–010.
-- Timestamps are TEXT in one fixed-width UTC form with microseconds
-- (2006-01-02T15:04:05.000000Z), so text order is time order; JSON columns
-- are TEXT; booleans are 0/1.
CREATE TABLE paygate_payments (
    id                     TEXT PRIMARY KEY,
    method                 TEXT NOT NULL CHECK (method IN ('link', 'intent', 'checkout')),
    status                 TEXT NOT NULL,
    amount                 INTEGER NOT NULL CHECK (amount > 0),
    amount_refunded        INTEGER NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0),
    stripe_amount_refunded INTEGER NOT NULL DEFAULT 0 CHECK (stripe_amount_refunded >= 0),
    currency               TEXT NOT NULL,
    description            TEXT NOT NULL DEFAULT '',
    product_name           TEXT NOT NULL DEFAULT '',
    quantity               INTEGER NOT NULL DEFAULT 1 CHECK (quantity > 0),
    customer_email         TEXT NOT NULL DEFAULT '',
    metadata               TEXT NOT NULL DEFAULT '{}',
    payment_url            TEXT NOT NULL DEFAULT '',
    price_id               TEXT NOT NULL DEFAULT '',
    payment_link_id        TEXT NOT NULL DEFAULT '',
    checkout_session_id    TEXT NOT NULL DEFAULT '',
    payment_intent_id      TEXT NOT NULL DEFAULT '',
    charge_id              TEXT NOT NULL DEFAULT '',
    livemode               INTEGER NOT NULL DEFAULT 0,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL,
    callback_seq           INTEGER NOT NULL DEFAULT 0,
    attempts               TEXT NOT NULL DEFAULT '[]',
    disputes               TEXT NOT NULL DEFAULT '[]',
    stripe_refunded_at     TEXT NOT NULL DEFAULT '1970-01-01T00:00:00.000000Z'
) WITHOUT ROWID;
CREATE INDEX paygate_payments_created ON paygate_payments (created_at DESC, id DESC);
CREATE INDEX paygate_payments_status ON paygate_payments (status, created_at DESC, id DESC);
CREATE INDEX paygate_payments_method ON paygate_payments (method, created_at DESC, id DESC);
CREATE INDEX paygate_payments_email ON paygate_payments (customer_email, created_at DESC, id DESC) WHERE customer_email <> '';

CREATE TABLE paygate_payment_refs (
    stripe_id  TEXT PRIMARY KEY,   -- plink_…, cs_…, pi_…, ch_…
    payment_id TEXT NOT NULL REFERENCES paygate_payments (id)
) WITHOUT ROWID;
CREATE INDEX paygate_payment_refs_payment ON paygate_payment_refs (payment_id);

CREATE TABLE paygate_refunds (
    id               TEXT PRIMARY KEY,
    payment_id       TEXT NOT NULL REFERENCES paygate_payments (id),
    stripe_refund_id TEXT NOT NULL DEFAULT '',
    amount           INTEGER NOT NULL CHECK (amount > 0),
    status           TEXT NOT NULL,
    reason           TEXT NOT NULL DEFAULT '',
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX paygate_refunds_payment ON paygate_refunds (payment_id, created_at);
CREATE UNIQUE INDEX paygate_refunds_stripe ON paygate_refunds (stripe_refund_id) WHERE stripe_refund_id <> '';
CREATE INDEX paygate_refunds_unconfirmed ON paygate_refunds (created_at) WHERE status = 'pending' AND stripe_refund_id = '';

CREATE TABLE paygate_payment_history (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    payment_id        TEXT NOT NULL REFERENCES paygate_payments (id),
    payment_intent_id TEXT NOT NULL DEFAULT '',
    event_type        TEXT NOT NULL,
    from_status       TEXT NOT NULL DEFAULT '',
    to_status         TEXT NOT NULL DEFAULT '',
    amount            INTEGER NOT NULL DEFAULT 0,
    currency          TEXT NOT NULL DEFAULT '',
    stripe_event_id   TEXT NOT NULL DEFAULT '',
    source            TEXT NOT NULL,
    data              TEXT NOT NULL DEFAULT '{}',
    created_at        TEXT NOT NULL
);
CREATE INDEX paygate_history_payment ON paygate_payment_history (payment_id, id);
CREATE INDEX paygate_history_intent ON paygate_payment_history (payment_intent_id, id DESC) WHERE payment_intent_id <> '';
CREATE INDEX paygate_history_type ON paygate_payment_history (event_type, id DESC);

CREATE TABLE paygate_webhook_events (
    id             TEXT PRIMARY KEY,
    type           TEXT NOT NULL,
    api_version    TEXT NOT NULL DEFAULT '',
    livemode       INTEGER NOT NULL DEFAULT 0,
    status         TEXT NOT NULL,
    error          TEXT NOT NULL DEFAULT '',
    payment_id     TEXT NOT NULL DEFAULT '',
    received_count INTEGER NOT NULL DEFAULT 1,
    created_at     TEXT NOT NULL, -- Stripe's
    received_at    TEXT NOT NULL,
    processed_at   TEXT,
    payload        TEXT NOT NULL  -- exactly as received
) WITHOUT ROWID;
CREATE INDEX paygate_events_received ON paygate_webhook_events (received_at DESC, id DESC);
CREATE INDEX paygate_events_type ON paygate_webhook_events (type, received_at DESC, id DESC);
-- Nearly every event is processed: the status index only holds the others.
CREATE INDEX paygate_events_status ON paygate_webhook_events (status, received_at DESC, id DESC) WHERE status <> 'processed';

CREATE TABLE paygate_callbacks (
    id               TEXT PRIMARY KEY,
    payment_id       TEXT NOT NULL REFERENCES paygate_payments (id),
    webhook_event_id TEXT NOT NULL,
    sequence         INTEGER NOT NULL,
    event_type       TEXT NOT NULL,
    action           TEXT NOT NULL,
    url              TEXT NOT NULL,
    payload          TEXT NOT NULL,  -- exactly the body sent
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    lease_token      TEXT,
    lease_expires_at TEXT,
    last_error       TEXT NOT NULL DEFAULT '',
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    delivered_at     TEXT,
    UNIQUE (payment_id, sequence)
) WITHOUT ROWID;
CREATE INDEX paygate_callbacks_due ON paygate_callbacks (next_attempt_at, id) WHERE status = 'pending';

CREATE TABLE paygate_callback_attempts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    callback_id      TEXT NOT NULL REFERENCES paygate_callbacks (id),
    webhook_event_id TEXT NOT NULL,
    payment_id       TEXT NOT NULL,
    url              TEXT NOT NULL,
    attempt          INTEGER NOT NULL,
    success          INTEGER NOT NULL,
    status_code      INTEGER NOT NULL DEFAULT 0,
    error            TEXT NOT NULL DEFAULT '',
    error_class      TEXT NOT NULL DEFAULT '',
    duration_ms      INTEGER NOT NULL DEFAULT 0,
    response_body    TEXT NOT NULL DEFAULT '',
    created_at       TEXT NOT NULL
);
CREATE INDEX paygate_attempts_event ON paygate_callback_attempts (webhook_event_id, id DESC);
CREATE INDEX paygate_attempts_payment ON paygate_callback_attempts (payment_id, id DESC);
CREATE INDEX paygate_attempts_success ON paygate_callback_attempts (success, id DESC);
CREATE INDEX paygate_attempts_callback ON paygate_callback_attempts (callback_id, id);

CREATE TABLE paygate_idempotency_keys (
    scope           TEXT NOT NULL,
    key             TEXT NOT NULL,
    request_hash    BLOB NOT NULL,
    status          TEXT NOT NULL,  -- in_flight | released | done
    response_status INTEGER,
    response_body   BLOB,
    locked_at       TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE INDEX paygate_idempotency_expires ON paygate_idempotency_keys (expires_at);

CREATE TABLE paygate_system_logs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    level       TEXT NOT NULL,
    source      TEXT NOT NULL,
    message     TEXT NOT NULL,
    request_id  TEXT NOT NULL DEFAULT '',
    method      TEXT NOT NULL DEFAULT '',
    path        TEXT NOT NULL DEFAULT '',
    status_code INTEGER NOT NULL DEFAULT 0,
    duration_ms INTEGER NOT NULL DEFAULT 0,
    fields      TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL
);
-- Newest first by time, the id as tie breaker; the rarer levels and sources
-- have partial indexes in that order.
CREATE INDEX paygate_logs_created ON paygate_system_logs (created_at DESC, id DESC);
CREATE INDEX paygate_logs_level ON paygate_system_logs (level, created_at DESC, id DESC) WHERE level <> 'info';
CREATE INDEX paygate_logs_source ON paygate_system_logs (source, created_at DESC, id DESC) WHERE source <> 'http';
CREATE INDEX paygate_logs_request ON paygate_system_logs (request_id) WHERE request_id <> '';

-- Durable state of background work (reconciliation's cursors), and leases
-- that let one holder at a time run a job.
CREATE TABLE paygate_state (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE paygate_leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TEXT NOT NULL
) WITHOUT ROWID;
