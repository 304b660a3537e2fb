-- Stripe webhook events, stored once each (the id is Stripe's evt_ id).
CREATE TABLE paygate_webhook_events (
    id             text PRIMARY KEY,
    type           text NOT NULL,
    api_version    text NOT NULL DEFAULT '',
    livemode       boolean NOT NULL DEFAULT false,
    status         text NOT NULL,
    error          text NOT NULL DEFAULT '',
    payment_id     text NOT NULL DEFAULT '',
    received_count integer NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL, -- Stripe's
    received_at    timestamptz NOT NULL,
    processed_at   timestamptz,
    payload        json NOT NULL         -- exactly as received
);
CREATE INDEX paygate_events_received ON paygate_webhook_events (received_at DESC, id DESC);
CREATE INDEX paygate_events_type ON paygate_webhook_events (type, received_at DESC, id DESC);
CREATE INDEX paygate_events_status ON paygate_webhook_events (status, received_at DESC, id DESC);
