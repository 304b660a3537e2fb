package paygate_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/internal/testenv"
	"github.com/numedapp/paygate/store"
)

// fakeStripe answers every Stripe call with a fixed status and body, over
// real HTTP, so that error paths can be tested (stripe-mock only succeeds).
type fakeStripe struct {
	mu       sync.Mutex
	status   int
	body     string
	paths    []string
	idemKeys []string
	routes   map[string]fakeAnswer // "GET /v1/…" → answer, before the default
}

type fakeAnswer struct {
	status int
	body   string
}

// route answers method+path with status and body.
func (f *fakeStripe) route(method, path string, status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.routes == nil {
		f.routes = map[string]fakeAnswer{}
	}
	f.routes[method+" "+path] = fakeAnswer{status, body}
}

func (f *fakeStripe) set(status int, body string) {
	f.mu.Lock()
	f.status, f.body = status, body
	f.mu.Unlock()
}

func (f *fakeStripe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.paths = append(f.paths, r.URL.Path)
	f.idemKeys = append(f.idemKeys, r.Header.Get("Idempotency-Key"))
	w.Header().Set("Content-Type", "application/json")
	if a, ok := f.routes[r.Method+" "+r.URL.Path]; ok {
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
		return
	}
	w.WriteHeader(f.status)
	_, _ = w.Write([]byte(f.body))
}

func newFakeEnv(t *testing.T, key string) (*env, *fakeStripe, *httptest.Server) {
	t.Helper()
	return newFakeEnvWith(t, key)
}

// newFakeEnvWith is newFakeEnv with Config changes.
func newFakeEnvWith(t *testing.T, key string, opts ...envOpt) (*env, *fakeStripe, *httptest.Server) {
	t.Helper()
	fake := &fakeStripe{}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	pool := testenv.NewPool(t)
	st := store.New(pool)
	logs := &testenv.LockedBuffer{}
	cfg := paygate.Config{Store: st, StripeSecretKey: key, StripeAPIBase: srv.URL, StripeMaxNetworkRetries: -1, InsecureNoAuth: true,
		Logger: slog.New(slog.NewJSONHandler(logs, nil))}
	for _, o := range opts {
		o(&cfg)
	}
	gw, err := paygate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(gw.Handler())
	t.Cleanup(api.Close)
	return &env{t: t, gw: gw, store: st, pool: pool, rec: &recorder{}, srv: api, logs: logs}, fake, srv
}

func stripeErr(typ, code, param, msg string) string {
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"type": typ, "code": code, "param": param, "message": msg}})
	return string(b)
}

func countPayments(t *testing.T, e *env) int {
	t.Helper()
	pg, err := e.store.ListPayments(context.Background(), paygate.PaymentFilter{PageParams: paygate.PageParams{Limit: 100}})
	if err != nil {
		t.Fatal(err)
	}
	return pg.Total
}

func TestStripeErrorMapping(t *testing.T) {
	t.Parallel()
	const secret = "sk_test_51SecretValueThatMustNeverLeak"
	e, fake, _ := newFakeEnv(t, secret)

	// A refusal: 400 with Stripe's message and our field name; no payment is left behind.
	fake.set(400, stripeErr("invalid_request_error", "amount_too_small", "amount", "Amount must be at least $0.50 usd"))
	r := e.do("POST", "/api/payments/payment-intent", `{"amount": "0.10"}`)
	if r.Status != 400 || r.param() != "amount" || r.Error.Type != "stripe_error" || !strings.Contains(r.Message, "at least $0.50") {
		t.Fatalf("refusal: %s", r.Raw)
	}
	if n := countPayments(t, e); n != 0 {
		t.Fatalf("refused payment left %d rows", n)
	}
	fake.set(400, stripeErr("invalid_request_error", "", "line_items[0][price_data][unit_amount]", "Too small"))
	r = e.do("POST", "/api/payments/checkout-session", `{"amount": "0.10", "successUrl": "https://a.example/ok", "cancelUrl": "https://a.example/no"}`)
	if r.Status != 400 || r.param() != "amount" {
		t.Fatalf("checkout refusal: %s", r.Raw)
	}

	// Stripe refuses our key: a 502 that is not the caller's fault, without
	// the key, and health says Stripe is down.
	fake.set(401, stripeErr("invalid_request_error", "", "", "Invalid API Key provided: "+secret))
	r = e.do("POST", "/api/payments/generate-url", `{"amount": 5}`)
	if r.Status != 502 || r.Error.Type != "stripe_error" || strings.Contains(r.Raw, secret) || strings.Contains(r.Raw, "sk_test") {
		t.Fatalf("auth failure: %s", r.Raw)
	}
	var h paygate.Health
	e.do("GET", "/api/health", "").must(t, 200, &h)
	if h.Checks.Stripe.Status != "down" || !h.Checks.Stripe.SecretKey || strings.Contains(r.Raw, secret) {
		t.Fatalf("health after auth failure: %+v", h)
	}

	if strings.Contains(e.logs.String(), secret) {
		t.Fatal("the Stripe secret key reached the log")
	}

	// Rate limited by Stripe: 429.
	fake.set(429, stripeErr("invalid_request_error", "rate_limit", "", "Too many requests"))
	if r := e.do("POST", "/api/payments/payment-intent", `{"amount": 5}`); r.Status != 429 || r.Error.Type != "rate_limited" {
		t.Fatalf("rate limit: %s", r.Raw)
	}

	// Stripe failing: 502, and the payment stays pending (an object may exist).
	before := countPayments(t, e)
	fake.set(500, stripeErr("api_error", "", "", "boom"))
	if r := e.do("POST", "/api/payments/payment-intent", `{"amount": 5}`); r.Status != 502 || strings.Contains(r.Raw, "boom") {
		t.Fatalf("stripe 500: %s", r.Raw)
	}
	if n := countPayments(t, e); n != before+1 {
		t.Fatalf("payment with unknown outcome not kept: %d → %d", before, n)
	}

	// A good answer again: Stripe is back up in health.
	fake.set(200, `{"id": "pi_ok1", "object": "payment_intent", "status": "requires_payment_method", "client_secret": "pi_ok1_secret_x"}`)
	e.do("POST", "/api/payments/payment-intent", `{"amount": 5}`).must(t, 201, nil)
	e.do("GET", "/api/health", "").must(t, 200, &h)
	if h.Checks.Stripe.Status != "up" {
		t.Fatalf("health after success: %+v", h)
	}
}

func TestStripeUnreachableAndUnconfigured(t *testing.T) {
	t.Parallel()
	e, _, stripeSrv := newFakeEnv(t, "sk_test_123abc")
	stripeSrv.Close()
	r := e.do("POST", "/api/payments/payment-intent", `{"amount": 5}`)
	if r.Status != 503 || r.Error.Type != "unavailable" {
		t.Fatalf("unreachable: %s", r.Raw)
	}

	noKey, _, _ := newFakeEnv(t, "")
	if r := noKey.do("POST", "/api/payments/payment-intent", `{"amount": 5}`); r.Status != 503 {
		t.Fatalf("no key: %s", r.Raw)
	}
	if n := countPayments(t, noKey); n != 0 {
		t.Fatalf("no key left %d payments", n)
	}
	if r := noKey.do("GET", "/api/health/ready", ""); r.Status != 503 {
		t.Fatalf("ready without key: %s", r.Raw)
	}
}

// A refund Stripe refuses no longer counts, and its failure is in the history.
func TestRefundRefusedByStripe(t *testing.T) {
	t.Parallel()
	e, fake, _ := newFakeEnv(t, "sk_test_123abc")
	fake.set(200, `{"id": "pi_r1", "object": "payment_intent", "status": "succeeded", "client_secret": "s"}`)
	var pi paygate.CreatedIntent
	e.do("POST", "/api/payments/payment-intent", `{"amount": 10}`).must(t, 201, &pi)
	e.succeed(pi.PaymentID)
	fake.set(400, stripeErr("invalid_request_error", "charge_already_refunded", "", "Charge has already been refunded."))
	r := e.do("POST", "/api/payments/refund", `{"paymentIntentId": "pi_r1", "amount": 4}`)
	if r.Status != 400 || !strings.Contains(r.Message, "already been refunded") {
		t.Fatalf("refused refund: %s", r.Raw)
	}
	var p paygate.PaymentWithHistory
	e.do("GET", "/api/payments/"+pi.PaymentID, "").must(t, 200, &p)
	if p.AmountRefunded != 0 || p.Status != paygate.StatusSucceeded || len(p.Refunds) != 1 || p.Refunds[0].Status != paygate.RefundFailed {
		t.Fatalf("after refused refund: %+v", p.Payment)
	}
	if last := p.History[len(p.History)-1]; last.EventType != paygate.HistoryRefundFailed {
		t.Fatalf("history: %+v", p.History)
	}
}
