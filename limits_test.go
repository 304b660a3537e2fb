package paygate_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
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

// TestReadBody: request bodies are read whole and exact whatever their size
// and whether their length is declared (chunked bodies are not), a body at
// the limit is accepted and one byte over it is a *http.MaxBytesError, and
// a declared length the body falls short of is an error.
func TestReadBody(t *testing.T) {
	t.Parallel()
	const limit = 200_000
	for _, size := range []int{0, 1, 511, 512, 513, 3_700, 65_535, 65_536, 65_537, 150_000, limit} {
		for _, declared := range []bool{true, false} {
			want := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
			r := httptest.NewRequest("POST", "/x", bytes.NewReader(want))
			if !declared {
				r.ContentLength = -1
			}
			got, err := paygate.ReadBody(httptest.NewRecorder(), r, limit)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("size %d declared %v: %d bytes, %v", size, declared, len(got), err)
			}
		}
	}
	for _, declared := range []bool{true, false} {
		r := httptest.NewRequest("POST", "/x", bytes.NewReader(make([]byte, limit+1)))
		if !declared {
			r.ContentLength = -1
		}
		var mbe *http.MaxBytesError
		if _, err := paygate.ReadBody(httptest.NewRecorder(), r, limit); !errors.As(err, &mbe) {
			t.Fatalf("one byte over the limit, declared %v: %v", declared, err)
		}
	}
	short := httptest.NewRequest("POST", "/x", nil)
	short.Body = io.NopCloser(&failingReader{data: []byte(strings.Repeat("x", 100)), err: io.ErrUnexpectedEOF})
	short.ContentLength = 1_000
	if _, err := paygate.ReadBody(httptest.NewRecorder(), short, limit); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a body short of its declared length: %v", err)
	}
}

// failingReader returns data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}
