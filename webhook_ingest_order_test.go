package paygate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/numedapp/paygate/callback"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/numedapp/paygate"
)

// Webhook ingest and the callbacks it queues, as Stripe really sends them
// (found by a review; each test failed before its fix); see the comment
// on each for the flow, what API.md says and what happened before.

func cbData(t *testing.T, c paygate.Callback) map[string]any {
	t.Helper()
	var body struct {
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal(c.Payload, &body); err != nil {
		t.Fatal(err)
	}
	return body.Data
}

// A Checkout payment whose session expires after a declined card: Stripe
// cancels the session's PaymentIntent and expires the session, and sends
// payment_intent.canceled and checkout.session.expired in no set order.
// paygate (decisions.md) reads a canceled Checkout PaymentIntent as the
// session's expiry whichever event comes first, so the payment moves to
// expired on payment_intent.canceled and queues the checkout_expired
// callback then; checkout.session.expired later changes nothing.
//
// API.md §4: "checkout events add sessionId, amountTotal, paymentStatus".
// The checkout_expired callback queued from payment_intent.canceled has
// none of them (change.go queueCallbacks fills them only from the history
// data's sessionId, which changes() in state.go writes only when the event's
// object is a checkout.session), although the payment knows its session.
// The same expiry seen in the other order carries them: the merchant's
// payload depends on arrival order.
func TestCheckoutExpiredByTheIntentCarriesTheSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookSecrets(whsecNew), withCallbacks)
	p := e.webhookPayment(paygate.MethodCheckout, 1500)
	pi := "pi_rvexp" + p.ID[6:]
	e.send(stripeEventJSON("", "payment_intent.payment_failed", "2023-10-16", piObject(pi, "requires_payment_method", 1500, p.ID, "ch_rvexp"))).must(t, 200, nil)
	canceled := piObject(pi, "canceled", 1500, p.ID, "")
	canceled["cancellation_reason"] = "automatic"
	e.send(stripeEventJSON("", "payment_intent.canceled", "2023-10-16", canceled)).must(t, 200, nil)
	e.send(stripeEventJSON("", "checkout.session.expired", "2023-10-16", sessionObject(p.CheckoutSessionID, pi, "", "unpaid", "expired", 1500, p.ID))).must(t, 200, nil)

	if got := e.payment(p.ID); got.Status != paygate.StatusExpired {
		t.Fatalf("status %s, want expired", got.Status)
	}
	var expired []paygate.Callback
	for _, c := range e.callbacksOf(p.ID) {
		if c.Action == "checkout_expired" {
			expired = append(expired, c)
		}
	}
	if len(expired) != 1 {
		t.Fatalf("%d checkout_expired callbacks, want 1", len(expired))
	}
	d := cbData(t, expired[0])
	for _, k := range []string{"sessionId", "amountTotal", "paymentStatus"} {
		if _, ok := d[k]; !ok {
			t.Errorf("checkout_expired callback has no %s (API.md §4: checkout events add sessionId, amountTotal, paymentStatus): data %v", k, d)
		}
	}
	if d["sessionId"] != nil && d["sessionId"] != p.CheckoutSessionID {
		t.Errorf("sessionId %v, want %s", d["sessionId"], p.CheckoutSessionID)
	}
}

// piObjectOldAPI is a PaymentIntent as an endpoint pinned to an API version
// before 2022-11-15 receives it: no latest_charge, the charges in a list
// (newest first). API.md §3: "An event whose API version differs from the
// library's is still accepted"; paygate reads the charge from the list
// (state.go applyEvent).
func piObjectOldAPI(id, status string, amount int64, payID, charge string) map[string]any {
	o := piObject(id, status, amount, payID, charge)
	delete(o, "latest_charge")
	o["charges"] = map[string]any{"object": "list", "has_more": false, "total_count": 1, "url": "/v1/charges?payment_intent=" + id,
		"data": []any{chargeObject(charge, id, amount, 0, payID)}}
	return o
}

// The same flow as TestWebhookBatchWaitsForTheIDsAStuckBatchAdds, with the
// first event as an endpoint on an API version before 2022-11-15 sends it:
// the PaymentIntent names its charge in charges.data, not latest_charge.
//
// A batch beside a stuck one waits for it only when the stuck batch's
// events *name* a Stripe id of the waiting event (ingest.go earlierMayAdd
// and takeBesideLocked read WebhookRecord.Refs; decisions.md: "an event can
// add to its payment only the ids it names"). But stripeObject.refs()
// (webhook.go) names only latest_charge for a PaymentIntent, while
// applyEvent adds the charge from charges.data[0] (and from
// last_payment_error.charge) to the payment. So the refund named by that
// charge is not held back: it is read beside the uncommitted batch, finds
// no payment and is stored unmatched; the payment shows no refund until a
// reconciliation pass rematches it (up to 15 minutes), and the refund's
// callback is late by as much. With the 2023-10-16 shape the same flow
// waits and applies it (the existing test).
func TestStuckBatchOldAPIChargeListIsWaitedFor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookSecrets(whsecNew))
	if e.pool == nil {
		t.Skip("PostgreSQL row locks; the embedded store has a single writer")
	}
	p := e.webhookPayment(paygate.MethodIntent, 1000)
	ctx := context.Background()
	charge := fmt.Sprintf("ch_rvold%d", evtSeq.Add(1))
	release, holder := e.lockPaymentRow(p.ID)
	first := e.postWebhookAsync(stripeEventJSON("", "payment_intent.succeeded", "2020-08-27", piObjectOldAPI(p.PaymentIntentID, "succeeded", 1000, p.ID, charge)))
	e.waitForLockWaits(holder, 1)
	refundID := fmt.Sprintf("evt_rvold_refund%d", evtSeq.Add(1))
	refund := chargeObject(charge, "", 1000, 300, "")
	delete(refund, "metadata")
	second := e.postWebhookAsync(stripeEventJSON(refundID, "charge.refunded", "2020-08-27", refund))
	answered := false
	select {
	case got := <-second:
		answered = true
		t.Errorf("the refund was answered (%d) before the batch that adds its charge id committed", got)
	case <-time.After(300 * time.Millisecond):
	}
	release()
	if got := <-first; got != 200 {
		t.Fatalf("first event: %d", got)
	}
	if !answered {
		<-second
	}
	ev, err := e.gw.GetWebhookEvent(ctx, refundID)
	if err != nil || ev.Status != paygate.EventProcessed || ev.PaymentID != p.ID {
		t.Errorf("refund event = %s (payment %q), %v; want processed for %s", ev.Status, ev.PaymentID, err, p.ID)
	}
	if got := e.payment(p.ID); got.Status != paygate.StatusPartiallyRefunded || got.ChargeID != charge || got.AmountRefunded != 300 {
		t.Errorf("payment = %s, charge %q, refunded %d; want partially refunded (300) by the charge's event", got.Status, got.ChargeID, got.AmountRefunded)
	}
}

// Stripe gives up on a webhook request that takes too long and closes the
// connection (it resends the event later). Here the request's batch waits
// for a payment's row lock (an API transaction, as in
// TestWebhookBatchStuckOnALockDoesNotStopOthers) and the client goes away
// meanwhile; the batch still commits, as designed (ingest.go: "A canceled
// ctx stops the wait, not the batch").
//
// With Run's engine running, the callback the event queues is committed
// already claimed by the engine — leased to the request's ClaimToken, its
// first attempt counted (store/batchwrite.go queueSaves) — and only the
// request's goroutine hands it to the engine (ingestEvent:
// claimed.engine.Deliver). But the request returned on ctx.Err()
// (batcher.record) before the commit, so nobody delivers it: the callback
// sits leased, with attempts = 1 and no attempt made, until its lease runs
// out (timeout + 3 s, 18 s by default; 10 s here), then goes out as
// "attempt 2". A healthy merchant learns of the payment late, and one
// attempt of the retry schedule is spent without a request ever made
// (decisions.md: "every attempt of the schedule is a real one").
func TestClaimedCallbackOfALeftRequestGoesOut(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []time.Time
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, time.Now())
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer merchant.Close()
	e := newEnv(t, withWebhookSecrets(whsecNew), func(c *paygate.Config) {
		c.CallbackURL, c.CallbackSecrets = merchant.URL+"/hooks", []string{callbackSecret}
		c.CallbackEngine = callback.Config{Timeout: 7 * time.Second, Lease: 10 * time.Second, PollInterval: 50 * time.Millisecond}
		c.ReconcileInterval = -1
	})
	if e.pool == nil {
		t.Skip("PostgreSQL row locks hold the batch")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.gw.Run(ctx) }()
	defer func() { cancel(); <-done }()
	time.Sleep(200 * time.Millisecond) // the engine runs: webhook batches claim their callbacks

	p := e.webhookPayment(paygate.MethodIntent, 1000)
	release, holder := e.lockPaymentRow(p.ID)
	payload := stripeEventJSON("", "payment_intent.succeeded", "2023-10-16", piObject(p.PaymentIntentID, "succeeded", 1000, p.ID, "ch_left"))
	reqCtx, leave := context.WithCancel(context.Background())
	left := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(reqCtx, "POST", e.srv.URL+"/api/webhooks/stripe", bytes.NewReader(payload))
		req.Header.Set("Stripe-Signature", signed(payload, whsecNew, time.Now()))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		left <- err
	}()
	e.waitForLockWaits(holder, 1)
	leave() // Stripe's timeout: the client goes away
	<-left
	time.Sleep(100 * time.Millisecond)
	committed := time.Now()
	release() // the batch commits
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got := e.payment(p.ID); got.Status == paygate.StatusSucceeded {
			break
		}
	}
	if got := e.payment(p.ID); got.Status != paygate.StatusSucceeded {
		t.Fatalf("the batch did not commit: %s", got.Status)
	}
	time.Sleep(3 * time.Second) // the engine is idle and the merchant healthy: a callback goes out at once
	mu.Lock()
	n := len(got)
	mu.Unlock()
	var attempts int
	var leased bool
	if err := e.pool.QueryRow(context.Background(), `SELECT attempts, lease_token IS NOT NULL FROM paygate_callbacks WHERE payment_id = $1`, p.ID).Scan(&attempts, &leased); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Errorf("no callback delivered %v after the commit (callback attempts=%d, leased=%v, with no attempt made): it waits for the lease of a request that left",
			time.Since(committed).Round(100*time.Millisecond), attempts, leased)
	}
}

// A payment link paid on the second visit. The first visitor typed an
// email on Stripe's page, had a card declined and left; that session expires later and
// checkout.session.expired carries its customer_details.email. The second
// visitor pays under another email. Stripe sends the two sessions' events
// in no set order.
//
// applyEvent (state.go, checkout.session.* case) copies
// customer_details.email onto a payment that has none from whichever
// session event comes first, whatever became of that session. So when the
// abandoned session's expiry arrives first, the payment shows the email of
// someone who did not pay, for good; in the other order it shows the
// payer's. API.md §3: "Applying them is order-independent"; the attempt
// that succeeded owns the payment's ids, and its customer should own the
// email (customerEmail is a list filter merchants use to find a customer's
// payments).
func TestLinkCustomerEmailIsThePayersWhateverTheOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookSecrets(whsecNew))
	for _, expiredFirst := range []bool{false, true} {
		p := e.webhookPayment(paygate.MethodLink, 1500)
		n := p.ID[6:]
		abandoned := sessionObject("cs_test_rvA"+n, "pi_rvA"+n, p.PaymentLinkID, "unpaid", "expired", 1500, p.ID)
		abandoned["customer_details"] = map[string]any{"address": nil, "email": "left@example.com", "name": nil, "phone": nil, "tax_exempt": "none", "tax_ids": []any{}}
		paid := sessionObject("cs_test_rvB"+n, "pi_rvB"+n, p.PaymentLinkID, "paid", "complete", 1500, p.ID)
		paid["customer_details"] = map[string]any{"address": nil, "email": "payer@example.com", "name": "Pat Payer", "phone": nil, "tax_exempt": "none", "tax_ids": []any{}}
		evs := [][]byte{
			stripeEventJSON("", "checkout.session.completed", "2023-10-16", paid),
			stripeEventJSON("", "checkout.session.expired", "2023-10-16", abandoned),
		}
		if expiredFirst {
			evs[0], evs[1] = evs[1], evs[0]
		}
		for _, ev := range evs {
			e.send(ev).must(t, 200, nil)
		}
		got := e.payment(p.ID)
		if got.Status != paygate.StatusSucceeded || got.CheckoutSessionID != "cs_test_rvB"+n {
			t.Fatalf("expired first %v: status %s session %s", expiredFirst, got.Status, got.CheckoutSessionID)
		}
		if got.CustomerEmail != "payer@example.com" {
			t.Errorf("expired first %v: customerEmail %q (the abandoned visit's), want the payer's payer@example.com", expiredFirst, got.CustomerEmail)
		}
	}
}
