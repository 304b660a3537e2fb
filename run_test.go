package paygate_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/numedapp/paygate"
)

// runGateway runs gw's background parts until the test ends, and fails
// the test if Run returns an error or does not return within 30 s of the
// end.
func runGateway(t testing.TB, gw *paygate.Gateway) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return within 30 s of its context ending")
		}
	})
}

// Run drains on cancel: a callback attempt in flight when ctx ends
// finishes, and its result is recorded, before Run returns.
func TestRunDrainsOnCancel(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}, 1), make(chan struct{})
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		w.WriteHeader(http.StatusNoContent)
	}))
	defer merchant.Close()
	e := newEnv(t, withWebhookSecrets(whsecNew), func(c *paygate.Config) {
		c.CallbackURL, c.CallbackSecrets = merchant.URL+"/hooks", []string{callbackSecret}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.gw.Run(ctx) }()

	p := e.webhookPayment(paygate.MethodIntent, 1000)
	e.send(stripeEventJSON("", "payment_intent.succeeded", "2023-10-16", piObject(p.PaymentIntentID, "succeeded", 1000, p.ID, "ch_d"))).must(t, 200, nil)
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the callback was not sent")
	}
	if err := e.gw.Run(ctx); !errors.Is(err, paygate.ErrRunning) { // Run is running: it sent the callback
		t.Fatalf("a second Run: %v", err)
	}
	var h paygate.Health
	e.do("GET", "/api/health", "").must(t, 200, &h)
	if !h.Checks.Callback.Configured || !h.Checks.Callback.Delivering {
		t.Fatalf("health while Run delivers: %+v", h.Checks.Callback)
	}
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) with an attempt in flight", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after the attempt finished")
	}
	ok := true
	page, err := e.gw.ListCallbacks(context.Background(), paygate.CallbackFilter{Success: &ok, PageParams: paygate.PageParams{Limit: 10}})
	if err != nil || page.Total != 1 || page.Items[0].StatusCode != http.StatusNoContent {
		t.Fatalf("attempt log after the drain: %+v %v", page, err)
	}
	if n, _ := e.store.CallbackQueueDepth(context.Background()); n != 0 {
		t.Fatalf("%d callbacks still pending after a successful attempt", n)
	}
	e.do("GET", "/api/health", "").must(t, 200, &h)
	if h.Checks.Callback.Delivering {
		t.Fatal("health says callbacks are delivered after Run returned")
	}
}

// Run refuses to start when callbacks would be queued but never signed.
func TestRunNeedsCallbackSecrets(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *paygate.Config) { c.CallbackURL = "https://merchant.example/cb" })
	err := e.gw.Run(context.Background())
	var pe *paygate.Error
	if !errors.As(err, &pe) || pe.Param != "CallbackSecrets" {
		t.Fatalf("Run = %v", err)
	}
	if _, err := paygate.New(paygate.Config{Store: e.store, InsecureNoAuth: true, CallbackSecrets: []string{"whsec_short"}}); err == nil {
		t.Fatal("New accepted a short callback secret")
	}
}

// GET /api/health reports checks.stripe.secretKey as a boolean, as the
// original guide does (issue 8 #10).
func TestHealthSecretKeyIsBoolean(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"sk_test_123abc", ""} {
		e, _, _ := newFakeEnv(t, key)
		r := e.do("GET", "/api/health", "")
		var h struct {
			Checks struct {
				Stripe map[string]json.RawMessage `json:"stripe"`
			} `json:"checks"`
		}
		if err := json.Unmarshal(r.Data, &h); err != nil {
			t.Fatal(err)
		}
		want := strconv.FormatBool(key != "")
		if got := string(h.Checks.Stripe["secretKey"]); got != want {
			t.Fatalf("key %q: secretKey = %s, want %s", key, got, want)
		}
	}
}
