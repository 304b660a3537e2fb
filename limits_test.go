package paygate_test

import (
	"bufio"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/numedapp/paygate"
)

func TestRateLimitPerAPIKey(t *testing.T) {
	t.Parallel()
	// One token per 10 s: the fourth request is refused however slow the machine.
	e := newEnv(t, func(c *paygate.Config) { c.RateLimit, c.RateBurst = 0.1, 3 })
	var limited *response
	for i := 0; i < 4; i++ {
		r := e.do("GET", "/api/payments", "")
		if i < 3 && r.Status != 200 {
			t.Fatalf("request %d within the burst: %s", i, r.Raw)
		}
		if i == 3 {
			limited = r
		}
	}
	if limited.Status != 429 || limited.Error.Type != "rate_limited" {
		t.Fatalf("over the limit: %s", limited.Raw)
	}
	if s, err := strconv.Atoi(limited.Header.Get("Retry-After")); err != nil || s < 1 || s > 10 {
		t.Fatalf("Retry-After = %q", limited.Header.Get("Retry-After"))
	}
	// Another API key has its own bucket; public routes are not limited.
	if r := e.do("GET", "/api/payments", "", "Authorization", "Bearer "+testAPIKey2); r.Status != 200 {
		t.Fatalf("second key limited by the first: %s", r.Raw)
	}
	if r := e.do("GET", "/api/health/live", ""); r.Status != 200 {
		t.Fatalf("health limited: %s", r.Raw)
	}
}

// panicStore panics in ListPayments while told to.
type panicStore struct {
	paygate.Store
	panicking atomic.Bool
}

func (s *panicStore) ListPayments(ctx context.Context, f paygate.PaymentFilter) (*paygate.Page[paygate.Payment], error) {
	if s.panicking.Load() {
		panic("test panic in a handler")
	}
	return s.Store.ListPayments(ctx, f)
}

func TestPanicIsA500AndServingGoesOn(t *testing.T) {
	t.Parallel()
	ps := &panicStore{}
	ps.panicking.Store(true)
	e := newEnv(t, func(c *paygate.Config) { ps.Store = c.Store; c.Store = ps })
	r := e.do("GET", "/api/payments", "", "X-Request-Id", "panic-req-1")
	if r.Status != 500 || r.Error.Type != "internal" || r.Error.RequestID != "panic-req-1" || strings.Contains(r.Raw, "test panic") {
		t.Fatalf("panic: %s", r.Raw)
	}
	if !strings.Contains(e.logs.String(), "test panic in a handler") || !strings.Contains(e.logs.String(), "panic-req-1") {
		t.Fatal("the panic was not logged with its request id")
	}
	ps.panicking.Store(false)
	if r := e.do("GET", "/api/payments", ""); r.Status != 200 {
		t.Fatalf("after a panic: %s", r.Raw)
	}
}

// Every log line written while serving a request carries its id.
func TestRequestIDInLogLines(t *testing.T) {
	t.Parallel()
	e, fake, _ := newFakeEnv(t, "sk_test_123abc")
	fake.set(500, stripeErr("api_error", "", "", "boom"))
	r := e.do("POST", "/api/payments/payment-intent", `{"amount": 5}`, "X-Request-Id", "trace-abc-123")
	if r.Status != 502 || r.Error.RequestID != "trace-abc-123" || r.Header.Get("X-Request-Id") != "trace-abc-123" {
		t.Fatalf("response: %s", r.Raw)
	}
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(e.logs.String()))
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		lines++
		if rec["request_id"] != "trace-abc-123" {
			t.Errorf("log line without the request id: %s", sc.Text())
		}
	}
	if lines < 2 {
		t.Fatalf("expected the Stripe failure and the request failure logged, got %d lines", lines)
	}
	// A malformed incoming id is replaced by one of ours.
	if r := e.do("GET", "/api/health/live", "", "X-Request-Id", "bad id with spaces"); !strings.HasPrefix(r.Header.Get("X-Request-Id"), "req_") {
		t.Fatalf("malformed request id kept: %q", r.Header.Get("X-Request-Id"))
	}
}
