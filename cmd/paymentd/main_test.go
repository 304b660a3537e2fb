package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/numedapp/paygate/callback"
	"github.com/numedapp/paygate/internal/apitest"
	"github.com/numedapp/paygate/internal/testenv"
	"github.com/numedapp/paygate/internal/testsrv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestRunEndToEnd(t *testing.T) {
	const apiKey = "e2e-api-key-0123456789"
	const secretKey = testsrv.StripeMockKey
	addr := freeAddr(t)
	env := map[string]string{
		"DATABASE_URL":          testenv.SchemaURL(t),
		"STRIPE_SECRET_KEY":     secretKey,
		"STRIPE_API_BASE":       testenv.StripeMockURL(t),
		"PAYMENTD_ADDR":         addr,
		"PAYMENTD_API_KEYS":     "old-key-abcdefghijklmnop, " + apiKey,
		"PAYMENTD_LOG_FORMAT":   "json",
		"STRIPE_WEBHOOK_SECRET": "whsec_e2eSecretValue0123456789",
		"CALLBACK_SECRET":       "whsec_c2VjcmV0LWtleS1mb3ItcGF5Z2F0ZS10ZXN0cy0xMjM0NTY=",
	}
	// The merchant's endpoint: verifies each callback with callback.Verify.
	callbacks := make(chan string, 10)
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := callback.Verify(env["CALLBACK_SECRET"], r.Header, body); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		callbacks <- string(body)
	}))
	defer merchant.Close()
	env["CALLBACK_URL"] = merchant.URL + "/paygate"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &testenv.LockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return env[k] }, io.Discard, logs) }()

	base := "http://" + addr
	waitReady(t, base+"/api/health/ready", done)

	call := func(method, path, body string, wantStatus int) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+apiKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var env struct {
			Data map[string]any `json:"data"`
		}
		raw, _ := io.ReadAll(resp.Body)
		if err := apitest.CheckResponse(req, resp.StatusCode, resp.Header, raw); err != nil {
			t.Error(err)
		}
		if resp.StatusCode < 300 {
			if err := apitest.CheckRequest(req, []byte(body)); err != nil {
				t.Error(err)
			}
		}
		if resp.StatusCode != wantStatus {
			t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, wantStatus, raw)
		}
		if err := json.Unmarshal(raw, &env); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
		return env.Data
	}

	created := call("POST", "/api/payments/generate-url", `{"amount": "25.50", "productName": "E2E", "metadata": {"orderId": "e2e-1"}}`, 201)
	id, _ := created["id"].(string)
	if !strings.HasPrefix(id, "pay_") || created["paymentUrl"] == "" || created["amount"] != float64(2550) {
		t.Fatalf("created = %v", created)
	}
	got := call("GET", "/api/payments/"+id, "", 200)
	if got["id"] != id || len(got["history"].([]any)) != 1 {
		t.Fatalf("get = %v", got)
	}
	list := call("GET", "/api/payments?status=pending", "", 200)
	if list["total"] != float64(1) {
		t.Fatalf("list = %v", list)
	}
	hist := call("GET", "/api/payments/history?paymentId="+id, "", 200)
	items := hist["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["eventType"] != "payment_created" {
		t.Fatalf("history = %v", hist)
	}
	// Stripe reports the payment link's checkout as paid.
	event := fmt.Sprintf(`{"id": "evt_e2e1", "object": "event", "api_version": "2023-10-16", "created": %d, "type": "checkout.session.completed",
		"data": {"object": {"id": "cs_test_e2e", "object": "checkout.session", "payment_link": %q, "payment_intent": "pi_e2e",
		"payment_status": "paid", "status": "complete", "amount_total": 2550, "currency": "usd", "metadata": {}}}}`, time.Now().Unix(), created["paymentLinkId"])
	sig := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: []byte(event), Secret: env["STRIPE_WEBHOOK_SECRET"]}).Header
	req, _ := http.NewRequest("POST", base+"/api/webhooks/stripe", strings.NewReader(event))
	req.Header.Set("Stripe-Signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("webhook: %v %v", err, resp)
	}
	resp.Body.Close()
	if got := call("GET", "/api/payments/"+id, "", 200); got["status"] != "succeeded" || got["paymentIntentId"] != "pi_e2e" {
		t.Fatalf("after webhook: %v", got)
	}
	select {
	case body := <-callbacks:
		if !strings.Contains(body, `"action":"checkout_completed"`) || !strings.Contains(body, id) {
			t.Fatalf("callback body %s", body)
		}
		if err := apitest.CheckSchema("CallbackPayload", []byte(body)); err != nil {
			t.Errorf("callback: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no callback reached the merchant")
	}

	// Metrics and the system log (written in the background) see it all.
	mresp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mbody, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	if !strings.Contains(string(mbody), `paygate_webhook_events_total{outcome="processed",reason=""} 1`) {
		t.Fatalf("metrics: %.2000s", mbody)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		logs := call("GET", "/api/logs/logs?source=payment", "", 200)
		if logs["total"].(float64) >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no payment rows in the system log: %v", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}

	health := call("GET", "/api/health", "", 200)
	if db := health["checks"].(map[string]any)["database"].(map[string]any); db["status"] != "up" {
		t.Fatalf("health = %v", health)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v after cancel", err)
		}
	case <-time.After(35 * time.Second):
		t.Fatal("run did not stop after cancel")
	}
	// One reconciliation pass through the subcommand (stripe-mock answers).
	var rout bytes.Buffer
	if err := run(context.Background(), []string{"reconcile"}, func(k string) string { return env[k] }, &rout, io.Discard); err != nil {
		t.Fatalf("paymentd reconcile: %v", err)
	}
	if !strings.HasPrefix(rout.String(), "reconciled: events ") {
		t.Fatalf("reconcile output %q", rout.String())
	}
	// The webhook endpoint check (stripe-mock's endpoint is not ours).
	rout.Reset()
	if err := run(context.Background(), []string{"reconcile", "-check-endpoint"}, func(k string) string { return env[k] }, &rout, io.Discard); err != nil {
		t.Fatalf("paymentd reconcile -check-endpoint: %v", err)
	}
	if !strings.Contains(rout.String(), "webhook endpoint: needs attention") || !strings.Contains(rout.String(), "no webhook endpoint for a URL ending in /api/webhooks/stripe") {
		t.Fatalf("check-endpoint output %q", rout.String())
	}

	out := logs.String()
	for _, secret := range []string{apiKey, secretKey, "old-key-abcdefghijklmnop", env["STRIPE_WEBHOOK_SECRET"], env["CALLBACK_SECRET"]} {
		if strings.Contains(out, secret) {
			t.Fatalf("a secret reached the log: %q", secret)
		}
	}
	if !strings.Contains(out, "paymentd listening") || !strings.Contains(out, "stopped") {
		t.Fatalf("logs lack start/stop lines:\n%s", out)
	}
}

func waitReady(t *testing.T, url string, done chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("run exited early: %v", err)
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("service never became ready")
}

func TestRunConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"sqlite in memory", map[string]string{"DATABASE_URL": "sqlite::memory:"}, nil, "needs a file path"},
		{"not postgres", map[string]string{"DATABASE_URL": "mysql://x"}, nil, "postgres://"},
		{"no keys", map[string]string{"DATABASE_URL": "postgres://u:hunter2secret@127.0.0.1:1/db"}, nil, "PAYMENTD_API_KEYS is required"},
		{"bad log format", map[string]string{"DATABASE_URL": "postgres://x@h/db", "PAYMENTD_INSECURE_NO_AUTH": "1", "PAYMENTD_LOG_FORMAT": "xml"}, nil, "PAYMENTD_LOG_FORMAT"},
		{"unknown command", map[string]string{}, []string{"frobnicate"}, "unknown command"},
		{"bad reconcile interval", map[string]string{"DATABASE_URL": "postgres://x@h/db", "PAYMENTD_INSECURE_NO_AUTH": "1", "PAYMENTD_RECONCILE_INTERVAL": "often"}, nil, "PAYMENTD_RECONCILE_INTERVAL"},
		{"callback without secret", map[string]string{"DATABASE_URL": "postgres://x@h/db", "PAYMENTD_INSECURE_NO_AUTH": "1", "CALLBACK_URL": "https://m.example/cb"}, nil, "CALLBACK_SECRET is required"},
		{"short callback secret", map[string]string{"DATABASE_URL": "postgres://x@h/db", "PAYMENTD_INSECURE_NO_AUTH": "1", "CALLBACK_URL": "https://m.example/cb", "CALLBACK_SECRET": "whsec_c2hvcnQ="}, nil, "CALLBACK_SECRET must be"},
		{"bad flag", map[string]string{}, []string{"serve", "-nope"}, "flag provided but not defined"},
		// Everything is validated before the database is touched (this one is
		// unreachable), and errors name the variable, not the library's field.
		{"bad secret key", map[string]string{"DATABASE_URL": "postgres://u:hunter2secret@127.0.0.1:1/db", "PAYMENTD_INSECURE_NO_AUTH": "1", "STRIPE_SECRET_KEY": "pk_test_oops"}, nil, "STRIPE_SECRET_KEY must be"},
		{"bad addr", map[string]string{"DATABASE_URL": "postgres://u@127.0.0.1:1/db", "PAYMENTD_INSECURE_NO_AUTH": "1", "PAYMENTD_ADDR": "localhost"}, nil, "PAYMENTD_ADDR must be"},
		{"bad port", map[string]string{"DATABASE_URL": "postgres://u@127.0.0.1:1/db", "PAYMENTD_INSECURE_NO_AUTH": "1", "PAYMENTD_ADDR": "99999"}, nil, "PAYMENTD_ADDR: port"},
		{"short api key", map[string]string{"DATABASE_URL": "postgres://u@127.0.0.1:1/db", "PAYMENTD_API_KEYS": "short"}, nil, "PAYMENTD_API_KEYS must be"},
		{"bad currency", map[string]string{"DATABASE_URL": "postgres://u@127.0.0.1:1/db", "PAYMENTD_INSECURE_NO_AUTH": "1", "PAYMENTD_CURRENCY": "xxx"}, nil, "PAYMENTD_CURRENCY"},
		{"bad webhook secret", map[string]string{"DATABASE_URL": "postgres://u@127.0.0.1:1/db", "PAYMENTD_INSECURE_NO_AUTH": "1", "STRIPE_WEBHOOK_SECRET": "secret"}, nil, "STRIPE_WEBHOOK_SECRET"},
		{"bad publishable key", map[string]string{"DATABASE_URL": "postgres://u@127.0.0.1:1/db", "PAYMENTD_INSECURE_NO_AUTH": "1", "STRIPE_PUBLISHABLE_KEY": "sk_test_123abc"}, nil, "STRIPE_PUBLISHABLE_KEY"},
		{"bad api base", map[string]string{"DATABASE_URL": "postgres://u@127.0.0.1:1/db", "PAYMENTD_INSECURE_NO_AUTH": "1", "STRIPE_API_BASE": "localhost:12111"}, nil, "STRIPE_API_BASE"},
		{"reconcile without key", map[string]string{"DATABASE_URL": "postgres://u@127.0.0.1:1/db"}, []string{"reconcile"}, "STRIPE_SECRET_KEY is required"},
		{"reconcile bad key", map[string]string{"DATABASE_URL": "postgres://u@127.0.0.1:1/db", "STRIPE_SECRET_KEY": "whatever"}, []string{"reconcile"}, "STRIPE_SECRET_KEY must be"},
		{"unreachable db", map[string]string{"DATABASE_URL": "postgres://u:hunter2secret@127.0.0.1:1/db?connect_timeout=2", "PAYMENTD_INSECURE_NO_AUTH": "1"}, nil, "database unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := run(context.Background(), tc.args, func(k string) string { return tc.env[k] }, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run = %v, want error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2secret") {
				t.Fatalf("error echoes the database password: %v", err)
			}
		})
	}
}

// migrate and reconcile read only what they use: neither needs API keys
// (here the database is unreachable, so getting that far proves it).
func TestSubcommandsNeedOnlyTheirConfiguration(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"migrate"}, {"reconcile"}} {
		env := map[string]string{"DATABASE_URL": "postgres://u@127.0.0.1:1/db?connect_timeout=2", "STRIPE_SECRET_KEY": "sk_test_123abc",
			"CALLBACK_URL": "https://m.example/cb"} // CALLBACK_SECRET is serve's: reconcile only queues
		err := run(context.Background(), args, func(k string) string { return env[k] }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "database unreachable") {
			t.Errorf("%v: %v, want it to reach the database", args, err)
		}
	}
}

// -h, -help, help and a subcommand's -h print the usage, with the
// subcommands and variables, and succeed.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-h"}, {"-help"}, {"help"}, {"serve", "-h"}, {"reconcile", "-h"}, {"migrate", "--help"}} {
		var out bytes.Buffer
		if err := run(context.Background(), args, func(string) string { return "" }, &out, io.Discard); err != nil {
			t.Errorf("%v: %v", args, err)
		}
		for _, want := range []string{"paymentd migrate", "paymentd reconcile", "-check-endpoint", "DATABASE_URL", "PAYMENTD_API_KEYS", "STRIPE_SECRET_KEY"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%v: usage lacks %q:\n%s", args, want, out.String())
			}
		}
	}
}

// With PAYMENTD_LOG_FORMAT=json every line serve prints is JSON, from the
// migrations to the last line after a drain (issue 8 #10); a bare port is
// a listen address.
func TestServeJSONLogsOnly(t *testing.T) {
	_, port, _ := net.SplitHostPort(freeAddr(t))
	env := map[string]string{
		"DATABASE_URL":              testenv.SchemaURL(t),
		"PAYMENTD_ADDR":             port,
		"PAYMENTD_LOG_FORMAT":       "json",
		"PAYMENTD_INSECURE_NO_AUTH": "1",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr testenv.LockedBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return env[k] }, &stdout, &stderr) }()
	waitReady(t, "http://127.0.0.1:"+port+"/api/health/live", done)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()+stderr.String()), "\n")
	msgs := map[string]bool{}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Errorf("not JSON: %q", l)
		}
		msg, _ := m["msg"].(string)
		msgs[msg] = true
	}
	for _, want := range []string{"migrations applied", "paymentd listening", "paygate: running", "stopped"} {
		if !msgs[want] {
			t.Errorf("no %q line in:\n%s", want, strings.Join(lines, "\n"))
		}
	}
	// A failure after the configuration was read is a JSON line too.
	var errOut testenv.LockedBuffer
	env["DATABASE_URL"] = "postgres://u@127.0.0.1:1/db?connect_timeout=2"
	if err := run(context.Background(), nil, func(k string) string { return env[k] }, io.Discard, &errOut); err == nil {
		t.Fatal("unreachable database: no error")
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(errOut.String())), &m); err != nil || m["level"] != "ERROR" {
		t.Fatalf("error output is not one JSON line: %q", errOut.String())
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "paymentd ") {
		t.Fatalf("version output %q", out.String())
	}
}

// TestLinksOnlyTheStripeResourcesItCalls keeps stripe-go's client.API (a
// client for each of some 130 resources) out of paymentd: linked in, it
// made the binary 3.6 MB larger and its resident code 1–2 MB more, against
// the 35 MB peak RSS budget (docs/benchmarks.md).
func TestLinksOnlyTheStripeResourcesItCalls(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	var stripe []string
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/stripe/stripe-go/v76") {
			stripe = append(stripe, p)
		}
	}
	if len(stripe) == 0 || len(stripe) > 15 {
		t.Errorf("paymentd links %d stripe-go packages, want 1 to 15 (the resources paygate calls):\n%s", len(stripe), strings.Join(stripe, "\n"))
	}
	for _, p := range stripe {
		if p == "github.com/stripe/stripe-go/v76/client" {
			t.Errorf("paymentd links %s, every resource's client; use the resource packages paygate calls", p)
		}
	}
}
