-- Stripe's PaymentIntent events carry the PaymentIntent's client_secret,
-- and paygate stored events as received: the secret was kept at rest,
-- though paygate keeps no client secret. Events are now stored with it
-- replaced (redact.go); this replaces it in the events stored before (in
-- data.object, where Stripe puts it; SQLite has no regular expressions).
UPDATE paygate_webhook_events
SET payload = json_set(payload, '$.data.object.client_secret', '[redacted]')
WHERE json_valid(payload) AND json_type(payload, '$.data.object.client_secret') = 'text';
