// Package sandbox is a stateful stand-in for Stripe: the parts of Stripe's
// API that paygate uses, with Stripe's behaviour (test cards, 3D Secure,
// bank debits that settle later, refunds that fail after succeeding,
// disputes, expiring Checkout Sessions), the events Stripe emits in Stripe's
// order, signed webhook delivery with retries, hosted pages a person can
// click through, and a control API for tests.
//
// stripe-go's real HTTP backend talks to it: give its URL to
// stripe.BackendConfig.URL, or to paygate's Config.StripeAPIBase. It needs
// no network and nothing installed, so embedders use it in their own tests
// and `paymentd dev` runs it in-process. stripe-mock stays the request
// validator in paygate's suite; the sandbox is for flows. It does not import
// the paygate package.
//
// # Using it in a test
//
//	sb, err := sandbox.NewServer(sandbox.Config{})   // loopback server
//	defer sb.Close()
//	sb.SetWebhook(webhookURL, "")                    // where events go
//	// paygate.Config{StripeAPIBase: sb.URL(), StripeSecretKey: "sk_test_123abc",
//	//   WebhookSecrets: []string{sb.WebhookSecret()}, Now: sb.Now}
//	sb.PayLink(linkID, "4242424242424242")           // a customer pays
//	sb.DeliverAll()                                  // webhooks, now
//	truth := sb.Truth(paymentID)                     // what Stripe holds
//
// New builds a sandbox without serving it: mount Handler on your own server
// and call SetBaseURL (page URLs need it) and Run (for AutoDeliver).
//
// Webhooks are delivered only when the test says so (DeliverAll, Advance),
// unless Config.AutoDeliver runs a background deliverer. Deliveries are
// sent one at a time and DeliverAll waits for each answer, so a webhook
// handler must not call DeliverAll or Advance itself (it would wait for
// itself); it may call the API. Signatures are Stripe's: Stripe-Signature:
// t=<unix>,v1=<hex HMAC-SHA256 of "t.payload"> keyed with the whsec_
// secret, stamped with the sandbox clock; a receiver that checks timestamp
// tolerance must use the same clock (paygate: Config.Now = sb.Now) once a
// test has called Advance.
//
// # The API
//
// Under /v1/, form-encoded as stripe-go sends it (nested a[b][0][c] keys),
// authenticated with Authorization: Bearer sk_test_… (live keys, sk_live_
// and rk_live_, are refused with a 401 that says why):
//
//	POST /v1/products, GET /v1/products/{id}
//	POST /v1/prices (product or product_data), GET /v1/prices/{id}
//	POST /v1/payment_links, GET and POST /v1/payment_links/{id} (active, metadata, restrictions)
//	POST /v1/checkout/sessions, GET /v1/checkout/sessions (payment_link, payment_intent, status),
//	     GET /v1/checkout/sessions/{id}, POST /v1/checkout/sessions/{id}/expire,
//	     GET /v1/checkout/sessions/{id}/line_items, GET /v1/payment_links/{id}/line_items
//	POST /v1/payment_intents, GET /v1/payment_intents, GET and POST /v1/payment_intents/{id},
//	     POST /v1/payment_intents/{id}/confirm, POST /v1/payment_intents/{id}/cancel
//	GET /v1/charges (payment_intent), GET /v1/charges/{id}
//	POST /v1/refunds (payment_intent or charge, amount, reason, metadata),
//	     GET /v1/refunds (payment_intent, charge), GET /v1/refunds/{id}
//	GET /v1/disputes, GET /v1/disputes/{id}
//	GET /v1/events (type, with a trailing * wildcard, types[], created[gte|gt|lte|lt]), GET /v1/events/{id}
//	GET /v1/webhook_endpoints, GET /v1/webhook_endpoints/{id}
//
// Errors are Stripe's error object ({"error":{"type","code","message",
// "param"}}) with Stripe's statuses: 400 naming the param for a bad or
// unknown parameter, 402 card_error (with the PaymentIntent) for a decline,
// 404 resource_missing for an unknown id or route. Amounts below Stripe's
// minimum charge for the currency (0.50 USD/EUR, 0.30 GBP, 10.00 THB, …)
// are refused with amount_too_small, and above 999,999.99 with
// amount_too_large, on PaymentIntents and Checkout Sessions, as at Stripe. Idempotency-Key works as
// at Stripe: the same key and parameters replay the first answer
// (Idempotent-Replayed: true), other parameters or another endpoint get 400
// idempotency_error; answers to requests that failed validation are not
// kept. Lists take limit (1–100, default 10), starting_after, ending_before
// and answer {object, data, has_more, url}, newest first. expand[] works on
// the expandable fields paygate reads (checkout.session: payment_intent,
// payment_link, line_items; payment_intent: latest_charge; charge:
// payment_intent, refunds; refund and dispute: charge, payment_intent;
// price: product; and data.… on lists, nested with dots). Every response
// carries the header Sandbox: paygate.
//
// # Payment methods
//
// Pages and payment_method take a test card number, "pm_card_<number>", or
// Stripe's test tokens (see Tokens and Cards):
//
//	4242424242424242  succeeds                    (pm_card_visa)
//	4000000000000002  declined, generic_decline   (pm_card_chargeDeclined)
//	4000000000009995  declined, insufficient_funds (pm_card_chargeDeclinedInsufficientFunds)
//	4000002500003155  3D Secure, then succeeds or fails (pm_card_authenticationRequiredOnSetup)
//	4000002760003184  3D Secure always            (pm_card_authenticationRequired)
//	4000000000000259  succeeds, then disputed     (pm_card_createDispute)
//	4000000000007726  refunds start pending, succeed after RefundSettleAfter
//	4000000000005126  refunds succeed, then fail after RefundFailAfter
//	000123456789      bank debit (us_bank_account): processing, settles after DebitSettleAfter
//	000111111113      bank debit that fails when it settles
//
// Any other Luhn-valid number succeeds.
//
// # Events
//
// Each change emits Stripe's events in Stripe's order, with API version
// 2023-10-16 shapes: a card paid on a Checkout Session gives
// payment_intent.created, charge.succeeded, payment_intent.succeeded,
// checkout.session.completed (and payment_link.updated when a link reaches
// its completed-sessions limit and deactivates); a decline gives
// charge.failed, payment_intent.payment_failed; 3D Secure gives
// payment_intent.requires_action first; a bank debit gives charge.pending,
// payment_intent.processing, checkout.session.completed (payment_status
// unpaid), then later charge.succeeded, payment_intent.succeeded,
// checkout.session.async_payment_succeeded or charge.failed,
// payment_intent.payment_failed, checkout.session.async_payment_failed; a
// refund gives charge.refunded (the charge has no embedded refunds list in
// 2023-10-16) and refund.created, then charge.refund.updated and
// refund.updated when its status changes, and refund.failed when it fails;
// a dispute gives charge.dispute.created, charge.dispute.funds_withdrawn,
// charge.dispute.updated, charge.dispute.closed (and
// charge.dispute.funds_reinstated when won); an expiring session gives
// checkout.session.expired and payment_intent.canceled. Events caused by an
// API call carry its request id and idempotency key.
//
// # Pages
//
// Plain HTML with no external assets, each with a SANDBOX banner:
//
//	/pay/{link}              a payment link: opens a new Checkout Session per visit
//	/checkout/{session}      the hosted checkout: test-card buttons, a card field, bank
//	                         debit buttons, then success_url (or the link's redirect, or
//	                         a "paid" page); a decline shows the error and stays open
//	/authenticate/{intent}   the 3D Secure challenge: complete or fail
//	/confirm?client_secret=…&return_url=…
//	                         the Payment Element stand-in for a PaymentIntent; redirects to
//	                         return_url with payment_intent, payment_intent_client_secret
//	                         and redirect_status, as Stripe does
//	/sandbox.js              PaygateSandbox.mount("#el", {clientSecret, returnUrl}) puts
//	                         the confirm page in an iframe (its form posts to the top window)
//	/_sandbox/dashboard      the "Dashboard": PaymentIntents, refunds and disputes with
//	                         buttons to refund, dispute, settle or fail a bank debit, fail
//	                         or succeed a refund, submit evidence, win or lose a dispute,
//	                         advance the clock and deliver webhooks
//
// Payment link and Checkout Session url fields point at these pages on the
// sandbox's base URL.
//
// # Control
//
// Go methods: VisitLink, PayLink, PaySession, PayIntent, Authenticate,
// Settle, ExpireSession, Refund (a Dashboard refund), SucceedRefund,
// FailRefund, Dispute, UpdateDispute, CloseDispute, Advance, Now,
// FailNext (faults), SetChaos (webhook chaos), SetWebhook, DeliverAll,
// Redeliver,
// Deliveries, Events, EventTypes, Truth, Truths, Untagged, Object, SessionIntent,
// LinkSessions, Reset. The same over HTTP, JSON in and out, no key:
//
//	POST /_sandbox/payment_links/{id}/visit           -> {"checkout_session"}
//	POST /_sandbox/checkout_sessions/{id}/pay         {"payment_method"}
//	POST /_sandbox/checkout_sessions/{id}/expire
//	POST /_sandbox/payment_intents/{id}/pay           {"payment_method"}
//	POST /_sandbox/payment_intents/{id}/authenticate  {"ok": true|false}
//	POST /_sandbox/payment_intents/{id}/settle        {"ok": true|false}
//	POST /_sandbox/payment_intents/{id}/refund        {"amount", "reason"} -> {"refund"}
//	POST /_sandbox/payment_intents/{id}/dispute       {"reason"} -> {"dispute"}
//	POST /_sandbox/refunds/{id}/succeed | /fail       {"reason"}
//	POST /_sandbox/disputes/{id}/update               {"evidence"}
//	POST /_sandbox/disputes/{id}/close                {"won": true|false}
//	GET  /_sandbox/clock, POST /_sandbox/clock/advance {"seconds"}
//	POST /_sandbox/faults   {"count","path","method","status","hang","hang_seconds","after_execute","remember"}
//	POST /_sandbox/chaos    {"seed","duplicate","reorder","delay","drop","delay_seconds"}
//	POST /_sandbox/webhook  {"url","secret"}
//	POST /_sandbox/deliver, GET /_sandbox/deliveries, GET /_sandbox/events,
//	POST /_sandbox/events/{id}/redeliver
//	GET  /_sandbox/truth, GET /_sandbox/truth/{paygate_payment_id}
//	POST /_sandbox/reset
//
// The control API and the pages take no key: the sandbox holds no real
// money, but do not expose it beyond your machine.
//
// Faults make the next N API calls (optionally by path and method) answer
// 500 or 429, hang until the client gives up (or answer late), execute and
// then answer 500 anyway (the idempotent retry then replays the real
// answer), or answer a 500 that the idempotency layer remembers (retries
// with the same key get it again, as at Stripe). Chaos
// drops, delays, duplicates and reorders webhook deliveries at given rates
// from a seeded generator: one seed, one schedule. Truth is the sandbox's
// view of a payment, by the paygate_payment_id metadata paygate puts on
// every object (and paygate_refund_id on its refunds): its links, sessions,
// PaymentIntents, which one succeeded, charges, amounts paid and refunded,
// refunds with statuses, disputes.
//
// # Differences from Stripe
//
//   - Only the endpoints and parameters above exist; anything else is a 404
//     or a 400 "unknown parameter". No customers, payment methods as
//     objects, setup intents, manual capture, subscriptions, invoices,
//     Connect, taxes, discounts, shipping, or currencies' minimum amounts.
//   - Payment methods are test numbers and tokens only; a PaymentIntent's
//     payment_method is a fresh pm_ id that cannot be retrieved.
//   - No balance transactions to retrieve (their ids are placeholders),
//     no fees, no payouts; dispute balance transactions are inline.
//   - One webhook endpoint, configured in Go or over /_sandbox/webhook, not
//     created through the API. Retries follow DefaultRetrySchedule (about
//     three days of backoff) on the sandbox clock, not Stripe's exact one.
//   - Deliveries are sent one at a time in event order (Stripe sends
//     concurrently and does not promise an order); chaos adds disorder on
//     demand.
//   - Idempotency keys never expire (Stripe forgets them after 24 hours)
//     and are not scoped by Stripe-Account.
//   - Objects validate against the OpenAPI spec stripe-mock ships, which is
//     newer than 2023-10-16: fields that spec requires are present; 2023
//     fields it dropped (invoice on PaymentIntents, shipping_details on
//     sessions) are not emitted.
//   - A Checkout Session's PaymentIntent is made on the customer's first
//     payment attempt and reused by the next ones in that session, as
//     Stripe does today; the session's payment_method_types default to
//     card and us_bank_account.
//   - Charges never embed refunds (2023-10-16), but charge.refunds is
//     expandable; there is no charge.updated event.
//   - Times are whole seconds on the sandbox clock (real time plus Advance).
//   - Every answer has 2023-10-16 shapes whatever Stripe-Version the client
//     sends (stripe-go v76 sends 2023-10-16); answers say Stripe-Version:
//     2023-10-16.
//   - Live keys are always refused; any sk_test_/rk_test_ key is accepted
//     unless Config.APIKey names the one to accept.
package sandbox
