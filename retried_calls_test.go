package paygate_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/numedapp/paygate/sandbox"
)

// hangUpAfter is a proxy to the sandbox that, once armed, forwards the
// next POST to path (Stripe carries it out) and then closes the client's
// connection without an answer: a connection reset between Stripe and
// paygate after the request went through (a load balancer's idle timeout,
// a network blip).
type hangUpAfter struct {
	rp    *httputil.ReverseProxy
	base  *url.URL
	path  string
	armed atomic.Bool
	after func() // run once the armed request was carried out

	mu   sync.Mutex
	seen []string // Idempotency-Key of every POST to path
}

func (h *hangUpAfter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Path == h.path {
		h.mu.Lock()
		h.seen = append(h.seen, r.Header.Get("Idempotency-Key"))
		h.mu.Unlock()
		if h.armed.CompareAndSwap(true, false) {
			body, _ := io.ReadAll(r.Body)
			req, _ := http.NewRequest(r.Method, h.base.String()+r.URL.RequestURI(), bytes.NewReader(body))
			req.Header = r.Header.Clone()
			if resp, err := http.DefaultClient.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if h.after != nil {
				h.after()
			}
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
	}
	h.rp.ServeHTTP(w, r)
}

// TestTransportResendIsARetriedCall: net/http itself resends a request
// whose reused keep-alive connection closed after it was written and
// before any answer, when it is replayable (a POST with an Idempotency-Key
// header, as stripe-go sends). Here Stripe made the refund on the first
// write, the connection dropped, and the resend was answered 429. Counted
// as one attempt (a RoundTripper around the transport saw one call), the
// 429 read as a refusal, the reservation was marked failed, and the
// merchant's retry made a new one with a new Stripe key: two refunds for
// one request. Every write of the request counts now (httptrace).
func TestTransportResendIsARetriedCall(t *testing.T) {
	t.Parallel()
	var proxy *hangUpAfter
	held := holdWebhooks("refund.created", "refund.updated", "charge.refunded", "charge.refund.updated")
	e := newSBEnv(t, sbOpts{lose: held.lose, via: func(u *url.URL) http.Handler {
		proxy = &hangUpAfter{rp: httputil.NewSingleHostReverseProxy(u), base: u, path: "/v1/refunds"}
		return proxy
	}})
	in := e.paidIntent(t, "50.00", cardOK) // leaves a keep-alive connection to the proxy

	// Attempt 1: Stripe makes the refund, the connection drops before the
	// answer. The transport's replay (same Stripe key) is rate limited.
	proxy.after = func() { e.sb.FailNext(sandbox.Fault{Path: "/v1/refunds", Method: "POST", Status: 429}) }
	// net/http resends only on a reused connection: a status read just
	// before leaves one idle to the proxy.
	e.do("GET", "/api/payments/payment-intent/"+in.PaymentIntentID, "").must(t, 200, nil)
	proxy.armed.Store(true)
	body := `{"paymentId":"` + in.PaymentID + `","amount":"20.00"}`
	first := e.do("POST", "/api/payments/refund", body, "Idempotency-Key", "rf-replayed")
	proxy.mu.Lock()
	seen := append([]string(nil), proxy.seen...)
	proxy.mu.Unlock()
	if len(seen) != 2 || seen[0] != seen[1] {
		t.Fatalf("setup: want the transport to replay the refund once with the same key; Stripe saw %q (answer %d %s)", seen, first.Status, first.Raw)
	}
	// The merchant retries the same request under the same key.
	second := e.do("POST", "/api/payments/refund", body, "Idempotency-Key", "rf-replayed")
	held.release()
	e.flush()

	oneStripeRefund(t, e.sb, in.PaymentID, 2000, first, second)
}

// TestUnknownRefundAnswerIsNotStored: stripe-go's first attempt timed out
// after Stripe made the refund, and its retry (same Stripe key) was
// answered 409 (the first request with that key still running). The
// outcome is unknown, and so is the answer: a 502, which releases the
// merchant's Idempotency-Key, so the retry resumes and returns the refund.
// The 400 it was answered before was stored under the key for 24 hours,
// telling the merchant a refund Stripe made had been refused.
func TestUnknownRefundAnswerIsNotStored(t *testing.T) {
	t.Parallel()
	e := newSBEnv(t, sbOpts{retries: 1, stripeTimeout: 700 * time.Millisecond})
	in := e.paidIntent(t, "50.00", cardOK)

	// Attempt 1: Stripe makes the refund; its answer never arrives in time.
	e.sb.FailNext(sandbox.Fault{Path: "/v1/refunds", Method: "POST", AfterExecute: true, Hang: true})
	// Attempt 2 (stripe-go's own retry, same Stripe key): 409.
	e.sb.FailNext(sandbox.Fault{Path: "/v1/refunds", Method: "POST", Status: 409})
	body := `{"paymentId":"` + in.PaymentID + `","amount":"20.00"}`
	first := e.do("POST", "/api/payments/refund", body, "Idempotency-Key", "rf-timeout-409")
	if first.Status < 400 {
		t.Fatalf("setup: the faults did not apply: %s", first.Raw)
	}
	e.flush()
	p := e.payment(t, in.PaymentID)
	if p.AmountRefunded != 2000 {
		t.Fatalf("setup: Stripe made the refund, paygate amountRefunded %d", p.AmountRefunded)
	}
	// The merchant retries the same request under the same key.
	second := e.do("POST", "/api/payments/refund", body, "Idempotency-Key", "rf-timeout-409")
	if second.Status != http.StatusCreated {
		t.Errorf("first answer %d %s; the retry under the same Idempotency-Key was answered %d (replayed: %q) %s, "+
			"though Stripe made the refund (%s, amountRefunded %d)", first.Status, first.Raw, second.Status,
			second.Header.Get("Idempotent-Replayed"), second.Raw, p.Refunds[0].StripeRefundID, p.AmountRefunded)
	}
}

// TestResumedRefundRefusedIsUnknown: a refund whose first call had an
// unknown outcome (Stripe made it, the answer was a 500) is resumed by the
// merchant's retry with the same Stripe key, and that call is answered 429.
// Its 4xx proves only that this call did nothing: the first was carried
// out. It was read as a refusal, and the next retry refunded again.
func TestResumedRefundRefusedIsUnknown(t *testing.T) {
	t.Parallel()
	e := newSBEnv(t, sbOpts{})
	in := e.paidIntent(t, "50.00", cardOK)
	body := `{"paymentId":"` + in.PaymentID + `","amount":"20.00"}`

	// The first call: Stripe makes the refund, the answer is a 500.
	e.sb.FailNext(sandbox.Fault{Path: "/v1/refunds", Method: "POST", AfterExecute: true, Status: 500})
	first := e.do("POST", "/api/payments/refund", body, "Idempotency-Key", "rf-resume-429")
	if first.Status != http.StatusBadGateway {
		t.Fatalf("setup: first answer %d %s", first.Status, first.Raw)
	}
	// The merchant's retry resumes it; Stripe rate limits that call.
	e.sb.FailNext(sandbox.Fault{Path: "/v1/refunds", Method: "POST", Status: 429})
	second := e.do("POST", "/api/payments/refund", body, "Idempotency-Key", "rf-resume-429")
	// And retries again after the 429's Retry-After.
	third := e.do("POST", "/api/payments/refund", body, "Idempotency-Key", "rf-resume-429")
	e.flush()

	oneStripeRefund(t, e.sb, in.PaymentID, 2000, first, second, third)
}

// TestStaleStatusReadKeepsNewerCharge: a status read is dated when it began
// (asOf), not when it is applied. Three card tries are declined and the
// second's webhooks are late; a read answered while the second was the
// latest charge is applied after the third's webhook. Dated when applied,
// it put chargeId back to the second, and redeliveries could not move it.
func TestStaleStatusReadKeepsNewerCharge(t *testing.T) {
	t.Parallel()
	var lose atomic.Bool
	e := newSBEnv(t, sbOpts{lose: func(string) bool { return lose.Load() }})
	in := e.createIntent(t, `{"amount":"12.00"}`)
	if err := e.sb.PayIntent(in.PaymentIntentID, cardDecline); err == nil {
		t.Fatal("setup: the decline card paid")
	}
	e.flush()
	lose.Store(true) // the second try's webhooks are late
	if err := e.sb.PayIntent(in.PaymentIntentID, "4000000000009995"); err == nil {
		t.Fatal("setup: the insufficient-funds card paid")
	}
	e.flush()
	lose.Store(false)
	second := fmt.Sprint(e.sb.Object(in.PaymentIntentID)["latest_charge"])
	// Each step in a second of its own: of one second, Stripe's whole-second
	// times cannot order two events (or an event and a read).
	e.advance(2 * time.Second)

	// The status read: Stripe answers at once, the answer is slow to arrive.
	e.sb.FailNext(sandbox.Fault{Path: "/v1/payment_intents/" + in.PaymentIntentID, Method: "GET", AfterExecute: true, Hang: true, HangFor: 2 * time.Second})
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", e.srv.URL+"/api/payments/payment-intent/"+in.PaymentIntentID, nil)
		req.Header.Set("Authorization", "Bearer "+testAPIKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	time.Sleep(500 * time.Millisecond) // Stripe has read the PaymentIntent
	e.advance(2 * time.Second)
	if err := e.sb.PayIntent(in.PaymentIntentID, cardDecline); err == nil {
		t.Fatal("setup: the decline card paid")
	}
	e.flush() // the third decline's webhooks
	latest := fmt.Sprint(e.sb.Object(in.PaymentIntentID)["latest_charge"])
	if got := e.payment(t, in.PaymentID).ChargeID; got != latest || latest == second {
		t.Fatalf("setup: after the webhook chargeId %s, latest_charge %s, second %s", got, latest, second)
	}
	if st := <-done; st != http.StatusOK {
		t.Fatalf("status read: %d", st)
	}
	e.redeliver(t, "payment_intent.payment_failed") // Stripe's retries of the webhooks
	if got := e.payment(t, in.PaymentID).ChargeID; got != latest {
		t.Errorf("chargeId %s (the second decline, from a read made before the third); Stripe's latest_charge is %s", got, latest)
	}
}

// TestUnknownCreationAnswerIsNotStored is the payment-creation side of
// TestUnknownRefundAnswerIsNotStored: the PaymentIntent Stripe made on the
// first attempt is returned (with its client secret) to the merchant's
// retry under the same key. A stored 400 was replayed instead, and the
// payment stayed pending with no PaymentIntent id under that key.
func TestUnknownCreationAnswerIsNotStored(t *testing.T) {
	t.Parallel()
	e := newSBEnv(t, sbOpts{retries: 1, stripeTimeout: 700 * time.Millisecond})
	e.sb.FailNext(sandbox.Fault{Path: "/v1/payment_intents", Method: "POST", AfterExecute: true, Hang: true})
	e.sb.FailNext(sandbox.Fault{Path: "/v1/payment_intents", Method: "POST", Status: 409})
	first := e.do("POST", "/api/payments/payment-intent", `{"amount":"30.00"}`, "Idempotency-Key", "pi-timeout-409")
	if first.Status < 400 {
		t.Fatalf("setup: the faults did not apply: %s", first.Raw)
	}
	second := e.do("POST", "/api/payments/payment-intent", `{"amount":"30.00"}`, "Idempotency-Key", "pi-timeout-409")
	if second.Status != http.StatusCreated {
		t.Errorf("first answer %d %s; the retry under the same Idempotency-Key was answered %d (replayed: %q) %s, "+
			"though Stripe made the PaymentIntent", first.Status, first.Raw, second.Status, second.Header.Get("Idempotent-Replayed"), second.Raw)
	}
}
