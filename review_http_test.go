package paygate_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/numedapp/paygate"
)

// The over-refund guard after a Dashboard refund known only from
// charge.refunded: an API refund whose outcome is unknown (Stripe 503, left
// pending) is taken to be part of Stripe's older snapshot, so the Dashboard
// refund stops counting while it is pending, the payment shows less refunded
// than it is and the guard lets a further refund through to Stripe.
func TestReviewOverRefundGuardAfterDashboardRefundAndPendingAPIRefund(t *testing.T) {
	t.Parallel()
	e, fake, _ := newFakeEnvWith(t, "sk_test_123abc", withWebhookSecrets(whsecNew))
	p := e.webhookPayment(paygate.MethodIntent, 1000)
	e.send(stripeEventJSON("", "payment_intent.succeeded", "2023-10-16", piObject(p.PaymentIntentID, "succeeded", 1000, p.ID, "ch_ov"))).must(t, 200, nil)
	// A Dashboard refund of 3.00, seen on the charge only, a minute ago.
	dash := stripeEventJSON("", "charge.refunded", "2023-10-16", chargeObject("ch_ov", p.PaymentIntentID, 1000, 300, p.ID))
	e.send(createdAt(dash, time.Now().Add(-time.Minute))).must(t, 200, nil)
	if got := e.payment(p.ID); got.AmountRefunded != 300 {
		t.Fatalf("after the Dashboard refund: %+v", got.Payment)
	}
	// An API refund of 5.00; Stripe answers 503: outcome unknown, left pending.
	fake.set(503, stripeErr("api_error", "", "", "down"))
	if r := e.do("POST", "/api/payments/refund", `{"paymentId": "`+p.ID+`", "amount": 5}`); r.Status != 502 {
		t.Fatalf("refund with Stripe down: %s", r.Raw)
	}
	got := e.payment(p.ID)
	if got.AmountRefunded != 800 {
		t.Errorf("3.00 (Dashboard) + 5.00 (pending) shows %d refunded, status %s", got.AmountRefunded, got.Status)
	}
	// Only 2.00 remains: a further 5.00 must be refused before Stripe is called.
	fake.mu.Lock()
	before := len(fake.paths)
	fake.mu.Unlock()
	r := e.do("POST", "/api/payments/refund", `{"paymentId": "`+p.ID+`", "amount": 5}`)
	fake.mu.Lock()
	calls := fake.paths[before:]
	fake.mu.Unlock()
	if r.Status != 400 || r.param() != "amount" || len(calls) != 0 {
		t.Errorf("refunding 5.00 more (3.00 + 5.00 of 10.00 refunded): %d %s, Stripe called %v", r.Status, strings.TrimSpace(r.Raw), calls)
	}
}

// Reconciliation takes the 1,000 oldest payments that need it, every pass:
// with more than 1,000 unpaid payments (abandoned PaymentIntents and unpaid
// links stay pending) in the 30-day window, the newer ones are never
// reached — a refund reservation left pending by a Stripe 503 stays pending
// (and counted) for good, and missed webhooks of newer payments are never
// caught up.
func TestReviewReconcileReachesPaymentsBeyondTheFirstBatch(t *testing.T) {
	t.Parallel()
	clk := &testClock{t: time.Now()}
	e, fake, _ := newFakeEnvWith(t, "sk_test_123abc", withClock(clk))
	ctx := context.Background()
	old := clk.Now().Add(-24 * time.Hour).UTC().Truncate(time.Microsecond)
	for i := range 1000 {
		p := &paygate.Payment{ID: fmt.Sprintf("pay_abandoned%05d", i), Method: paygate.MethodIntent, Status: paygate.StatusPending,
			Amount: 1000, Currency: "usd", Quantity: 1, PaymentIntentID: fmt.Sprintf("pi_abandoned%05d", i),
			Metadata: map[string]string{}, Refunds: []paygate.Refund{}, CreatedAt: old, UpdatedAt: old}
		if err := e.store.InsertPayment(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	p := e.webhookPayment(paygate.MethodIntent, 1000)
	e.succeed(p.ID)
	fake.set(503, stripeErr("api_error", "", "", "down"))
	if r := e.do("POST", "/api/payments/refund", `{"paymentId": "`+p.ID+`", "amount": 5}`); r.Status != 502 {
		t.Fatalf("refund with Stripe down: %s", r.Raw)
	}
	// Stripe is back: the abandoned PaymentIntents await a payment method,
	// and Stripe has no refund for the reservation.
	fake.set(200, `{"id": "pi_x", "object": "payment_intent", "status": "requires_payment_method", "amount": 1000, "currency": "usd"}`)
	fake.route("GET", "/v1/refunds", 200, `{"object": "list", "url": "/v1/refunds", "has_more": false, "data": []}`)
	clk.Advance(2 * time.Hour)
	for range 2 {
		if _, err := e.gw.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.payment(p.ID); got.Refunds[0].Status != paygate.RefundPending || got.AmountRefunded != 500 {
		return // settled
	}
	t.Errorf("after two reconciliation passes the reservation is still pending and counted (%d refunded): the payment is never reached", e.payment(p.ID).AmountRefunded)
}
