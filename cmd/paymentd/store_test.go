package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/internal/testenv"
	"github.com/numedapp/paygate/store"
)

func TestDatabaseKind(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, kind, path, err string }{
		{"", "sqlite", "paymentd.db", ""},
		{"sqlite:pay.db", "sqlite", "pay.db", ""},
		{"sqlite:///var/lib/paymentd/pay.db", "sqlite", "/var/lib/paymentd/pay.db", ""},
		{"./data/pay.db", "sqlite", "./data/pay.db", ""},
		{"/srv/pay.sqlite", "sqlite", "/srv/pay.sqlite", ""},
		{"postgres://u@h/db", "postgres", "", ""},
		{"postgresql://u@h/db", "postgres", "", ""},
		{"mysql://u@h/db", "", "", "must be a postgres:// URL"},
		{"sqlite:", "", "", "needs a file path"},
		{"sqlite:pay.db?mode=ro", "", "", "needs a file path"},
	} {
		kind, path, err := databaseKind(tc.url)
		if kind != tc.kind || path != tc.path || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("databaseKind(%q) = %q, %q, %v; want %q, %q, %q", tc.url, kind, path, err, tc.kind, tc.path, tc.err)
		}
	}
}

// With no DATABASE_URL paymentd serves on ./paymentd.db (nothing but Go
// needed), refuses a second process on the file, and its data moves to
// PostgreSQL with export and import, verified, and back.
func TestRunEmbeddedDefaultThenMoveToPostgres(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // not parallel: the working directory is the process's
	const apiKey = "embedded-api-key-0123456789"
	addr := freeAddr(t)
	env := map[string]string{
		"STRIPE_SECRET_KEY":     "sk_test_123",
		"STRIPE_API_BASE":       testenv.StripeMockURL(t),
		"PAYMENTD_ADDR":         addr,
		"PAYMENTD_API_KEYS":     apiKey,
		"PAYMENTD_LOG_FORMAT":   "json",
		"STRIPE_WEBHOOK_SECRET": "whsec_embeddedSecretValue0123",
		"CALLBACK_SECRET":       "whsec_c2VjcmV0LWtleS1mb3ItcGF5Z2F0ZS10ZXN0cy0xMjM0NTY=",
	}
	callbacks := make(chan string, 10)
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		callbacks <- string(body)
	}))
	defer merchant.Close()
	env["CALLBACK_URL"] = merchant.URL + "/paygate"
	getenv := func(k string) string { return env[k] }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &testenv.LockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, getenv, io.Discard, logs) }()
	base := "http://" + addr
	waitReady(t, base+"/api/health/ready", done)

	call := func(method, path, body string, want int, hdr ...string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+apiKey)
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, raw)
		}
		var out struct {
			Data map[string]any `json:"data"`
		}
		_ = json.Unmarshal(raw, &out)
		return out.Data
	}
	created := call("POST", "/api/payments/generate-url", `{"amount": "12.00", "productName": "Embedded"}`, 201, "Idempotency-Key", "order-emb-1")
	id := created["id"].(string)
	event := fmt.Sprintf(`{"id": "evt_emb1", "object": "event", "api_version": "2023-10-16", "created": %d, "type": "checkout.session.completed",
		"data": {"object": {"id": "cs_test_emb", "object": "checkout.session", "payment_link": %q, "payment_intent": "pi_emb",
		"payment_status": "paid", "status": "complete", "amount_total": 1200, "currency": "usd", "metadata": {}}}}`, time.Now().Unix(), created["paymentLinkId"])
	sig := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: []byte(event), Secret: env["STRIPE_WEBHOOK_SECRET"]}).Header
	req, _ := http.NewRequest("POST", base+"/api/webhooks/stripe", strings.NewReader(event))
	req.Header.Set("Stripe-Signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("webhook: %v %v", err, resp)
	}
	resp.Body.Close()
	if got := call("GET", "/api/payments/"+id, "", 200); got["status"] != "succeeded" {
		t.Fatalf("after webhook: %v", got)
	}
	select {
	case body := <-callbacks:
		if !strings.Contains(body, id) {
			t.Fatalf("callback body %s", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no callback reached the merchant")
	}
	// The file belongs to the serving process: a second one is refused.
	if err := run(context.Background(), []string{"migrate"}, getenv, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second process on the file: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "paymentd.db")); err != nil {
		t.Fatalf("no ./paymentd.db: %v", err)
	}
	if !strings.Contains(logs.String(), `"store":"sqlite"`) {
		t.Fatalf("the log does not say which store: %s", logs.String())
	}

	// Move to PostgreSQL: export, import into a new database, verified.
	var out bytes.Buffer
	if err := run(context.Background(), []string{"export", "dump.jsonl"}, getenv, &out, io.Discard); err != nil {
		t.Fatalf("export: %v", err)
	}
	if !strings.Contains(out.String(), "payments=1") || !strings.Contains(out.String(), "webhook_events=1") {
		t.Fatalf("export said %q", out.String())
	}
	pgURL := testenv.SchemaURL(t)
	pgenv := func(k string) string {
		if k == "DATABASE_URL" {
			return pgURL
		}
		return env[k]
	}
	out.Reset()
	if err := run(context.Background(), []string{"import", "dump.jsonl"}, pgenv, &out, io.Discard); err != nil {
		t.Fatalf("import: %v", err)
	}
	if !strings.Contains(out.String(), "imported into postgres, verified") || !strings.Contains(out.String(), "payments=1 ") || !strings.Contains(out.String(), "idempotency_keys=1") {
		t.Fatalf("import said %q", out.String())
	}
	var histories int
	if _, err := fmt.Sscanf(out.String()[strings.Index(out.String(), "payment_history="):], "payment_history=%d", &histories); err != nil || histories == 0 {
		t.Fatalf("import said %q", out.String())
	}
	if err := run(context.Background(), []string{"import", "dump.jsonl"}, pgenv, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("import into a non-empty database: %v", err)
	}
	pgctx := context.Background()
	pool, err := pgxpool.New(pgctx, pgURL) // its search_path is the import's schema
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	pg := store.New(pool)
	p, err := pg.GetPayment(pgctx, id)
	if err != nil || p.Status != paygate.StatusSucceeded {
		t.Fatalf("payment on PostgreSQL: %+v %v", p, err)
	}
	if q, err := pg.GetPaymentByStripeID(pgctx, "pi_emb"); err != nil || q.ID != id {
		t.Fatalf("Stripe ids on PostgreSQL: %v", err)
	}
	ev, err := pg.GetWebhookEvent(pgctx, "evt_emb1")
	if err != nil || string(ev.Payload) != event {
		t.Fatalf("event payload on PostgreSQL: %v\n%s", err, ev.Payload)
	}
	// New rows get new ids after the imported ones.
	if _, err := pg.UpdatePayment(pgctx, id, func(p *paygate.Payment) ([]paygate.HistoryEntry, error) {
		return []paygate.HistoryEntry{{PaymentID: p.ID, EventType: paygate.HistoryStatusChanged, Source: paygate.SourceAPI, CreatedAt: time.Now()}}, nil
	}); err != nil {
		t.Fatalf("history after import: %v", err)
	}

	// And back: a PostgreSQL export loads into a new SQLite file.
	if err := run(context.Background(), []string{"export", "pg.jsonl"}, pgenv, io.Discard, io.Discard); err != nil {
		t.Fatalf("export from PostgreSQL: %v", err)
	}
	back := func(k string) string {
		if k == "DATABASE_URL" {
			return "sqlite:back.db"
		}
		return env[k]
	}
	out.Reset()
	if err := run(context.Background(), []string{"import", "pg.jsonl"}, back, &out, io.Discard); err != nil {
		t.Fatalf("import into SQLite: %v", err)
	}
	if !strings.Contains(out.String(), "imported into sqlite, verified") || !strings.Contains(out.String(), fmt.Sprintf("payment_history=%d ", histories+1)) {
		t.Fatalf("import said %q", out.String())
	}
}

// paymentd dev needs nothing installed: a throwaway SQLite file, removed on
// exit, and the sandbox, whose webhooks reach it.
func TestDevOnThrowawaySQLite(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &testenv.LockedBuffer{}
	done := make(chan error, 1)
	env := map[string]string{"PAYMENTD_ADDR": addr, "PAYMENTD_LOG_FORMAT": "json"}
	go func() { done <- run(ctx, []string{"dev"}, func(k string) string { return env[k] }, io.Discard, logs) }()
	waitReady(t, "http://"+addr+"/api/health/ready", done)
	resp, err := http.Post("http://"+addr+"/api/payments/payment-intent", "application/json", strings.NewReader(`{"amount": "5.00"}`))
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("create on dev: %v %v", err, resp)
	}
	var created struct {
		Data struct{ PaymentIntentID string } `json:"data"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	// dev says where things are: the sandbox and the callbacks it receives.
	urlAfter := func(label string) string {
		for _, line := range strings.Split(logs.String(), "\n") {
			if f := strings.Fields(line); strings.Contains(line, label) && len(f) > 0 {
				for _, w := range f {
					if strings.HasPrefix(w, "http://") {
						return w
					}
				}
			}
		}
		t.Fatalf("dev did not print %q:\n%s", label, logs.String())
		return ""
	}
	sandboxURL := strings.TrimSuffix(urlAfter("sandbox's dashboard"), "/_sandbox/dashboard")
	callbacksURL := urlAfter("callbacks received")
	// The customer pays on the sandbox (the Payment Element stand-in's call).
	req, _ := http.NewRequest("POST", sandboxURL+"/v1/payment_intents/"+created.Data.PaymentIntentID+"/confirm",
		strings.NewReader("payment_method=pm_card_visa"))
	req.Header.Set("Authorization", "Bearer sk_test_paymentdDev")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("confirm on the sandbox: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	// Its callback reaches dev's own receiver, verified.
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := http.Get(callbacksURL + "callbacks.json")
		if err != nil {
			t.Fatal(err)
		}
		var got []struct{ Action, Verified string }
		_ = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if len(got) > 0 && got[0].Verified != "" {
			t.Fatalf("dev's receiver refused a callback: %+v", got[0])
		}
		if len(got) > 0 && got[0].Action == "payment_succeeded" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no payment_succeeded callback at dev's receiver: %+v", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if resp, err := http.Get(callbacksURL); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the callbacks page: %v %v", err, resp)
	} else {
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(page), "payment_succeeded") || !strings.Contains(string(page), "✔ verified") {
			t.Fatalf("the callbacks page does not show it:\n%s", page)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/api/webhooks/events")
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Data struct{ Total int } `json:"data"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if page.Data.Total > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no sandbox webhook reached paymentd dev")
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("dev: %v", err)
	}
	var path string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"database opened"`) {
			var l struct{ Database string }
			_ = json.Unmarshal([]byte(line), &l)
			path = l.Database
		}
	}
	if !strings.HasSuffix(path, "paymentd.db") {
		t.Fatalf("dev did not say which database: %s", logs.String())
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the throwaway database %s is still there: %v", path, err)
	}
}
