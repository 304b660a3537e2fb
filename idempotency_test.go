package paygate_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/numedapp/paygate"
)

// testClock is a movable clock for Config.Now.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func withClock(c *testClock) envOpt { return func(cfg *paygate.Config) { cfg.Now = c.Now } }

func TestIdempotencyReplayAndMismatch(t *testing.T) {
	t.Parallel()
	clk := &testClock{t: time.Now()}
	e := newEnv(t, withClock(clk))
	body := `{"amount": "12.34", "metadata": {"orderId": "A1"}}`
	first := e.do("POST", "/api/payments/payment-intent", body, "Idempotency-Key", "order-A1")
	first.must(t, 201, nil)
	if first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatal("a first response carries Idempotent-Replayed")
	}
	calls := len(e.rec.Calls())
	again := e.do("POST", "/api/payments/payment-intent", body, "Idempotency-Key", "order-A1")
	if again.Status != 201 || again.Raw != first.Raw || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %q replayed=%q\nfirst:  %s\nreplay: %s", again.Status, again.Header.Get("Idempotent-Replayed"), again.Header.Get("Idempotent-Replayed"), first.Raw, again.Raw)
	}
	// A replay creates nothing; it only reads the PaymentIntent again for
	// its client secret, which is never stored.
	for _, c := range e.rec.Calls()[calls:] {
		if c.Method != "GET" {
			t.Fatalf("a replay called Stripe: %+v", c)
		}
	}
	other := e.do("POST", "/api/payments/payment-intent", `{"amount": "99.00"}`, "Idempotency-Key", "order-A1")
	if other.Status != 422 || other.Error.Type != "idempotency" || other.param() != "Idempotency-Key" {
		t.Fatalf("different body: %s", other.Raw)
	}
	// The same key on another endpoint is another request too.
	if r := e.do("POST", "/api/payments/generate-url", body, "Idempotency-Key", "order-A1"); r.Status != 422 {
		t.Fatalf("same key, other endpoint: %s", r.Raw)
	}
	// Keys of different API keys do not collide.
	var mine, theirs paygate.CreatedIntent
	first.must(t, 201, &mine)
	e.do("POST", "/api/payments/payment-intent", body, "Idempotency-Key", "order-A1", "Authorization", "Bearer "+testAPIKey2).must(t, 201, &theirs)
	if theirs.PaymentID == mine.PaymentID {
		t.Fatal("two API keys share an Idempotency-Key's payment")
	}
	// After 24 hours the key is forgotten.
	clk.Advance(paygate.IdempotencyTTL + time.Minute)
	var later paygate.CreatedIntent
	r := e.do("POST", "/api/payments/payment-intent", `{"amount": "99.00"}`, "Idempotency-Key", "order-A1")
	r.must(t, 201, &later)
	if r.Header.Get("Idempotent-Replayed") != "" || later.Amount != 9900 {
		t.Fatalf("after expiry: %s", r.Raw)
	}
	for _, bad := range []string{strings.Repeat("k", 256), "tab\there", "ünïcode"} {
		if r := e.do("POST", "/api/payments/payment-intent", body, "Idempotency-Key", bad); r.Status != 400 || r.param() != "Idempotency-Key" {
			t.Errorf("bad key %q: %s", bad, r.Raw)
		}
	}
}

// Twenty concurrent requests with one key make one Stripe object and one 201.
func TestIdempotencyConcurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	count := map[string]int{}
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.do("POST", "/api/payments/generate-url", `{"amount": 10}`, "Idempotency-Key", "concurrent-1")
			k := http.StatusText(r.Status)
			if r.Header.Get("Idempotent-Replayed") == "true" {
				k = "replayed " + k
			}
			mu.Lock()
			count[k]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if count["Created"] != 1 || count["Created"]+count["replayed Created"]+count["Conflict"] != 20 {
		t.Fatalf("responses: %v", count)
	}
	links := 0
	for _, c := range e.rec.Calls() {
		if c.Path == "/v1/payment_links" {
			links++
		}
	}
	if links != 1 {
		t.Fatalf("%d payment links created", links)
	}
	if n := countPayments(t, e); n != 1 {
		t.Fatalf("%d payments stored", n)
	}
}

// When Stripe fails mid-request (5xx), the key is released; the retry with
// the same key resumes the same payment and refund, and Stripe is asked with
// the same idempotency keys, so nothing is created or refunded twice.
func TestIdempotencyResumesAfterStripeFailure(t *testing.T) {
	t.Parallel()
	e, fake, _ := newFakeEnv(t, "sk_test_123abc")
	fake.set(500, stripeErr("api_error", "", "", "boom"))
	if r := e.do("POST", "/api/payments/payment-intent", `{"amount": 30}`, "Idempotency-Key", "pi-retry"); r.Status != 502 {
		t.Fatalf("first attempt: %s", r.Raw)
	}
	fake.set(200, `{"id": "pi_resumed", "object": "payment_intent", "status": "requires_payment_method", "client_secret": "pi_resumed_secret_x"}`)
	var pi paygate.CreatedIntent
	e.do("POST", "/api/payments/payment-intent", `{"amount": 30}`, "Idempotency-Key", "pi-retry").must(t, 201, &pi)
	if n := countPayments(t, e); n != 1 {
		t.Fatalf("%d payments after a retried create", n)
	}
	p := e.payment(pi.PaymentID)
	if len(p.History) != 1 || p.PaymentIntentID != "pi_resumed" {
		t.Fatalf("resumed payment: %+v", p)
	}

	e.succeed(pi.PaymentID)
	fake.set(503, stripeErr("api_error", "", "", "down"))
	if r := e.do("POST", "/api/payments/refund", `{"paymentIntentId": "pi_resumed", "amount": 10}`, "Idempotency-Key", "refund-1"); r.Status != 502 {
		t.Fatalf("first refund attempt: %s", r.Raw)
	}
	fake.set(200, `{"id": "re_resumed", "object": "refund", "amount": 1000, "status": "succeeded"}`)
	var rf paygate.CreatedRefund
	e.do("POST", "/api/payments/refund", `{"paymentIntentId": "pi_resumed", "amount": 10}`, "Idempotency-Key", "refund-1").must(t, 201, &rf)
	p = e.payment(pi.PaymentID)
	if len(p.Refunds) != 1 || p.AmountRefunded != 1000 || rf.RefundID != "re_resumed" || p.Refunds[0].Status != paygate.RefundSucceeded {
		t.Fatalf("after the retried refund: %+v", p.Payment)
	}
	// Both attempts went to Stripe with one idempotency key.
	fake.mu.Lock()
	keys := fake.idemKeys
	fake.mu.Unlock()
	var refundKeys []string
	for _, k := range keys {
		if strings.Contains(k, ":refund:") {
			refundKeys = append(refundKeys, k)
		}
	}
	if len(refundKeys) != 2 || refundKeys[0] != refundKeys[1] {
		t.Fatalf("refund idempotency keys sent to Stripe: %v", refundKeys)
	}
	// A replay now returns the stored 201.
	r := e.do("POST", "/api/payments/refund", `{"paymentIntentId": "pi_resumed", "amount": 10}`, "Idempotency-Key", "refund-1")
	if r.Status != 201 || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay after resume: %s", r.Raw)
	}
}
