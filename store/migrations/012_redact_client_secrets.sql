-- Stripe's PaymentIntent events carry the PaymentIntent's client_secret,
-- and paygate stored events as received: the secret was kept at rest,
-- though paygate keeps no client secret. Events are now stored with it
-- replaced (redact.go); this replaces it in the events stored before,
-- wherever in the event it sits, leaving the rest of the text as it was.
UPDATE paygate_webhook_events
SET payload = regexp_replace(payload::text, '("client_secret"\s*:\s*)"(?:[^"\\]|\\.)*"', '\1"[redacted]"', 'g')::json
WHERE strpos(payload::text, '"client_secret"') > 0;
