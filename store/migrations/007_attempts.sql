-- Attempts, disputes, Stripe's refunded-amount snapshot, and every Stripe id
-- of a payment. A payment link opens a new Checkout Session and
-- PaymentIntent per visit: each attempt's ids must find the payment, so the
-- lookups move from unique columns of the payment row to one table.
ALTER TABLE paygate_payments
    ADD COLUMN attempts jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN disputes jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN stripe_refunded_at timestamptz NOT NULL DEFAULT 'epoch';
UPDATE paygate_payments SET stripe_refunded_at = updated_at WHERE stripe_amount_refunded > 0;

CREATE TABLE paygate_payment_refs (
    stripe_id  text PRIMARY KEY,   -- plink_…, cs_…, pi_…, ch_…
    payment_id text NOT NULL REFERENCES paygate_payments (id)
);
INSERT INTO paygate_payment_refs (stripe_id, payment_id)
SELECT DISTINCT ON (stripe_id) stripe_id, id FROM (
    SELECT payment_link_id AS stripe_id, id, created_at FROM paygate_payments WHERE payment_link_id <> ''
    UNION ALL SELECT checkout_session_id, id, created_at FROM paygate_payments WHERE checkout_session_id <> ''
    UNION ALL SELECT payment_intent_id, id, created_at FROM paygate_payments WHERE payment_intent_id <> ''
    UNION ALL SELECT charge_id, id, created_at FROM paygate_payments WHERE charge_id <> ''
) ids ORDER BY stripe_id, created_at;

-- No query reads these any more; every webhook update paid for them.
DROP INDEX paygate_payments_intent;
DROP INDEX paygate_payments_session;
DROP INDEX paygate_payments_link;
DROP INDEX paygate_payments_charge;
