package paygate_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/form"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/callback"
	"github.com/numedapp/paygate/internal/apitest"
	"github.com/numedapp/paygate/internal/testenv"
	"github.com/numedapp/paygate/internal/testsrv"
	"github.com/numedapp/paygate/store"
)

// testAPIKey is the API key every test request carries unless it sets its own.
const (
	testAPIKey  = "test-api-key-0123456789"
	testAPIKey2 = "second-api-key-0123456789"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// stripeCall is one recorded Stripe API call, as form-encoded on the wire.
type stripeCall struct {
	Method, Path   string
	Form           url.Values
	IdempotencyKey string
}

// recorder is a stripe.Backend that records every call's exact parameters
// and passes it on to a real backend (stripe-mock, which validates it
// against Stripe's OpenAPI spec).
type recorder struct {
	stripe.Backend
	mu    sync.Mutex
	calls []stripeCall
}

func (r *recorder) Call(method, path, key string, params stripe.ParamsContainer, v stripe.LastResponseSetter) error {
	c := stripeCall{Method: method, Path: path, Form: url.Values{}}
	if params != nil {
		fv := &form.Values{}
		form.AppendTo(fv, params)
		c.Form = fv.ToValues()
		if p := params.GetParams(); p != nil && p.IdempotencyKey != nil {
			c.IdempotencyKey = *p.IdempotencyKey
		}
	}
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
	return r.Backend.Call(method, path, key, params, v)
}

func (r *recorder) Calls() []stripeCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]stripeCall(nil), r.calls...)
}

func (r *recorder) Reset() {
	r.mu.Lock()
	r.calls = nil
	r.mu.Unlock()
}

// env is a Gateway on a fresh schema, talking to stripe-mock through a
// recorder, served over real HTTP.
type env struct {
	t     testing.TB
	gw    *paygate.Gateway
	store testStore
	pool  *pgxpool.Pool // nil on SQLite
	rec   *recorder
	srv   *httptest.Server
	logs  *testenv.LockedBuffer
}

// testStore is what the tests use of a store: the PostgreSQL one, or with
// PAYGATE_TEST_STORE=sqlite the embedded one (.ci/run runs both).
type testStore interface {
	paygate.Store
	callback.Queue
	ListenCallbacks(ctx context.Context, wake func()) error
}

// newTestStore returns a fresh store of the test's own: PostgreSQL (and its
// pool), or with PAYGATE_TEST_STORE=sqlite the embedded store (no pool).
func newTestStore(t testing.TB) (testStore, *pgxpool.Pool) {
	if os.Getenv("PAYGATE_TEST_STORE") == "sqlite" {
		return testenv.NewSQLite(t), nil
	}
	pool := testenv.NewPool(t)
	return store.New(pool), pool
}

type envOpt func(*paygate.Config)

func newEnv(t testing.TB, opts ...envOpt) *env {
	t.Helper()
	mockURL := testenv.StripeMockURL(t)
	st, pool := newTestStore(t)
	rec := &recorder{Backend: stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL:           stripe.String(mockURL),
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	})}
	logs := &testenv.LockedBuffer{}
	cfg := paygate.Config{
		Store:                st,
		StripeSecretKey:      testsrv.StripeMockKey,
		StripePublishableKey: "pk_test_123abc",
		StripeAPIBase:        mockURL,
		Logger:               slog.New(slog.NewJSONHandler(logs, nil)),
	}
	auth, err := paygate.BearerKeys(testAPIKey, testAPIKey2)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth = auth
	paygate.SetBackend(&cfg, rec)
	for _, o := range opts {
		o(&cfg)
	}
	gw, err := paygate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(srv.Close)
	return &env{t: t, gw: gw, store: st, pool: pool, rec: rec, srv: srv, logs: logs}
}

// response is a decoded envelope.
type response struct {
	Status  int
	Header  http.Header
	Raw     string
	OK      bool            `json:"status"`
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
	Error   *struct {
		Type      string  `json:"type"`
		Param     *string `json:"param"`
		RequestID string  `json:"requestId"`
	} `json:"error"`
}

func (r *response) param() string {
	if r.Error == nil || r.Error.Param == nil {
		return ""
	}
	return *r.Error.Param
}

// do sends a request over real HTTP and decodes the envelope, failing the
// test if the body is not the envelope or code differs from the status.
func (e *env) do(method, path, body string, hdr ...string) *response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+testAPIKey)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := &response{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if err := json.Unmarshal(raw, out); err != nil {
		e.t.Fatalf("%s %s: body is not JSON: %v\n%s", method, path, err, raw)
	}
	if out.Code != resp.StatusCode {
		e.t.Fatalf("%s %s: envelope code %d != HTTP status %d", method, path, out.Code, resp.StatusCode)
	}
	if out.OK != (resp.StatusCode < 400) {
		e.t.Fatalf("%s %s: envelope status %v with HTTP %d", method, path, out.OK, resp.StatusCode)
	}
	if err := apitest.CheckResponse(req, resp.StatusCode, resp.Header, raw); err != nil {
		e.t.Errorf("%v\n%s", err, raw)
	}
	if resp.StatusCode < 300 {
		if err := apitest.CheckRequest(req, []byte(body)); err != nil {
			e.t.Errorf("%v\nbody: %s", err, body)
		}
	}
	return out
}

// must requires the status and decodes data into v (if not nil).
func (r *response) must(t *testing.T, status int, v any) *response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Raw)
	}
	if v != nil {
		if err := json.Unmarshal(r.Data, v); err != nil {
			t.Fatalf("decode data: %v\n%s", err, r.Raw)
		}
	}
	return r
}

// succeed moves a stored payment to succeeded, as a webhook would.
func (e *env) succeed(paymentID string) {
	e.t.Helper()
	_, err := e.store.UpdatePayment(context.Background(), paymentID, func(p *paygate.Payment) ([]paygate.HistoryEntry, error) {
		p.Status = paygate.StatusSucceeded
		return nil, nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}
