package paygate_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/numedapp/paygate"
)

// Regression tests of the money-correctness issue, one per defect, through
// the public API (HTTP, the store, webhooks signed as Stripe signs them).

// withCallbacks turns callbacks on (to an address nobody listens at: these
// tests read the outbox, they do not deliver).
func withCallbacks(c *paygate.Config) { c.CallbackURL = "http://127.0.0.1:9/hooks" }

// callbacksOf returns every callback queued for a payment, in sequence order.
func (e *env) callbacksOf(paymentID string) []paygate.Callback {
	e.t.Helper()
	const query = `SELECT id, action, sequence, payload FROM paygate_callbacks WHERE payment_id = $1 ORDER BY sequence`
	var rows interface {
		Next() bool
		Scan(dst ...any) error
		Err() error
	}
	if e.pool != nil {
		r, err := e.pool.Query(context.Background(), query, paymentID)
		if err != nil {
			e.t.Fatal(err)
		}
		defer r.Close()
		rows = r
	} else { // the embedded store
		r, err := e.store.(interface{ DB() *sql.DB }).DB().QueryContext(context.Background(), query, paymentID)
		if err != nil {
			e.t.Fatal(err)
		}
		defer r.Close()
		rows = r
	}
	var out []paygate.Callback
	for rows.Next() {
		var c paygate.Callback
		var payload []byte
		if err := rows.Scan(&c.ID, &c.Action, &c.Sequence, &payload); err != nil {
			e.t.Fatal(err)
		}
		c.Payload = payload
		c.PaymentID = paymentID
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

var seenSeq sync.Map // payment id → last sequence newActions returned

// newActions returns the actions of the callbacks queued for a payment
// since the last call.
func (e *env) newActions(paymentID string) []string {
	e.t.Helper()
	last, _ := seenSeq.Load(paymentID)
	var out []string
	for _, c := range e.callbacksOf(paymentID) {
		if l, _ := last.(int64); c.Sequence > l {
			out = append(out, c.Action)
			seenSeq.Store(paymentID, c.Sequence)
		}
	}
	return out
}

// payloads returns the data of every callback with action queued for a payment.
func (e *env) payloads(paymentID, action string) []map[string]any {
	e.t.Helper()
	var out []map[string]any
	for _, c := range e.callbacksOf(paymentID) {
		if c.Action == action {
			var m map[string]any
			if err := json.Unmarshal(c.Payload, &m); err != nil {
				e.t.Fatal(err)
			}
			out = append(out, m["data"].(map[string]any))
		}
	}
	if len(out) == 0 {
		e.t.Fatalf("no %s callback queued for %s", action, paymentID)
	}
	return out
}

// payload is the data of the last callback with action queued for a payment.
func (e *env) payload(paymentID, action string) map[string]any {
	e.t.Helper()
	all := e.payloads(paymentID, action)
	return all[len(all)-1]
}

// createdAt sets a Stripe event's created time.
func createdAt(event []byte, at time.Time) []byte {
	var m map[string]any
	_ = json.Unmarshal(event, &m)
	m["created"] = at.Unix()
	b, _ := json.Marshal(m)
	return b
}

func historyTypes(p *paygate.PaymentWithHistory) []string {
	var out []string
	for _, h := range p.History {
		out = append(out, string(h.EventType))
	}
	return out
}

// 1. A status read that catches up with Stripe queues the callback; the
// webhook that arrives afterwards changes nothing and queues none.
func TestMoney01StatusReadCatchUpQueuesCallback(t *testing.T) {
	t.Parallel()
	e, fake, _ := newFakeEnvWith(t, "sk_test_123abc", withCallbacks, withWebhookSecrets(whsecNew))
	fake.set(200, `{"id": "pi_cu1", "object": "payment_intent", "status": "requires_payment_method", "amount": 1500, "currency": "usd", "client_secret": "pi_cu1_secret_x"}`)
	var pi paygate.CreatedIntent
	e.do("POST", "/api/payments/payment-intent", `{"amount": "15.00"}`).must(t, 201, &pi)
	fake.route("GET", "/v1/payment_intents/pi_cu1", 200, `{"id": "pi_cu1", "object": "payment_intent", "status": "succeeded", "amount": 1500,
		"amount_received": 1500, "currency": "usd", "latest_charge": "ch_cu1", "created": 1700000000}`)
	var st paygate.IntentStatus
	e.do("GET", "/api/payments/payment-intent/pi_cu1", "").must(t, 200, &st)
	if st.PaymentStatus != paygate.StatusSucceeded {
		t.Fatalf("status read: %+v", st)
	}
	if got := e.newActions(pi.PaymentID); !cmp.Equal(got, []string{"payment_succeeded"}) {
		t.Fatalf("callbacks after the status read: %v", got)
	}
	e.send(stripeEventJSON("", "payment_intent.succeeded", "2023-10-16", piObject("pi_cu1", "succeeded", 1500, pi.PaymentID, "ch_cu1"))).must(t, 200, nil)
	if got := e.newActions(pi.PaymentID); len(got) != 0 {
		t.Fatalf("the webhook after the status read queued %v", got)
	}
	if p := e.payment(pi.PaymentID); !cmp.Equal(historyTypes(p), []string{"payment_created", "payment_succeeded"}) || p.ChargeID != "ch_cu1" {
		t.Fatalf("payment: %+v %v", p.Payment, historyTypes(p))
	}
}

// 2. A link paid on its second visit: the paid attempt owns the ids, every
// attempt's ids find the payment, in either order of events.
func TestMoney02LaterAttemptOwnsIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookSecrets(whsecNew))
	for _, reversed := range []bool{false, true} {
		p := e.webhookPayment(paygate.MethodLink, 2000)
		sfx := p.ID[6:]
		events := [][]byte{
			stripeEventJSON("", "payment_intent.payment_failed", "2023-10-16", piObject("pi_a"+sfx, "requires_payment_method", 2000, p.ID, "ch_a"+sfx)),
			stripeEventJSON("", "checkout.session.completed", "2023-10-16", sessionObject("cs_b"+sfx, "pi_b"+sfx, p.PaymentLinkID, "paid", "complete", 2000, p.ID)),
			stripeEventJSON("", "payment_intent.succeeded", "2023-10-16", piObject("pi_b"+sfx, "succeeded", 2000, p.ID, "ch_b"+sfx)),
		}
		if reversed {
			events[0], events[2] = events[2], events[0]
		}
		for _, ev := range events {
			e.send(ev).must(t, 200, nil)
		}
		got := e.payment(p.ID)
		if got.Status != paygate.StatusSucceeded || got.PaymentIntentID != "pi_b"+sfx || got.ChargeID != "ch_b"+sfx || got.CheckoutSessionID != "cs_b"+sfx {
			t.Fatalf("reversed=%v: %+v", reversed, got.Payment)
		}
		// Every attempt's ids find the payment.
		for _, id := range []string{"pi_a" + sfx, "ch_a" + sfx, "pi_b" + sfx, "ch_b" + sfx, "cs_b" + sfx} {
			if q, err := e.store.GetPaymentByStripeID(context.Background(), id); err != nil || q.ID != p.ID {
				t.Fatalf("by %s: %v %v", id, q, err)
			}
		}
		// A dispute on the paid charge is matched.
		var res struct {
			Status    string `json:"status"`
			PaymentID string `json:"paymentId"`
		}
		e.send(stripeEventJSON("", "charge.dispute.created", "2023-10-16", disputeObject("dp_"+sfx, "ch_b"+sfx, "", 2000))).must(t, 200, &res)
		if res.Status != "processed" || res.PaymentID != p.ID {
			t.Fatalf("dispute on the paid charge: %+v", res)
		}
		// A refund by the paid PaymentIntent finds the payment.
		var rf paygate.CreatedRefund
		e.do("POST", "/api/payments/refund", `{"paymentIntentId": "pi_b`+sfx+`", "amount": "1.00"}`).must(t, 201, &rf)
		if rf.PaymentID != p.ID || rf.PaymentIntentID != "pi_b"+sfx {
			t.Fatalf("refund: %+v", rf)
		}
	}
}

// 3. Refunds made outside the API get their own records and count with the
// API's; a refund that fails after charge.refunded stops counting.
func TestMoney03RefundAccounting(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookSecrets(whsecNew), withCallbacks)
	pi := createIntent(t, e, "20.00")
	e.send(stripeEventJSON("", "payment_intent.succeeded", "2023-10-16", piObject(pi.PaymentIntentID, "succeeded", 2000, pi.PaymentID, "ch_acc"))).must(t, 200, nil)
	e.newActions(pi.PaymentID)

	// A Dashboard refund of 6.00, seen first on the charge only. (Its
	// time is before the API refund's, which stripe-mock dates 2009.)
	dashAt := time.Unix(1_000_000_000, 0)
	dash := stripeEventJSON("", "charge.refunded", "2023-10-16", chargeObject("ch_acc", pi.PaymentIntentID, 2000, 600, pi.PaymentID))
	e.send(createdAt(dash, dashAt)).must(t, 200, nil)
	// An API refund of 3.00.
	var rf paygate.CreatedRefund
	e.do("POST", "/api/payments/refund", `{"paymentIntentId": "`+pi.PaymentIntentID+`", "amount": "3.00"}`).must(t, 201, &rf)
	if p := e.payment(pi.PaymentID); p.AmountRefunded != 900 {
		t.Fatalf("Dashboard 6.00 + API 3.00 = %d: %+v", p.AmountRefunded, p.Payment)
	}
	// The Dashboard refund's own events give it a record; nothing counts twice.
	dashRefund := refundObject("re_dash"+pi.PaymentID[4:12], "ch_acc", pi.PaymentIntentID, "succeeded", 600, nil)
	dashRefund["created"] = dashAt.Unix()
	e.send(stripeEventJSON("", "refund.created", "2023-10-16", dashRefund)).must(t, 200, nil)
	p := e.payment(pi.PaymentID)
	if p.AmountRefunded != 900 || len(p.Refunds) != 2 || p.Status != paygate.StatusPartiallyRefunded {
		t.Fatalf("after refund.created: %+v", p.Payment)
	}
	// The API refund's refund_created callback carries its id and status;
	// the Dashboard refund, seen first on the charge only, was called back
	// with its amount, then with its id once known.
	var ids []string
	for _, d := range e.payloads(pi.PaymentID, "refund_created") {
		ids = append(ids, fmt.Sprint(d["refundId"], ":", d["refundStatus"], ":", d["refundAmount"]))
	}
	want := []string{":succeeded:600", rf.RefundID + ":succeeded:300"}
	if !cmp.Equal(want, ids) {
		t.Fatalf("refund_created callbacks %v, want %v", ids, want)
	}
	if d := e.payload(pi.PaymentID, "refund_updated"); d["refundId"] != dashRefund["id"] || d["amountRefunded"] != float64(900) {
		t.Fatalf("refund_updated naming the Dashboard refund: %v", d)
	}

	// The Dashboard refund then fails: it stops counting.
	dashRefund["status"] = "failed"
	e.send(stripeEventJSON("", "refund.failed", "2023-10-16", dashRefund)).must(t, 200, nil)
	if p := e.payment(pi.PaymentID); p.AmountRefunded != 300 || p.Status != paygate.StatusPartiallyRefunded {
		t.Fatalf("after the Dashboard refund failed: %+v", p.Payment)
	}

	// A full API refund that fails after charge.refunded: the payment is
	// refundable again.
	pi2 := createIntent(t, e, "10.00")
	e.send(stripeEventJSON("", "payment_intent.succeeded", "2023-10-16", piObject(pi2.PaymentIntentID, "succeeded", 1000, pi2.PaymentID, "ch_f"))).must(t, 200, nil)
	e.do("POST", "/api/payments/refund", `{"paymentIntentId": "`+pi2.PaymentIntentID+`"}`).must(t, 201, &rf)
	e.send(stripeEventJSON("", "charge.refunded", "2023-10-16", chargeObject("ch_f", pi2.PaymentIntentID, 1000, 1000, pi2.PaymentID))).must(t, 200, nil)
	if p := e.payment(pi2.PaymentID); p.Status != paygate.StatusRefunded {
		t.Fatalf("refunded: %+v", p.Payment)
	}
	failed := refundObject(rf.RefundID, "ch_f", pi2.PaymentIntentID, "failed", 1000, nil)
	e.send(stripeEventJSON("", "charge.refund.updated", "2023-10-16", failed)).must(t, 200, nil)
	if p := e.payment(pi2.PaymentID); p.Status != paygate.StatusSucceeded || p.AmountRefunded != 0 {
		t.Fatalf("after the refund failed: %+v", p.Payment)
	}
	e.do("POST", "/api/payments/refund", `{"paymentIntentId": "`+pi2.PaymentIntentID+`", "amount": "1.00"}`).must(t, 201, nil)
}

// 4. Stripe's 429 on a refund is a refusal: the reservation is released, the
// answer is not stored under the Idempotency-Key, and a retry runs again.
func TestMoney04StripeRateLimitOnRefund(t *testing.T) {
	t.Parallel()
	e, fake, _ := newFakeEnv(t, "sk_test_123abc")
	fake.set(200, `{"id": "pi_rl", "object": "payment_intent", "status": "succeeded", "client_secret": "s"}`)
	var pi paygate.CreatedIntent
	e.do("POST", "/api/payments/payment-intent", `{"amount": 10}`).must(t, 201, &pi)
	e.succeed(pi.PaymentID)
	fake.set(429, stripeErr("invalid_request_error", "rate_limit", "", "Too many requests"))
	if r := e.do("POST", "/api/payments/refund", `{"paymentIntentId": "pi_rl", "amount": 4}`, "Idempotency-Key", "rl-1"); r.Status != 429 {
		t.Fatalf("rate-limited refund: %s", r.Raw)
	}
	p := e.payment(pi.PaymentID)
	if p.AmountRefunded != 0 || p.Status != paygate.StatusSucceeded || len(p.Refunds) != 1 || p.Refunds[0].Status != paygate.RefundFailed {
		t.Fatalf("after the 429: %+v", p.Payment)
	}
	fake.set(200, `{"id": "re_rl", "object": "refund", "amount": 400, "status": "succeeded"}`)
	var rf paygate.CreatedRefund
	r := e.do("POST", "/api/payments/refund", `{"paymentIntentId": "pi_rl", "amount": 4}`, "Idempotency-Key", "rl-1").must(t, 201, &rf)
	if r.Header.Get("Idempotent-Replayed") != "" || rf.RefundID != "re_rl" || rf.Status != paygate.RefundSucceeded {
		t.Fatalf("retry after the 429: %s", r.Raw)
	}
	if p := e.payment(pi.PaymentID); p.AmountRefunded != 400 {
		t.Fatalf("after the retry: %+v", p.Payment)
	}
}

// 5. Stripe 503 on a refund, reconciliation settles it failed, then the
// client retries with the same Idempotency-Key: a new reservation is made
// and counted, never a 201 that says failed.
func TestMoney05RetryAfterSettledReservation(t *testing.T) {
	t.Parallel()
	clk := &testClock{t: time.Now()}
	e, fake, _ := newFakeEnvWith(t, "sk_test_123abc", withClock(clk))
	p := e.webhookPayment(paygate.MethodIntent, 1000)
	e.succeed(p.ID)
	fake.set(503, stripeErr("api_error", "", "", "down"))
	if r := e.do("POST", "/api/payments/refund", `{"paymentIntentId": "`+p.PaymentIntentID+`", "amount": 5}`, "Idempotency-Key", "r503"); r.Status != 502 {
		t.Fatalf("refund with Stripe down: %s", r.Raw)
	}
	fake.route("GET", "/v1/refunds", 200, `{"object": "list", "url": "/v1/refunds", "has_more": false, "data": []}`)
	clk.Advance(2 * time.Hour)
	if _, err := e.gw.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.payment(p.ID); got.AmountRefunded != 0 || got.Refunds[0].Status != paygate.RefundFailed {
		t.Fatalf("after reconcile: %+v", got.Payment)
	}
	fake.set(200, `{"id": "re_503", "object": "refund", "amount": 500, "status": "succeeded", "created": 1700000000}`)
	var rf paygate.CreatedRefund
	e.do("POST", "/api/payments/refund", `{"paymentIntentId": "`+p.PaymentIntentID+`", "amount": 5}`, "Idempotency-Key", "r503").must(t, 201, &rf)
	got := e.payment(p.ID)
	if rf.Status != paygate.RefundSucceeded || got.AmountRefunded != 500 || len(got.Refunds) != 2 {
		t.Fatalf("retry: %+v, payment %+v", rf, got.Payment)
	}
	// The retry asked Stripe with a new idempotency key: Stripe may have
	// kept the first key's 503.
	fake.mu.Lock()
	keys := fake.idemKeys
	fake.mu.Unlock()
	var refundKeys []string
	for _, k := range keys {
		if strings.Contains(k, ":refund:") {
			refundKeys = append(refundKeys, k)
		}
	}
	if len(refundKeys) != 2 || refundKeys[0] == refundKeys[1] {
		t.Fatalf("refund keys: %v", refundKeys)
	}
}

// 6. A link's abandoned session, its PaymentIntent canceled, does not end
// the link payment.
func TestMoney06LinkSessionExpiryDoesNotEndLink(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookSecrets(whsecNew), withCallbacks)
	p := e.webhookPayment(paygate.MethodLink, 1000)
	sfx := p.ID[6:]
	e.send(stripeEventJSON("", "checkout.session.expired", "2023-10-16", sessionObject("cs_x"+sfx, "pi_x"+sfx, p.PaymentLinkID, "unpaid", "expired", 1000, ""))).must(t, 200, nil)
	e.send(stripeEventJSON("", "payment_intent.canceled", "2023-10-16", piObject("pi_x"+sfx, "canceled", 1000, p.ID, ""))).must(t, 200, nil)
	if got := e.payment(p.ID); got.Status != paygate.StatusPending || len(got.History) != 0 {
		t.Fatalf("link payment after an abandoned session: %+v %v", got.Payment, historyTypes(got))
	}
	if got := e.newActions(p.ID); len(got) != 0 {
		t.Fatalf("callbacks: %v", got)
	}
}

// 7. A decline, then a bank debit processing: processing, with its callback;
// a late failure of the declined try changes nothing.
func TestMoney07ProcessingAfterDecline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookSecrets(whsecNew), withCallbacks)
	p := e.webhookPayment(paygate.MethodIntent, 1000)
	failed := stripeEventJSON("", "payment_intent.payment_failed", "2023-10-16", piObject(p.PaymentIntentID, "requires_payment_method", 1000, p.ID, "ch_card"))
	e.send(failed).must(t, 200, nil)
	proc := piObject(p.PaymentIntentID, "processing", 1000, p.ID, "")
	proc["latest_charge"] = "ch_debit"
	e.send(stripeEventJSON("", "payment_intent.processing", "2023-10-16", proc)).must(t, 200, nil)
	if got := e.payment(p.ID); got.Status != paygate.StatusProcessing {
		t.Fatalf("after processing: %+v", got.Payment)
	}
	if got := e.newActions(p.ID); !cmp.Equal(got, []string{"payment_failed", "payment_processing"}) {
		t.Fatalf("callbacks: %v", got)
	}
	e.send(stripeEventJSON("", "payment_intent.payment_failed", "2023-10-16", piObject(p.PaymentIntentID, "requires_payment_method", 1000, p.ID, "ch_card"))).must(t, 200, nil)
	if got := e.payment(p.ID); got.Status != paygate.StatusProcessing || len(e.newActions(p.ID)) != 0 {
		t.Fatalf("a late failure of the declined card moved it: %+v", got.Payment)
	}
	e.send(stripeEventJSON("", "payment_intent.succeeded", "2023-10-16", piObject(p.PaymentIntentID, "succeeded", 1000, p.ID, "ch_debit"))).must(t, 200, nil)
	if got := e.payment(p.ID); got.Status != paygate.StatusSucceeded || got.ChargeID != "ch_debit" {
		t.Fatalf("settled: %+v", got.Payment)
	}
}

// 8. The client secret is not kept with the Idempotency-Key: a replay
// fetches it again.
func TestMoney08ClientSecretNotStored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var first, replay paygate.CreatedIntent
	e.do("POST", "/api/payments/payment-intent", `{"amount": "12.00"}`, "Idempotency-Key", "cs-1").must(t, 201, &first)
	r := e.do("POST", "/api/payments/payment-intent", `{"amount": "12.00"}`, "Idempotency-Key", "cs-1").must(t, 201, &replay)
	if r.Header.Get("Idempotent-Replayed") != "true" || replay.ClientSecret == "" || replay.PaymentIntentID != first.PaymentIntentID {
		t.Fatalf("replay: %s", r.Raw)
	}
	var n int
	var err error
	if e.pool != nil {
		err = e.pool.QueryRow(context.Background(), `SELECT count(*) FROM paygate_idempotency_keys
		WHERE convert_from(response_body, 'UTF8') LIKE '%_secret_%'`).Scan(&n)
	} else { // the embedded store; GLOB, as its LIKE ignores case
		err = e.store.(interface{ DB() *sql.DB }).DB().QueryRowContext(context.Background(), `SELECT count(*) FROM paygate_idempotency_keys
		WHERE CAST(response_body AS TEXT) GLOB '*?secret?*'`).Scan(&n)
	}
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d stored responses hold a client secret", n)
	}
}

// 11. Dispute callbacks say what the merchant needs, through to the outcome.
func TestMoney11DisputeCallbacks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookSecrets(whsecNew), withCallbacks)
	p := e.webhookPayment(paygate.MethodIntent, 1000)
	e.send(stripeEventJSON("", "payment_intent.succeeded", "2023-10-16", piObject(p.PaymentIntentID, "succeeded", 1000, p.ID, "ch_dp"))).must(t, 200, nil)
	e.newActions(p.ID)
	dp := disputeObject("dp_m11"+p.ID[6:], "ch_dp", p.PaymentIntentID, 1000)
	e.send(stripeEventJSON("", "charge.dispute.created", "2023-10-16", dp)).must(t, 200, nil)
	data := e.payload(p.ID, "dispute_created")
	if data["disputeId"] != dp["id"] || data["disputeAmount"] != float64(1000) || data["disputeReason"] != "fraudulent" || data["disputeStatus"] != "needs_response" {
		t.Fatalf("dispute_created data: %v", data)
	}
	dp["status"] = "lost"
	e.send(stripeEventJSON("", "charge.dispute.closed", "2023-10-16", dp)).must(t, 200, nil)
	if data := e.payload(p.ID, "dispute_closed"); data["disputeStatus"] != "lost" {
		t.Fatalf("dispute_closed data: %v", data)
	}
}

// 12. Our own 401 help text is not eaten by the redactor.
func TestMoney12UnauthorizedHelpText(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do("GET", "/api/payments", "", "Authorization", "")
	if r.Status != 401 || !strings.Contains(r.Message, "Authorization: Bearer <key>") {
		t.Fatalf("401: %s", r.Raw)
	}
	// A real token in a message is still redacted.
	if got := paygate.RedactForTest(e.gw, "Authorization: Bearer abc123"); strings.Contains(got, "abc123") {
		t.Fatalf("redact = %q", got)
	}
}

// 13. An API refund's history shows the move from succeeded.
func TestMoney13RefundHistoryFromTo(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookSecrets(whsecNew))
	pi := createIntent(t, e, "20.00")
	e.send(stripeEventJSON("", "payment_intent.succeeded", "2023-10-16", piObject(pi.PaymentIntentID, "succeeded", 2000, pi.PaymentID, "ch_13"))).must(t, 200, nil)
	e.do("POST", "/api/payments/refund", `{"paymentId": "`+pi.PaymentID+`", "amount": "5.00"}`).must(t, 201, nil)
	p := e.payment(pi.PaymentID)
	last := p.History[len(p.History)-1]
	if last.EventType != paygate.HistoryRefundCreated || last.FromStatus != paygate.StatusSucceeded || last.ToStatus != paygate.StatusPartiallyRefunded {
		t.Fatalf("history: %+v", p.History)
	}
}

// 14. A refund names its payment by our id, by the PaymentIntent, or both
// when they agree.
func TestMoney14RefundByPaymentID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pi := createIntent(t, e, "20.00")
	e.succeed(pi.PaymentID)
	var rf paygate.CreatedRefund
	e.do("POST", "/api/payments/refund", `{"paymentId": "`+pi.PaymentID+`", "amount": "1.00"}`).must(t, 201, &rf)
	if rf.PaymentID != pi.PaymentID {
		t.Fatalf("refund: %+v", rf)
	}
	e.do("POST", "/api/payments/refund", `{"paymentId": "`+pi.PaymentID+`", "paymentIntentId": "`+pi.PaymentIntentID+`", "amount": "1.00"}`).must(t, 201, nil)
	other := createIntent(t, e, "5.00")
	r := e.do("POST", "/api/payments/refund", `{"paymentId": "`+other.PaymentID+`", "paymentIntentId": "`+pi.PaymentIntentID+`", "amount": "1.00"}`)
	if r.Status != 400 || r.param() != "paymentIntentId" {
		t.Fatalf("disagreeing ids: %s", r.Raw)
	}
	if r := e.do("POST", "/api/payments/refund", `{"paymentId": "pay_nope1", "amount": "1.00"}`); r.Status != 404 {
		t.Fatalf("unknown payment: %s", r.Raw)
	}
	if p := e.payment(pi.PaymentID); p.AmountRefunded != 200 {
		t.Fatalf("payment: %+v", p.Payment)
	}
}

// 2, a sibling: reconciliation of a link whose first attempt was declined
// checks the link's sessions, not the declined PaymentIntent.
func TestMoney02ReconcileFindsTheLaterAttempt(t *testing.T) {
	t.Parallel()
	e, fake, _ := newFakeEnvWith(t, "sk_test_123abc", withWebhookSecrets(whsecNew))
	p := e.webhookPayment(paygate.MethodLink, 2000)
	sfx := p.ID[6:]
	e.send(stripeEventJSON("", "payment_intent.payment_failed", "2023-10-16", piObject("pi_a"+sfx, "requires_payment_method", 2000, p.ID, "ch_a"+sfx))).must(t, 200, nil)
	if got := e.payment(p.ID); got.Status != paygate.StatusFailed || got.PaymentIntentID != "pi_a"+sfx {
		t.Fatalf("after the decline: %+v", got.Payment)
	}
	fake.route("GET", "/v1/checkout/sessions", 200, `{"object": "list", "url": "/v1/checkout/sessions", "has_more": false, "data": [
		{"id": "cs_b`+sfx+`", "object": "checkout.session", "status": "complete", "payment_status": "paid", "payment_intent": "pi_b`+sfx+`",
		 "payment_link": "`+p.PaymentLinkID+`", "amount_total": 2000, "currency": "usd"}]}`)
	fake.set(404, stripeErr("invalid_request_error", "resource_missing", "id", "No such object"))
	if res, err := e.gw.Reconcile(context.Background()); err != nil || res.Updated != 1 {
		t.Fatalf("reconcile: %+v %v", res, err)
	}
	if got := e.payment(p.ID); got.Status != paygate.StatusSucceeded || got.PaymentIntentID != "pi_b"+sfx || got.CheckoutSessionID != "cs_b"+sfx {
		t.Fatalf("after reconcile: %+v", got.Payment)
	}
}

// A list counts its total exactly; asked for an estimate (total=estimate),
// exactly up to paygate.ExactTotalLimit and beyond it an estimate it says
// is one (the responses match the OpenAPI document, as every response in
// the suite does).
func TestListTotalEstimatedBeyondExactLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if e.pool == nil { // the embedded store
		if _, err := e.store.(interface{ DB() *sql.DB }).DB().ExecContext(context.Background(), `WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?)
			INSERT INTO paygate_payments (id, method, status, amount, currency, created_at, updated_at)
			SELECT 'pay_many' || n, 'intent', 'pending', 100, 'usd', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z' FROM g`,
			paygate.ExactTotalLimit+50); err != nil {
			t.Fatal(err)
		}
	} else {
		if _, err := e.pool.Exec(context.Background(), `INSERT INTO paygate_payments (id, method, status, amount, currency, created_at, updated_at)
		SELECT 'pay_many' || g, 'intent', 'pending', 100, 'usd', now(), now() FROM generate_series(1, $1) g`, paygate.ExactTotalLimit+50); err != nil {
			t.Fatal(err)
		}
		if _, err := e.pool.Exec(context.Background(), `ANALYZE paygate_payments`); err != nil {
			t.Fatal(err)
		}
	}
	var page struct {
		Total          int  `json:"total"`
		TotalEstimated bool `json:"totalEstimated"`
	}
	e.do("GET", "/api/payments?limit=5&total=estimate", "").must(t, 200, &page)
	if !page.TotalEstimated || page.Total <= paygate.ExactTotalLimit {
		t.Fatalf("page = %+v", page)
	}
	for _, path := range []string{"/api/payments?limit=5", "/api/payments?limit=5&total=exact", "/api/payments?status=succeeded&total=estimate"} {
		var exact map[string]any
		e.do("GET", path, "").must(t, 200, &exact)
		want := float64(paygate.ExactTotalLimit + 50)
		if strings.Contains(path, "succeeded") {
			want = 0
		}
		if _, ok := exact["totalEstimated"]; ok || exact["total"] != want {
			t.Fatalf("%s: %+v, want an exact total of %v", path, exact, want)
		}
	}
	if r := e.do("GET", "/api/payments?total=roughly", ""); r.Status != 400 || r.param() != "total" {
		t.Fatalf("total=roughly: %s", r.Raw)
	}
}
