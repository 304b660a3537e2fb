-- Refunds reserved but never confirmed by Stripe, for reconciliation.
CREATE INDEX paygate_refunds_unconfirmed ON paygate_refunds (created_at) WHERE status = 'pending' AND stripe_refund_id = '';
