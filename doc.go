// Package paygate takes Stripe payments for Go services, and keeps their
// record in PostgreSQL.
//
// A [Gateway] creates payments backed by Stripe Payment Links
// ([Gateway.CreatePaymentLink]), PaymentIntents for Stripe Elements
// ([Gateway.CreatePaymentIntent]) and Checkout Sessions
// ([Gateway.CreateCheckoutSession]); refunds them ([Gateway.CreateRefund]);
// and lists them with their history ([Gateway.ListPayments],
// [Gateway.GetPayment], [Gateway.ListHistory]). Every method works without
// HTTP; [Gateway.Handler] serves them all as the JSON API documented in
// API.md, for mounting on an existing mux. The paymentd command runs the same
// handler as a standalone service.
//
// # Guarantees
//
//   - Money is integers in Stripe's minor units inside; decimal amounts at the
//     edge are parsed exactly ([Currency.ParseAmount]), never through float64,
//     with every Stripe currency's exponent and special cases.
//   - The payment row is stored before Stripe is called, every Stripe object
//     carries metadata paygate_payment_id, and every Stripe call carries an
//     idempotency key derived from the payment id and the operation, so a
//     retry never creates a second object.
//   - Statuses are ranked and only move up ([Status.Rank]); refunds are
//     reserved under the payment's row lock, so concurrent refunds never
//     exceed the payment.
//   - Bad input is a 4xx that names the field; Stripe's errors are mapped
//     (API.md §2) and nothing internal or secret reaches a client.
//
// # Webhooks and callbacks
//
// [Gateway.HandleWebhook] (also [Gateway.WebhookHandler], and the route
// POST /api/webhooks/stripe) verifies a Stripe event against every secret
// in [Config.WebhookSecrets], stores it once and applies it to its payment
// in one transaction; the result does not depend on the order events
// arrive in. When [Config.CallbackURL] is set, each change also queues a
// callback to the merchant in that transaction; [Gateway.Run] delivers
// them with package callback's engine (signed per Standard Webhooks,
// retried for days, every attempt logged). The receiving side verifies
// them with package callback/verify, which needs only the standard
// library; [CallbackPayload] is its Payload.
//
// [Gateway.Reconcile] catches up where webhooks were lost: it applies the
// events of Stripe's Events API that were never stored (through the
// webhook's own path, once), then re-reads payments that are not final
// from Stripe and applies what it finds through the same state machine;
// one replica at a time.
//
// # Running
//
// [New] validates and starts nothing. [Gateway.Run] runs every background
// part the Config turns on until its context ends: callback delivery,
// reconciliation every [Config.ReconcileInterval], housekeeping (expired
// idempotency keys, system log retention), the system log writer and a
// check of Stripe's webhook endpoint. It returns after letting callback
// attempts in flight finish and flushing the system log. Without Run the
// API works, but no callback is sent and nothing is reconciled or purged.
//
// # Idempotency, limits and logs
//
// The HTTP API honours Idempotency-Key on every creating POST; from Go, set
// the IdempotencyKey field of the params. Payment and refund ids, and the
// idempotency keys sent to Stripe, derive from it, so a retry resumes
// rather than repeats. [Config.RateLimit] limits each API key;
// [Config.SystemLogs] writes a system log row for every request, webhook,
// payment action and error off the request path (Run writes them); [Config.Metrics] serves Prometheus metrics. Secrets are masked
// in every log line, system log row and error message.
//
// # Documentation
//
// [OpenAPI] returns the API's OpenAPI 3.1 document, served at
// GET /api/openapi.json; GET /docs serves the guide in Thai and English
// with a test payment page, built from that document (off with
// [Config.DisableDocs]).
//
// # Testing
//
// Package paygatetest gives a test of code that embeds paygate a running
// Gateway on a throwaway store, talking to package sandbox (a stateful
// stand-in for Stripe, in-process) whose webhooks reach it, with helpers
// to pay, fail, refund and dispute payments and to wait for the signed
// callbacks; package sandbox alone points any program at a Stripe that
// needs no account.
//
// # Storage
//
// The Gateway needs a [Store]; package store implements it on PostgreSQL
// (pgx/v5). The library never opens a database and never migrates on its
// own: call store.Migrate (or run `paymentd migrate`).
//
// # Authentication
//
// [Config.Auth] protects every non-public route; [BearerKeys] accepts API
// keys as bearer tokens. [New] refuses a Config without Auth unless
// [Config.InsecureNoAuth] says the embedding application authenticates
// requests itself.
package paygate
