package paygate_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/callback"
	"github.com/numedapp/paygate/internal/apitest"
)

const callbackSecret = "whsec_c2VjcmV0LWtleS1mb3ItcGF5Z2F0ZS10ZXN0cy0xMjM0NTY="

type merchant struct {
	*httptest.Server
	mu       sync.Mutex
	bodies   [][]byte
	ids      []string
	verified int
}

func newMerchant(t *testing.T) *merchant {
	m := &merchant{}
	wh, _ := standardwebhooks.NewWebhook(callbackSecret)
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m.mu.Lock()
		defer m.mu.Unlock()
		if wh.Verify(body, r.Header) == nil && callback.Verify(callbackSecret, r.Header, body) == nil {
			m.verified++
		}
		if err := apitest.CheckSchema("CallbackPayload", body); err != nil {
			t.Errorf("callback: %v\n%s", err, body)
		}
		m.bodies = append(m.bodies, body)
		m.ids = append(m.ids, r.Header.Get("webhook-id"))
	}))
	t.Cleanup(m.Close)
	return m
}

func newCallbackEnv(t *testing.T, m *merchant) (*env, *callback.Engine) {
	e := newEnv(t, withWebhookSecrets(whsecNew), func(c *paygate.Config) { c.CallbackURL = m.URL + "/hooks/paygate" })
	eng, err := callback.New(callback.Config{Queue: e.store, Secrets: []string{callbackSecret}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return e, eng
}

func deliver(t *testing.T, eng *callback.Engine, want int) {
	t.Helper()
	if n, err := eng.DeliverDue(context.Background(), 100); err != nil || n != want {
		t.Fatalf("DeliverDue = %d, %v; want %d", n, err, want)
	}
}

// The guide's example callback, field for field.
func TestCallbackPayloadMatchesGuide(t *testing.T) {
	t.Parallel()
	m := newMerchant(t)
	e, eng := newCallbackEnv(t, m)
	p := e.webhookPayment(paygate.MethodCheckout, 500, func(p *paygate.Payment) { p.Metadata = map[string]string{"orderId": "1234"} })
	obj := sessionObject(p.CheckoutSessionID, "pi_guide"+p.ID[6:], "", "paid", "complete", 500, p.ID)
	obj["metadata"] = map[string]any{"paygate_payment_id": p.ID, "orderId": "1234"}
	e.send(stripeEventJSON("evt_guide1", "checkout.session.completed", "2023-10-16", obj)).must(t, 200, nil)
	deliver(t, eng, 1)

	var got map[string]any
	if err := json.Unmarshal(m.bodies[0], &got); err != nil {
		t.Fatal(err)
	}
	guide := `{"eventId":"evt_xxx","eventType":"checkout.session.completed","action":"checkout_completed","message":"Checkout session completed","data":{"sessionId":"cs_xxx","paymentIntentId":"pi_xxx","amountTotal":500,"currency":"usd","paymentStatus":"paid","metadata":{"orderId":"1234"}}}`
	var want map[string]any
	_ = json.Unmarshal([]byte(guide), &want)
	want["eventId"] = "evt_guide1"
	wd := want["data"].(map[string]any)
	wd["sessionId"], wd["paymentIntentId"] = p.CheckoutSessionID, "pi_guide"+p.ID[6:]
	for k, v := range want {
		if k == "data" {
			continue
		}
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	gd := got["data"].(map[string]any)
	for k, v := range wd {
		if k == "metadata" {
			if gm, _ := gd[k].(map[string]any); len(gm) != 1 || gm["orderId"] != "1234" {
				t.Errorf("data.metadata = %v", gd[k])
			}
			continue
		}
		if gd[k] != v {
			t.Errorf("data.%s = %v, want %v", k, gd[k], v)
		}
	}
	// Our additions.
	if got["paymentId"] != p.ID || got["sequence"] != float64(1) || gd["paymentId"] != p.ID || gd["status"] != "succeeded" || gd["amount"] != float64(500) {
		t.Errorf("additions: %s", m.bodies[0])
	}
	if ts, err := time.Parse(time.RFC3339, got["timestamp"].(string)); err != nil || time.Since(ts) > time.Minute {
		t.Errorf("timestamp %v", got["timestamp"])
	}
	if m.verified != 1 {
		t.Fatal("the callback's signature did not verify with the reference library and our Verify")
	}
}

// Webhook → outbox → engine → merchant; the log; a manual retry resends with
// the same webhook-id; sequences grow per payment; duplicates queue nothing.
func TestCallbackFlowAndRetry(t *testing.T) {
	t.Parallel()
	m := newMerchant(t)
	e, eng := newCallbackEnv(t, m)
	p := e.webhookPayment(paygate.MethodIntent, 2000)
	succeeded := stripeEventJSON("evt_flow_ok", "payment_intent.succeeded", "2023-10-16", piObject(p.PaymentIntentID, "succeeded", 2000, p.ID, "ch_flow"))
	e.send(succeeded).must(t, 200, nil)
	e.send(succeeded).must(t, 200, nil)                                                                                                                              // a resend queues nothing
	e.send(stripeEventJSON("evt_flow_late", "payment_intent.processing", "2023-10-16", piObject(p.PaymentIntentID, "processing", 2000, p.ID, ""))).must(t, 200, nil) // no change, no callback
	e.send(stripeEventJSON("evt_flow_refund", "charge.refunded", "2023-10-16", chargeObject("ch_flow", p.PaymentIntentID, 2000, 700, p.ID))).must(t, 200, nil)

	var h paygate.Health
	e.do("GET", "/api/health", "").must(t, 200, &h)
	if !h.Checks.Callback.Configured || h.Checks.Callback.QueueDepth != 2 {
		t.Fatalf("health callback = %+v", h.Checks.Callback)
	}
	deliver(t, eng, 1) // one payment's callbacks go out one at a time, in sequence
	deliver(t, eng, 1)
	if len(m.bodies) != 2 || m.verified != 2 {
		t.Fatalf("merchant got %d callbacks (%d verified)", len(m.bodies), m.verified)
	}
	type body struct {
		EventID  string         `json:"eventId"`
		Action   string         `json:"action"`
		Sequence int64          `json:"sequence"`
		Data     map[string]any `json:"data"`
	}
	var bs []body
	for _, raw := range m.bodies {
		var b body
		_ = json.Unmarshal(raw, &b)
		bs = append(bs, b)
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].Sequence < bs[j].Sequence })
	if bs[0].Action != "payment_succeeded" || bs[0].Sequence != 1 || bs[1].Action != "refund_created" || bs[1].Sequence != 2 ||
		bs[1].Data["amountRefunded"] != float64(700) || bs[1].Data["status"] != "partially_refunded" {
		t.Fatalf("callbacks = %+v", bs)
	}

	var logs paygate.Page[paygate.CallbackAttempt]
	e.do("GET", "/api/webhooks/callbacks?webhookEventId=evt_flow_ok&success=true", "").must(t, 200, &logs)
	if logs.Total != 1 || logs.Items[0].PaymentID != p.ID || logs.Items[0].StatusCode != 200 || logs.Items[0].Attempt != 1 {
		t.Fatalf("callback log = %+v", logs)
	}
	cbID := logs.Items[0].CallbackID
	var retried paygate.Callback
	r := e.do("POST", "/api/webhooks/callbacks/"+cbID+"/retry", "").must(t, 202, &retried)
	if retried.ID != cbID || retried.Status != paygate.CallbackPending || r.Message != "Callback queued for retry" {
		t.Fatalf("retry = %+v", retried)
	}
	deliver(t, eng, 1)
	first := -1
	for i, id := range m.ids {
		if id == cbID {
			if first >= 0 && string(m.bodies[i]) != string(m.bodies[first]) {
				t.Fatal("the resend's body differs")
			}
			first = i
		}
	}
	if n := countOf(m.ids, cbID); n != 2 {
		t.Fatalf("webhook-id %s seen %d times, want 2", cbID, n)
	}
	e.do("GET", "/api/webhooks/callbacks?paymentId="+p.ID, "").must(t, 200, &logs)
	if logs.Total != 3 {
		t.Fatalf("log rows for the payment = %d", logs.Total)
	}
	for _, bad := range []struct{ path, param string }{
		{"/api/webhooks/callbacks?success=maybe", "success"},
		{"/api/webhooks/callbacks?webhookEventId=x", "webhookEventId"},
		{"/api/webhooks/callbacks?paymentId=x", "paymentId"},
		{"/api/webhooks/callbacks?limit=0", "limit"},
	} {
		if r := e.do("GET", bad.path, ""); r.Status != 400 || r.param() != bad.param {
			t.Errorf("%s: %s", bad.path, r.Raw)
		}
	}
	if r := e.do("POST", "/api/webhooks/callbacks/nope/retry", ""); r.Status != 400 || r.param() != "id" {
		t.Errorf("malformed retry id: %s", r.Raw)
	}
	if r := e.do("POST", "/api/webhooks/callbacks/cb_unknown0/retry", ""); r.Status != 404 {
		t.Errorf("unknown retry id: %s", r.Raw)
	}
}

func countOf(xs []string, x string) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}

// With no callback URL nothing is queued.
func TestNoCallbackURLQueuesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookSecrets(whsecNew))
	p := e.webhookPayment(paygate.MethodIntent, 1000)
	e.send(stripeEventJSON("", "payment_intent.succeeded", "2023-10-16", piObject(p.PaymentIntentID, "succeeded", 1000, p.ID, "ch_n"))).must(t, 200, nil)
	n, err := e.store.CallbackQueueDepth(context.Background())
	var h paygate.Health
	e.do("GET", "/api/health", "").must(t, 200, &h)
	if err != nil || n != 0 || h.Checks.Callback.Configured {
		t.Fatalf("queued %d (%v), health %+v", n, err, h.Checks.Callback)
	}
}

// A callback queued by one replica wakes an engine elsewhere through
// LISTEN/NOTIFY, long before its next poll.
func TestListenWakesEngine(t *testing.T) {
	t.Parallel()
	m := newMerchant(t)
	e := newEnv(t, withWebhookSecrets(whsecNew), func(c *paygate.Config) { c.CallbackURL = m.URL + "/hooks" })
	eng, err := callback.New(callback.Config{Queue: e.store, Secrets: []string{callbackSecret}, PollInterval: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = e.store.ListenCallbacks(ctx, eng.Wake) }()
	go func() { _ = eng.Run(ctx) }()
	time.Sleep(200 * time.Millisecond) // the engine's first poll found nothing; LISTEN is up
	p := e.webhookPayment(paygate.MethodIntent, 1000)
	e.send(stripeEventJSON("", "payment_intent.succeeded", "2023-10-16", piObject(p.PaymentIntentID, "succeeded", 1000, p.ID, "ch_w"))).must(t, 200, nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		m.mu.Lock()
		n := len(m.bodies)
		m.mu.Unlock()
		if n == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the engine was not woken by NOTIFY")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
