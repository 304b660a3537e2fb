package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/numedapp/paygate/callback"
	"github.com/numedapp/paygate/internal/testenv"
	"github.com/numedapp/paygate/internal/testsrv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// The example, as written, delivers a callback: a payment made through its
// API, Stripe's webhook, and the signed callback at the merchant's URL.
func TestMountDeliversCallback(t *testing.T) {
	const apiKey = "mount-example-key-0123456789"
	env := map[string]string{
		"DATABASE_URL":          testenv.SchemaURL(t),
		"STRIPE_SECRET_KEY":     testsrv.StripeMockKey,
		"STRIPE_API_BASE":       testenv.StripeMockURL(t),
		"API_KEY":               apiKey,
		"STRIPE_WEBHOOK_SECRET": "whsec_mountExample0123456789",
		"CALLBACK_SECRET":       "whsec_c2VjcmV0LWtleS1mb3ItcGF5Z2F0ZS10ZXN0cy0xMjM0NTY=",
	}
	got := make(chan string, 4)
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := callback.Verify(env["CALLBACK_SECRET"], r.Header, body); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		got <- string(body)
	}))
	defer merchant.Close()
	env["CALLBACK_URL"] = merchant.URL + "/paygate"

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, addr) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/api/health/live")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the example never listened")
		}
		time.Sleep(50 * time.Millisecond)
	}

	req, _ := http.NewRequest("POST", base+"/api/payments/payment-intent", strings.NewReader(`{"amount": "12.00"}`))
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	created, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, created)
	}
	var payID string
	if i := strings.Index(string(created), `"paymentId":"`); i >= 0 {
		payID = strings.SplitN(string(created)[i+len(`"paymentId":"`):], `"`, 2)[0]
	}
	event := fmt.Sprintf(`{"id": "evt_mount1", "object": "event", "api_version": "2023-10-16", "created": %d, "type": "payment_intent.succeeded",
		"data": {"object": {"id": "pi_mount1", "object": "payment_intent", "status": "succeeded", "amount": 1200, "currency": "usd",
		"latest_charge": "ch_mount1", "metadata": {"paygate_payment_id": %q}}}}`, time.Now().Unix(), payID)
	sig := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: []byte(event), Secret: env["STRIPE_WEBHOOK_SECRET"]}).Header
	req, _ = http.NewRequest("POST", base+"/api/webhooks/stripe", strings.NewReader(event))
	req.Header.Set("Stripe-Signature", sig)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("webhook: %v %v", err, resp)
	}
	resp.Body.Close()
	select {
	case body := <-got:
		if !strings.Contains(body, `"action":"payment_succeeded"`) || !strings.Contains(body, payID) {
			t.Fatalf("callback: %s", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no callback reached the merchant")
	}
}
