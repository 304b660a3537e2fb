package paygate_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/internal/testenv"
)

func withSystemLogs(buffer int) envOpt {
	return func(c *paygate.Config) { c.SystemLogs, c.SystemLogBuffer = true, buffer }
}

// flushLogs waits for the writer to write what it holds (it flushes every
// 250 ms) by polling for a row.
func (e *env) logsWhere(t *testing.T, f paygate.SystemLogFilter, atLeast int) []paygate.SystemLog {
	t.Helper()
	f.Limit = 100
	deadline := time.Now().Add(5 * time.Second)
	for {
		pg, err := e.store.ListSystemLogs(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		if len(pg.Items) >= atLeast || time.Now().After(deadline) {
			return pg.Items
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSystemLogRows(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withSystemLogs(1024), withWebhookSecrets(whsecNew))
	runGateway(t, e.gw)

	// An API request and a payment action.
	e.do("POST", "/api/payments/payment-intent", `{"amount": 5}`, "X-Request-Id", "req-syslog-1").must(t, 201, nil)
	rows := e.logsWhere(t, paygate.SystemLogFilter{RequestID: "req-syslog-1"}, 2)
	bySource := map[string]paygate.SystemLog{}
	for _, r := range rows {
		bySource[r.Source] = r
	}
	if h := bySource["http"]; h.Level != "info" || h.Method != "POST" || h.Path != "/api/payments/payment-intent" || h.StatusCode != 201 {
		t.Fatalf("http row: %+v (all %+v)", h, rows)
	}
	if p := bySource["payment"]; p.Message != "payment created" || fieldsOf(t, p)["method"] != "intent" {
		t.Fatalf("payment row: %+v", p)
	}

	// A webhook outcome, and a refused webhook.
	p := e.webhookPayment(paygate.MethodIntent, 1000)
	e.send(stripeEventJSON("evt_syslog1", "payment_intent.succeeded", "2023-10-16", piObject(p.PaymentIntentID, "succeeded", 1000, p.ID, "ch_s")), "X-Request-Id", "req-syslog-2",
		"Stripe-Signature", signed(stripeEventJSON("evt_syslog1", "payment_intent.succeeded", "2023-10-16", piObject(p.PaymentIntentID, "succeeded", 1000, p.ID, "ch_s")), whsecNew, time.Now()))
	e.do("POST", "/api/webhooks/stripe", `{"id": "evt_x", "type": "x"}`, "X-Request-Id", "req-syslog-3", "Stripe-Signature", "t=1,v1=00")
	hooks := e.logsWhere(t, paygate.SystemLogFilter{Source: "webhook"}, 2)
	var sawRefused bool
	for _, r := range hooks {
		if r.RequestID == "req-syslog-3" && r.Level == "warn" && strings.Contains(r.Message, "refused") {
			sawRefused = true
		}
	}
	if !sawRefused {
		t.Fatalf("no refused-webhook row: %+v", hooks)
	}
	// A webhook request is one row: the request and its outcome.
	one := e.logsWhere(t, paygate.SystemLogFilter{RequestID: "req-syslog-2"}, 1)
	if len(one) != 1 || one[0].Source != "webhook" || one[0].Path != "/api/webhooks/stripe" || one[0].StatusCode != 200 ||
		fieldsOf(t, one[0])["outcome"] != "processed" || fieldsOf(t, one[0])["eventId"] != "evt_syslog1" {
		t.Fatalf("webhook request rows: %+v", one)
	}

	// The read endpoint, with filters.
	var page paygate.Page[paygate.SystemLog]
	e.do("GET", "/api/logs/logs?source=http&level=info&limit=5", "").must(t, 200, &page)
	if len(page.Items) == 0 || page.Items[0].Source != "http" {
		t.Fatalf("logs endpoint: %+v", page)
	}
	for _, bad := range []struct{ q, param string }{
		{"level=debug", "level"}, {"source=kernel", "source"}, {"requestId=has%20space", "requestId"},
		{"from=yesterday", "from"}, {"from=2024-02-01T00:00:00Z&to=2024-01-01T00:00:00Z", "to"}, {"limit=0", "limit"},
	} {
		if r := e.do("GET", "/api/logs/logs?"+bad.q, ""); r.Status != 400 || r.param() != bad.param {
			t.Errorf("%s: %s", bad.q, r.Raw)
		}
	}
}

func TestSystemLogErrorRow(t *testing.T) {
	t.Parallel()
	e, fake, _ := newFakeEnvWith(t, "sk_test_123abc", func(c *paygate.Config) { c.SystemLogs = true })
	runGateway(t, e.gw)
	fake.set(500, stripeErr("api_error", "", "", "boom"))
	e.do("POST", "/api/payments/payment-intent", `{"amount": 5}`, "X-Request-Id", "req-err-1")
	rows := e.logsWhere(t, paygate.SystemLogFilter{RequestID: "req-err-1", Source: "error"}, 1)
	if len(rows) != 1 || rows[0].Level != "error" || fieldsOf(t, rows[0])["status"] != float64(502) {
		t.Fatalf("error rows: %+v", rows)
	}
}

// A flood beyond the buffer drops rows (counted) and never blocks a request.
func TestSystemLogFloodDropsNeverBlocks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withSystemLogs(4), func(c *paygate.Config) { c.Metrics = true })
	runGateway(t, e.gw)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if r := e.do("GET", "/api/health/live", ""); r.Status != 200 {
					t.Errorf("request failed under a log flood: %d", r.Status)
					return
				}
			}
		}()
	}
	wg.Wait()
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("400 requests took %v", d)
	}
	// Far more rows than any writer drains: queueing never waits.
	if d := paygate.FloodSystemLog(e.gw, 100_000); d > 5*time.Second {
		t.Fatalf("queueing 100,000 rows took %v: the writer blocks its callers", d)
	}
	dropped := e.gw.SystemLogsDropped()
	if dropped == 0 {
		t.Fatal("no rows dropped with a buffer of 4 and a flood of 100,000")
	}
	var h paygate.Health
	e.do("GET", "/api/health", "").must(t, 200, &h)
	if !h.Checks.SystemLogs.Enabled || h.Checks.SystemLogs.Dropped < dropped {
		t.Fatalf("health systemLogs = %+v, dropped %d", h.Checks.SystemLogs, dropped)
	}
	body := get(t, e.srv.URL+"/metrics")
	if !strings.Contains(body, "paygate_system_log_rows_dropped_total ") || strings.Contains(body, "paygate_system_log_rows_dropped_total 0\n") {
		t.Fatalf("metrics lack the dropped count")
	}
	// Rows that were not dropped were written.
	if rows := e.logsWhere(t, paygate.SystemLogFilter{Source: "http"}, 1); len(rows) == 0 {
		t.Fatal("no rows written at all")
	}
}

func fieldsOf(t *testing.T, l paygate.SystemLog) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(l.Fields, &m); err != nil {
		t.Fatalf("fields %s: %v", l.Fields, err)
	}
	return m
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// Rows past the retention are deleted by Run's housekeeping, and so are
// expired Idempotency-Key records.
func TestSystemLogRetention(t *testing.T) {
	t.Parallel()
	testHousekeeping(t, true)
}

// Housekeeping runs whatever SystemLogs says (issue 8 #9): expired
// Idempotency-Key records were only purged by the system log writer.
func TestHousekeepingWithoutSystemLogs(t *testing.T) {
	t.Parallel()
	testHousekeeping(t, false)
}

func testHousekeeping(t *testing.T, systemLogs bool) {
	e := newEnv(t)
	ctx := context.Background()
	old := time.Now().Add(-31 * 24 * time.Hour)
	if err := e.store.InsertSystemLogs(ctx, []paygate.SystemLog{
		{Level: "info", Source: "http", Message: "old", CreatedAt: old},
		{Level: "info", Source: "http", Message: "recent", CreatedAt: time.Now().Add(-time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	// One expired key and one live key.
	expired := time.Now().Add(-25 * time.Hour)
	if _, _, err := e.store.BeginIdempotent(ctx, "", "expired-key", []byte("h"), expired, expired.Add(paygate.IdempotencyTTL), expired); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, _, err := e.store.BeginIdempotent(ctx, "", "live-key", []byte("h"), now, now.Add(paygate.IdempotencyTTL), now); err != nil {
		t.Fatal(err)
	}
	logs := &testenv.LockedBuffer{}
	gw, err := paygate.New(paygate.Config{Store: e.store, InsecureNoAuth: true, SystemLogs: systemLogs,
		Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// New starts nothing: nothing is deleted until Run.
	time.Sleep(100 * time.Millisecond)
	if pg, _ := e.store.ListSystemLogs(ctx, paygate.SystemLogFilter{PageParams: paygate.PageParams{Limit: 10}}); pg.Total != 2 {
		t.Fatalf("New ran housekeeping: %d rows left", pg.Total)
	}
	runGateway(t, gw)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), `"msg":"paygate: expired idempotency keys deleted","keys":1`) {
		if time.Now().After(deadline) {
			t.Fatalf("expired keys not purged; log:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	pg, _ := e.store.ListSystemLogs(ctx, paygate.SystemLogFilter{PageParams: paygate.PageParams{Limit: 10}})
	if pg.Total != 1 || pg.Items[0].Message != "recent" {
		t.Fatalf("retention did not delete the old row: %+v", pg.Items)
	}
	// The live key is still there, in flight: a second Begin does not start it.
	rec, started, err := e.store.BeginIdempotent(ctx, "", "live-key", []byte("h"), now, now.Add(paygate.IdempotencyTTL), now.Add(-time.Hour))
	if err != nil || started || !rec.InFlight {
		t.Fatalf("housekeeping deleted a live key: %+v %v %v", rec, started, err)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookSecrets(whsecNew), func(c *paygate.Config) { c.Metrics = true })
	e.do("GET", "/api/payments", "").must(t, 200, nil)
	e.do("GET", "/api/payments/pay_nope", "")
	p := e.webhookPayment(paygate.MethodIntent, 1000)
	e.send(stripeEventJSON("", "payment_intent.succeeded", "2023-10-16", piObject(p.PaymentIntentID, "succeeded", 1000, p.ID, "ch_m"))).must(t, 200, nil)
	e.do("POST", "/api/webhooks/stripe", `{}`, "Stripe-Signature", "t=1,v1=00")
	e.gw.ObserveCallbackAttempt(paygate.CallbackAttempt{Success: false, ErrorClass: "timeout"})
	// A method the client makes up is counted as "other": label values stay few.
	if req, err := http.NewRequest("X-MADE-UP", e.srv.URL+"/api/payments", nil); err != nil {
		t.Fatal(err)
	} else if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	body := get(t, e.srv.URL+"/metrics")
	for _, want := range []string{
		`paygate_http_requests_total{method="GET",route="GET /api/payments",status="200"} 1`,
		`paygate_http_requests_total{method="GET",route="GET /api/payments/{id}",status="404"} 1`,
		`paygate_http_request_duration_seconds_bucket{route="GET /api/payments"`,
		`paygate_webhook_events_total{outcome="processed",reason=""} 1`,
		`paygate_webhook_events_total{outcome="refused",reason="Stripe-Signature has no v1 signature"} 1`,
		`paygate_callback_attempts_total{error_class="timeout",result="failure"} 1`,
		`paygate_callback_queue_depth 0`,
		`method="other"`,
		`process_cpu_seconds_total`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Off by default.
	plain := newEnv(t)
	if r := plain.do("GET", "/metrics", ""); r.Status != 404 {
		t.Fatalf("metrics served while off: %d", r.Status)
	}
}

// The whole flow, with distinctive secrets: none reaches a log line, a
// system log row, an error message or a list response.
func TestRedaction(t *testing.T) {
	t.Parallel()
	const (
		stripeKey  = "sk_test_DISTINCTstripeKEY4242"
		webhookSec = "whsec_DISTINCTwebhookSECRET5432"
		apiKey     = "DISTINCT-api-key-value-987654"
		wrongKey   = "DISTINCT-wrong-key-value-1111"
	)
	e, fake, _ := newFakeEnvWith(t, stripeKey, func(c *paygate.Config) {
		auth, _ := paygate.BearerKeys(apiKey)
		c.Auth, c.InsecureNoAuth = auth, false
		c.SystemLogs, c.Metrics = true, true
		c.WebhookSecrets = []string{webhookSec}
		c.Secrets = []string{apiKey, callbackSecret}
		c.CallbackURL = "https://merchant.example/hooks"
	})
	auth := func(extra ...string) []string { return append([]string{"Authorization", "Bearer " + apiKey}, extra...) }
	const clientSecret = "pi_redact1_secret_DISTINCTclientSECRET"
	fake.set(200, `{"id": "pi_redact1", "object": "payment_intent", "status": "requires_payment_method", "client_secret": "`+clientSecret+`"}`)
	var pi paygate.CreatedIntent
	e.do("POST", "/api/payments/payment-intent", `{"amount": 20}`, auth()...).must(t, 201, &pi)
	if pi.ClientSecret != clientSecret {
		t.Fatalf("client secret not returned to its creator: %+v", pi)
	}
	e.do("GET", "/api/payments/payment-intent/pi_redact1/session", "", auth()...).must(t, 200, nil)
	e.succeed(pi.PaymentID)
	fake.set(200, `{"id": "re_redact1", "object": "refund", "amount": 500, "status": "succeeded"}`)
	e.do("POST", "/api/payments/refund", `{"paymentIntentId": "pi_redact1", "amount": 5}`, auth()...).must(t, 201, nil)
	payload := stripeEventJSON("", "charge.refunded", "2023-10-16", chargeObject("ch_r", "pi_redact1", 2000, 500, pi.PaymentID))
	e.do("POST", "/api/webhooks/stripe", string(payload), "Stripe-Signature", signed(payload, webhookSec, time.Now())).must(t, 200, nil)
	e.do("POST", "/api/webhooks/stripe", string(payload), "Stripe-Signature", signed(payload, "whsec_wrong0000000000", time.Now()))
	e.do("GET", "/api/payments", "", "Authorization", "Bearer "+wrongKey)
	e.do("GET", "/api/payments", "", "Authorization", wrongKey)
	// Stripe refuses the key, echoing it as Stripe does.
	fake.set(401, stripeErr("invalid_request_error", "", "", "Invalid API Key provided: "+stripeKey))
	e.do("POST", "/api/payments/payment-intent", `{"amount": 20}`, auth()...)
	// A Stripe error whose message carries a client secret.
	fake.set(400, stripeErr("invalid_request_error", "", "", "No such client_secret "+clientSecret))
	errResp := e.do("POST", "/api/payments/payment-intent", `{"amount": 21}`, auth()...)

	var responses []string
	responses = append(responses, errResp.Raw)
	for _, path := range []string{"/api/payments", "/api/payments/" + pi.PaymentID, "/api/payments/history", "/api/webhooks/events",
		"/api/webhooks/config", "/api/webhooks/callbacks", "/api/health", "/api/logs/logs?limit=100"} {
		responses = append(responses, e.do("GET", path, "", auth()...).Raw)
	}
	if err := e.gw.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := e.store.ListSystemLogs(context.Background(), paygate.SystemLogFilter{PageParams: paygate.PageParams{Limit: 100}})
	if err != nil || rows.Total == 0 {
		t.Fatalf("system log rows: %v, %+v", err, rows)
	}
	rowText, _ := json.Marshal(rows.Items)
	haystacks := map[string]string{"log lines": e.logs.String(), "system log rows": string(rowText), "responses": strings.Join(responses, "\n"),
		"metrics": get(t, e.srv.URL+"/metrics")}
	for where, text := range haystacks {
		for _, secret := range []string{stripeKey, webhookSec, apiKey, wrongKey, callbackSecret, clientSecret, "DISTINCTclientSECRET"} {
			if strings.Contains(text, secret) {
				t.Errorf("%s contain %q", where, secret)
			}
		}
	}
	if !strings.Contains(e.logs.String(), "unknown API key") || rows.Total < 10 {
		t.Fatalf("the flow was not logged (%d rows)", rows.Total)
	}
}

// The prefilter never hides a credential from the pattern.
func TestRedactShapes(t *testing.T) {
	t.Parallel()
	gw, err := paygate.New(paygate.Config{Store: &nopStore{}, InsecureNoAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"sk_live_abc123", "rk_test_XYZ9", "whsec_abc+/=", "pi_123_secret_456", "Bearer tok-en", "BEARER tok", "bearer x"} {
		if got := paygate.RedactForTest(gw, "x "+s+" y"); strings.Contains(got, s) || !strings.Contains(got, "[redacted]") {
			t.Errorf("redact(%q) = %q", s, got)
		}
	}
	if got := paygate.RedactForTest(gw, "payment pay_123 created"); got != "payment pay_123 created" {
		t.Errorf("ordinary text changed: %q", got)
	}
}
