package paygate_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/sandbox"
)

// rawRefund posts a refund from another goroutine (env.do may call
// t.Fatal, which must run on the test's goroutine).
func rawRefund(srvURL, body string, hdr ...string) (int, string) {
	req, _ := http.NewRequestWithContext(context.Background(), "POST", srvURL+"/api/payments/refund", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testAPIKey)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// TestReconcileDuringResumedRefund: a refund whose first Stripe call had an
// unknown outcome (a 500) stays reserved; two hours later the merchant
// retries it with the same Idempotency-Key, which resumes it with the same
// Stripe key, and while Stripe is slow to answer that call a
// reconciliation pass runs. Reconciliation reads Stripe's refunds before it
// locks the payment, so it found none and marked the reservation failed
// ("never made"); Stripe then made the refund, which stayed failed for good
// (failed outranks succeeded): amountRefunded 0 against Stripe's 20.00, the
// retry answered "Stripe reports the refund as failed", and the guard let
// the merchant refund again. Now a resumed reservation is stamped under the
// lock, and settlement leaves alone one resumed within the hour; and a
// failure decided here without Stripe's word gives way to Stripe's refund
// object that carries the reservation's paygate_refund_id.
func TestReconcileDuringResumedRefund(t *testing.T) {
	t.Parallel()
	e := newSBEnv(t, sbOpts{})
	in := e.paidIntent(t, "50.00", cardOK)
	body := `{"paymentId":"` + in.PaymentID + `","amount":"20.00"}`

	// The first call: Stripe answers 500 before doing anything.
	e.sb.FailNext(sandbox.Fault{Path: "/v1/refunds", Method: "POST", Status: 500})
	if r := e.do("POST", "/api/payments/refund", body, "Idempotency-Key", "rf-late-retry"); r.Status != http.StatusBadGateway {
		t.Fatalf("with the fault: %s", r.Raw)
	}
	e.advance(2 * time.Hour)

	// The retry, two hours later; Stripe is slow to answer it.
	e.sb.FailNext(sandbox.Fault{Path: "/v1/refunds", Method: "POST", Hang: true, HangFor: 5 * time.Second})
	type result struct {
		status int
		raw    string
	}
	done := make(chan result, 1)
	go func() {
		s, raw := rawRefund(e.srv.URL, body, "Idempotency-Key", "rf-late-retry")
		done <- result{s, raw}
	}()
	time.Sleep(1500 * time.Millisecond) // the retry is waiting on Stripe
	if _, err := e.gw.Reconcile(context.Background()); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	res := <-done
	e.flush() // the refund's webhooks
	if _, err := e.gw.Reconcile(context.Background()); err != nil {
		t.Fatalf("reconcile: %v", err)
	}

	tr := e.sb.Truth(in.PaymentID)
	if len(tr.Refunds) != 1 || tr.AmountRefunded != 2000 {
		t.Fatalf("the sandbox did not make the refund: %+v", tr)
	}
	if res.status != http.StatusCreated {
		t.Errorf("the retry that Stripe carried out was answered %d: %s", res.status, res.raw)
	}
	got := e.payment(t, in.PaymentID)
	if got.AmountRefunded != 2000 || got.Status != paygate.StatusPartiallyRefunded {
		t.Errorf("Stripe refunded 20.00 (refund %s succeeded), paygate says amountRefunded %d, status %s, refunds %+v",
			tr.Refunds[0].ID, got.AmountRefunded, got.Status, got.Refunds)
	}
}

// TestReplayKeepsMetadataNamedClientSecret: a replay (same key, same body)
// gives the first response's body. Only the payment-intent route's
// data.clientSecret is kept out of storage; a caller's metadata key of the
// same name was blanked too (the field was found as text), and a payment
// link's replay showed it emptied.
func TestReplayKeepsMetadataNamedClientSecret(t *testing.T) {
	t.Parallel()
	e := newSBEnv(t, sbOpts{})
	body := `{"amount":"12.00","metadata":{"clientSecret":"order-77-token","orderId":"77"}}`
	first := e.createLink(t, body, "Idempotency-Key", "link-cs-meta")
	if first.Metadata["clientSecret"] != "order-77-token" {
		t.Fatalf("first response metadata %v", first.Metadata)
	}
	r := e.do("POST", "/api/payments/generate-url", body, "Idempotency-Key", "link-cs-meta")
	var replay paygate.Payment
	r.into(t, 201, &replay)
	if r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("not a replay: %v", r.Header)
	}
	if replay.ID != first.ID || replay.Metadata["clientSecret"] != first.Metadata["clientSecret"] {
		t.Errorf("replay metadata %v, first response %v", replay.Metadata, first.Metadata)
	}
}

// TestRefundRetriedCallRefusedIsUnknown: stripe-go retries a Stripe call
// itself, with the same Stripe idempotency key, after a timeout. The
// refund's first attempt is carried out by Stripe but its answer does not
// come back in time; the retry is answered 429. A 4xx proves only that its
// own attempt did nothing, so the outcome is unknown: the reservation stays
// pending, and the merchant's retry under the same Idempotency-Key resumes
// it with the same Stripe key. It was marked failed (refused), and the
// retry made a new reservation with a new Stripe key: Stripe refunded twice
// (40.00 for one request of 20.00).
func TestRefundRetriedCallRefusedIsUnknown(t *testing.T) {
	t.Parallel()
	e := newSBEnv(t, sbOpts{retries: 1, stripeTimeout: 700 * time.Millisecond})
	sb := e.sb
	var in paygate.CreatedIntent
	e.do("POST", "/api/payments/payment-intent", `{"amount":"50.00"}`).must(t, 201, &in)
	if err := sb.PayIntent(in.PaymentIntentID, cardOK); err != nil {
		t.Fatal(err)
	}
	sb.DeliverAll()

	// Attempt 1: Stripe makes the refund; its answer never arrives in time.
	sb.FailNext(sandbox.Fault{Path: "/v1/refunds", Method: "POST", AfterExecute: true, Hang: true})
	// Attempt 2 (the client's own retry, same Stripe key): rate limited.
	sb.FailNext(sandbox.Fault{Path: "/v1/refunds", Method: "POST", Status: 429})
	body := `{"paymentId":"` + in.PaymentID + `","amount":"20.00"}`
	first := e.do("POST", "/api/payments/refund", body, "Idempotency-Key", "rf-timeout-429")
	if first.Status != http.StatusTooManyRequests {
		t.Logf("first answer: %s", first.Raw)
	}
	// The merchant retries the same request under the same key.
	second := e.do("POST", "/api/payments/refund", body, "Idempotency-Key", "rf-timeout-429")
	sb.DeliverAll()

	oneStripeRefund(t, sb, in.PaymentID, 2000, first, second)
	tr := sb.Truth(in.PaymentID)
	var p paygate.PaymentWithHistory
	e.do("GET", "/api/payments/"+in.PaymentID, "").must(t, 200, &p)
	if p.AmountRefunded != tr.AmountRefunded {
		t.Errorf("paygate amountRefunded %d, Stripe %d; refunds %+v", p.AmountRefunded, tr.AmountRefunded, p.Refunds)
	}
}

// TestCreationRetriedCallRefusedIsUnknown is the same for creating a
// payment: the PaymentIntent's first attempt is made by Stripe, its answer
// lost to the timeout, and stripe-go's retry is answered 429. The payment
// was removed as refused, so the PaymentIntent Stripe made (carrying its
// paygate_payment_id) was paid with no payment to find. The row now stays
// pending, the outcome unknown, and the PaymentIntent's webhooks find it.
func TestCreationRetriedCallRefusedIsUnknown(t *testing.T) {
	t.Parallel()
	e := newSBEnv(t, sbOpts{retries: 1, stripeTimeout: 700 * time.Millisecond})
	e.sb.FailNext(sandbox.Fault{Path: "/v1/payment_intents", Method: "POST", AfterExecute: true, Hang: true})
	e.sb.FailNext(sandbox.Fault{Path: "/v1/payment_intents", Method: "POST", Status: 429})
	r := e.do("POST", "/api/payments/payment-intent", `{"amount":"30.00"}`, "Idempotency-Key", "pi-timeout-429")
	if r.Status < 400 {
		t.Fatalf("with the faults: %s", r.Raw)
	}
	var page paygate.Page[paygate.Payment]
	e.do("GET", "/api/payments", "").must(t, 200, &page)
	if len(page.Items) != 1 || page.Items[0].Status != paygate.StatusPending {
		t.Fatalf("after a 429 to a retried call: %+v; want the payment kept pending", page.Items)
	}
	// The merchant's retry under the same key resumes it: Stripe's
	// idempotency key gives back the PaymentIntent made the first time.
	var in paygate.CreatedIntent
	e.do("POST", "/api/payments/payment-intent", `{"amount":"30.00"}`, "Idempotency-Key", "pi-timeout-429").must(t, 201, &in)
	if in.PaymentID != page.Items[0].ID || in.PaymentIntentID == "" {
		t.Fatalf("the retry: %+v, want payment %s", in, page.Items[0].ID)
	}
	if err := e.sb.PayIntent(in.PaymentIntentID, cardOK); err != nil {
		t.Fatal(err)
	}
	e.flush()
	if p := e.payment(t, in.PaymentID); p.Status != paygate.StatusSucceeded {
		t.Errorf("paid at Stripe, paygate says %s", p.Status)
	}
}

// TestRefundAnswered409IsUnknown: Stripe answers 409 when a request with
// the same idempotency key is still running there (or the key clashes):
// the refund may be made, so the reservation stays pending and the answer
// is a 502 (not a 4xx stored as the key's answer); the retry under the same
// key resumes it, and Stripe holds one refund.
func TestRefundAnswered409IsUnknown(t *testing.T) {
	t.Parallel()
	e := newSBEnv(t, sbOpts{})
	in := e.paidIntent(t, "50.00", cardOK)
	body := `{"paymentId":"` + in.PaymentID + `","amount":"20.00"}`
	e.sb.FailNext(sandbox.Fault{Path: "/v1/refunds", Method: "POST", Status: 409})
	if r := e.do("POST", "/api/payments/refund", body, "Idempotency-Key", "rf-409"); r.Status != http.StatusBadGateway {
		t.Fatalf("a 409 from Stripe: %d %s, want 502", r.Status, r.Raw)
	}
	if p := e.payment(t, in.PaymentID); p.AmountRefunded != 2000 || len(p.Refunds) != 1 || p.Refunds[0].Status != paygate.RefundPending {
		t.Fatalf("after the 409: amountRefunded %d, refunds %+v; want the reservation pending", p.AmountRefunded, p.Refunds)
	}
	retry := e.do("POST", "/api/payments/refund", body, "Idempotency-Key", "rf-409").must(t, 201, nil)
	e.flush()
	oneStripeRefund(t, e.sb, in.PaymentID, 2000, retry)
}

// oneStripeRefund checks that Stripe holds one refund of amount for the
// payment: one refund request under one Idempotency-Key, however its
// answers went (given for the message).
func oneStripeRefund(t *testing.T, sb *sandbox.Sandbox, paymentID string, amount int64, answers ...*response) {
	t.Helper()
	tr := sb.Truth(paymentID)
	if len(tr.Refunds) == 1 && tr.AmountRefunded == amount {
		return
	}
	var got []string
	for _, a := range answers {
		got = append(got, fmt.Sprintf("%d %s", a.Status, a.Raw))
	}
	t.Errorf("one refund request of %d under one Idempotency-Key: Stripe made %d refunds, %d refunded (answers: %s)",
		amount, len(tr.Refunds), tr.AmountRefunded, strings.Join(got, "; "))
}
