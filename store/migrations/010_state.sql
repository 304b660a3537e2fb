-- Durable state of background work (reconciliation's cursors), and leases
-- that let one replica at a time run a job (a reconciliation pass).
CREATE TABLE paygate_state (
    key        text PRIMARY KEY,
    value      text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE paygate_leases (
    name       text PRIMARY KEY,
    holder     text NOT NULL,
    expires_at timestamptz NOT NULL
);
