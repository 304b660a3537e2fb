package paygate_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/numedapp/paygate"
)

func TestReconcileCatchesUpPayments(t *testing.T) {
	t.Parallel()
	clk := &testClock{t: time.Now()}
	e, fake, _ := newFakeEnvWith(t, "sk_test_123abc", withClock(clk), func(c *paygate.Config) { c.CallbackURL = "https://merchant.example/cb" })
	ctx := context.Background()

	// An intent whose success webhook was lost.
	fake.set(200, `{"id": "pi_rec1", "object": "payment_intent", "status": "requires_payment_method", "client_secret": "pi_rec1_secret_x"}`)
	var pi paygate.CreatedIntent
	e.do("POST", "/api/payments/payment-intent", `{"amount": 12}`).must(t, 201, &pi)
	fake.route("GET", "/v1/payment_intents/pi_rec1", 200, `{"id": "pi_rec1", "object": "payment_intent", "status": "succeeded", "amount": 1200, "currency": "usd", "latest_charge": "ch_rec1"}`)

	// A checkout session, and a payment link, completed without our hearing.
	cs := e.webhookPayment(paygate.MethodCheckout, 500)
	fake.route("GET", "/v1/checkout/sessions/"+cs.CheckoutSessionID, 200, `{"id": "`+cs.CheckoutSessionID+`", "object": "checkout.session",
		"status": "complete", "payment_status": "paid", "payment_intent": "pi_rec_cs", "amount_total": 500, "currency": "usd"}`)
	link := e.webhookPayment(paygate.MethodLink, 700)
	fake.route("GET", "/v1/checkout/sessions", 200, `{"object": "list", "url": "/v1/checkout/sessions", "has_more": false, "data": [
		{"id": "cs_rec_link", "object": "checkout.session", "status": "complete", "payment_status": "paid", "payment_intent": "pi_rec_link",
		 "payment_link": "`+link.PaymentLinkID+`", "amount_total": 700, "currency": "usd", "customer_details": {"email": "payer@example.com"}}]}`)

	// One whose PaymentIntent is still waiting: nothing to do.
	still := e.webhookPayment(paygate.MethodIntent, 300)
	fake.route("GET", "/v1/payment_intents/"+still.PaymentIntentID, 200, `{"id": "`+still.PaymentIntentID+`", "object": "payment_intent", "status": "requires_payment_method"}`)

	res, err := e.gw.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Checked != 4 || res.Updated != 3 || res.Failed != 0 {
		t.Fatalf("result = %+v", res)
	}
	p := e.payment(pi.PaymentID)
	if p.Status != paygate.StatusSucceeded || p.ChargeID != "ch_rec1" || p.History[len(p.History)-1].Source != "reconcile" {
		t.Fatalf("intent: %+v %+v", p.Payment, p.History)
	}
	if c := e.payment(cs.ID); c.Status != paygate.StatusSucceeded || c.PaymentIntentID != "pi_rec_cs" || c.History[0].EventType != "checkout_completed" {
		t.Fatalf("checkout: %+v", c.Payment)
	}
	if l := e.payment(link.ID); l.Status != paygate.StatusSucceeded || l.CheckoutSessionID != "cs_rec_link" || l.CustomerEmail != "payer@example.com" {
		t.Fatalf("link: %+v", l.Payment)
	}
	if s := e.payment(still.ID); s.Status != paygate.StatusPending || len(s.History) != 0 {
		t.Fatalf("waiting payment changed: %+v", s.Payment)
	}
	// Each change queues its callback, as the lost webhook would have.
	if n, _ := e.store.CallbackQueueDepth(ctx); n != 3 {
		t.Fatalf("%d callbacks queued", n)
	}
	// A second pass finds only the waiting payment.
	if res, _ := e.gw.Reconcile(ctx); res.Checked != 1 || res.Updated != 0 {
		t.Fatalf("second pass: %+v", res)
	}
	// Stripe failing: counted, nothing changed.
	fake.route("GET", "/v1/payment_intents/"+still.PaymentIntentID, 500, stripeErr("api_error", "", "", "boom"))
	if res, _ := e.gw.Reconcile(ctx); res.Failed != 1 {
		t.Fatalf("with Stripe failing: %+v", res)
	}
}

// Refunds whose Stripe call had an unknown outcome are settled after an
// hour: confirmed when Stripe has them, failed (no longer counted) when not.
func TestReconcileSettlesUnknownRefunds(t *testing.T) {
	t.Parallel()
	clk := &testClock{t: time.Now()}
	e, fake, _ := newFakeEnvWith(t, "sk_test_123abc", withClock(clk))
	ctx := context.Background()
	p := e.webhookPayment(paygate.MethodIntent, 1000)
	e.succeed(p.ID)
	fake.set(503, stripeErr("api_error", "", "", "down"))
	for _, body := range []string{`{"amount": 3}`, `{"amount": 4}`} {
		r := e.do("POST", "/api/payments/refund", `{"paymentIntentId": "`+p.PaymentIntentID+`", "amount": `+body[11:])
		if r.Status != 502 {
			t.Fatalf("refund with Stripe down: %s", r.Raw)
		}
	}
	got := e.payment(p.ID)
	if got.AmountRefunded != 700 || len(got.Refunds) != 2 {
		t.Fatalf("reservations: %+v", got.Payment)
	}
	made, lost := got.Refunds[0], got.Refunds[1] // Stripe made one of them, not the other
	fake.route("GET", "/v1/refunds", 200, `{"object": "list", "url": "/v1/refunds", "has_more": false, "data": [
		{"id": "re_made", "object": "refund", "amount": `+fmt.Sprint(made.Amount)+`, "status": "succeeded", "metadata": {"paygate_refund_id": "`+made.ID+`"}}]}`)

	if res, _ := e.gw.Reconcile(ctx); res.Updated != 0 {
		t.Fatalf("settled reservations younger than an hour: %+v", res)
	}
	clk.Advance(2 * time.Hour)
	res, err := e.gw.Reconcile(ctx)
	if err != nil || res.Updated != 1 {
		t.Fatalf("reconcile: %+v, %v", res, err)
	}
	got = e.payment(p.ID)
	byID := map[string]paygate.Refund{}
	for _, r := range got.Refunds {
		byID[r.ID] = r
	}
	if got.AmountRefunded != made.Amount || got.Status != paygate.StatusPartiallyRefunded ||
		byID[made.ID].StripeRefundID != "re_made" || byID[made.ID].Status != paygate.RefundSucceeded || byID[lost.ID].Status != paygate.RefundFailed {
		t.Fatalf("after settling: %+v", got.Payment)
	}
	if h := got.History[len(got.History)-1]; h.Source != "reconcile" {
		t.Fatalf("history: %+v", got.History)
	}
}
