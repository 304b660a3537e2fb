-- Payments, their refunds and their history.
CREATE TABLE paygate_payments (
    id                     text PRIMARY KEY,
    method                 text NOT NULL CHECK (method IN ('link', 'intent', 'checkout')),
    status                 text NOT NULL,
    amount                 bigint NOT NULL CHECK (amount > 0),
    amount_refunded        bigint NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0),
    stripe_amount_refunded bigint NOT NULL DEFAULT 0 CHECK (stripe_amount_refunded >= 0),
    currency               text NOT NULL,
    description            text NOT NULL DEFAULT '',
    product_name           text NOT NULL DEFAULT '',
    quantity               bigint NOT NULL DEFAULT 1 CHECK (quantity > 0),
    customer_email         text NOT NULL DEFAULT '',
    metadata               jsonb NOT NULL DEFAULT '{}',
    payment_url            text NOT NULL DEFAULT '',
    price_id               text NOT NULL DEFAULT '',
    payment_link_id        text NOT NULL DEFAULT '',
    checkout_session_id    text NOT NULL DEFAULT '',
    payment_intent_id      text NOT NULL DEFAULT '',
    charge_id              text NOT NULL DEFAULT '',
    livemode               boolean NOT NULL DEFAULT false,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL
);

-- Newest first, with the id as tie breaker: the order of every list and of cursors.
CREATE INDEX paygate_payments_created ON paygate_payments (created_at DESC, id DESC);
CREATE INDEX paygate_payments_status ON paygate_payments (status, created_at DESC, id DESC);
CREATE INDEX paygate_payments_method ON paygate_payments (method, created_at DESC, id DESC);
CREATE INDEX paygate_payments_email ON paygate_payments (customer_email, created_at DESC, id DESC) WHERE customer_email <> '';
-- Lookups by Stripe id (webhooks, refunds, payment-intent routes).
CREATE UNIQUE INDEX paygate_payments_intent ON paygate_payments (payment_intent_id) WHERE payment_intent_id <> '';
CREATE UNIQUE INDEX paygate_payments_session ON paygate_payments (checkout_session_id) WHERE checkout_session_id <> '';
CREATE UNIQUE INDEX paygate_payments_link ON paygate_payments (payment_link_id) WHERE payment_link_id <> '';
CREATE INDEX paygate_payments_charge ON paygate_payments (charge_id) WHERE charge_id <> '';

CREATE TABLE paygate_refunds (
    id               text PRIMARY KEY,
    payment_id       text NOT NULL REFERENCES paygate_payments (id),
    stripe_refund_id text NOT NULL DEFAULT '',
    amount           bigint NOT NULL CHECK (amount > 0),
    status           text NOT NULL,
    reason           text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX paygate_refunds_payment ON paygate_refunds (payment_id, created_at);
CREATE UNIQUE INDEX paygate_refunds_stripe ON paygate_refunds (stripe_refund_id) WHERE stripe_refund_id <> '';

CREATE TABLE paygate_payment_history (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payment_id        text NOT NULL REFERENCES paygate_payments (id),
    payment_intent_id text NOT NULL DEFAULT '',
    event_type        text NOT NULL,
    from_status       text NOT NULL DEFAULT '',
    to_status         text NOT NULL DEFAULT '',
    amount            bigint NOT NULL DEFAULT 0,
    currency          text NOT NULL DEFAULT '',
    stripe_event_id   text NOT NULL DEFAULT '',
    source            text NOT NULL,
    data              jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL
);
CREATE INDEX paygate_history_payment ON paygate_payment_history (payment_id, id);
CREATE INDEX paygate_history_intent ON paygate_payment_history (payment_intent_id, id DESC) WHERE payment_intent_id <> '';
CREATE INDEX paygate_history_type ON paygate_payment_history (event_type, id DESC);
