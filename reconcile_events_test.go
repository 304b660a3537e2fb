package paygate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/internal/testenv"
)

// eventsStripe is a fake Stripe for reconciliation: GET /v1/events lists
// the events it holds the way Stripe does (newest first, limit,
// starting_after, created[gte], types[]); GET /v1/payment_intents/{id}
// answers with the PaymentIntent set for it (requires_payment_method by
// default); anything else is a 404.
type eventsStripe struct {
	mu       sync.Mutex
	events   []fakeEvent // in creation order
	intents  map[string]string
	intentGs map[string]int // GET count per PaymentIntent
	lists    int
	// block, when set, holds each events list request until it is closed;
	// entered receives a value as each such request arrives.
	block   chan struct{}
	entered chan struct{}
	// endpoints is the body of GET /v1/webhook_endpoints.
	endpoints string
}

type fakeEvent struct {
	id, typ string
	created int64
	payload []byte
}

// add records an event Stripe created at `at` and returns its payload.
func (f *eventsStripe) add(id, typ string, obj map[string]any, at time.Time) []byte {
	ev := map[string]any{"id": id, "object": "event", "api_version": "2023-10-16", "created": at.Unix(),
		"data": map[string]any{"object": obj}, "livemode": false, "pending_webhooks": 1, "type": typ}
	b, _ := json.Marshal(ev)
	f.mu.Lock()
	f.events = append(f.events, fakeEvent{id, typ, at.Unix(), b})
	f.mu.Unlock()
	return b
}

func (f *eventsStripe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Method == "GET" && r.URL.Path == "/v1/events" {
		f.mu.Lock()
		f.lists++
		block, entered := f.block, f.entered
		f.mu.Unlock()
		if block != nil {
			entered <- struct{}{}
			<-block
		}
		f.listEvents(w, r)
		return
	}
	if r.Method == "GET" && r.URL.Path == "/v1/webhook_endpoints" {
		f.mu.Lock()
		body := f.endpoints
		f.mu.Unlock()
		_, _ = io.WriteString(w, body)
		return
	}
	if id, ok := strings.CutPrefix(r.URL.Path, "/v1/payment_intents/"); ok && r.Method == "GET" {
		f.mu.Lock()
		if f.intentGs == nil {
			f.intentGs = map[string]int{}
		}
		f.intentGs[id]++
		body, ok := f.intents[id]
		f.mu.Unlock()
		if !ok {
			body = fmt.Sprintf(`{"id": %q, "object": "payment_intent", "status": "requires_payment_method", "amount": 1000, "currency": "usd"}`, id)
		}
		_, _ = io.WriteString(w, body)
		return
	}
	w.WriteHeader(404)
	_, _ = io.WriteString(w, stripeErr("invalid_request_error", "resource_missing", "", "No such route "+r.URL.Path))
}

func (f *eventsStripe) listEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit <= 0 || limit > 100 {
		limit = 10
	}
	gte, _ := strconv.ParseInt(q.Get("created[gte]"), 10, 64)
	var types []string
	for k, v := range q {
		if strings.HasPrefix(k, "types[") {
			types = append(types, v...)
		}
	}
	f.mu.Lock()
	all := slices.Clone(f.events)
	f.mu.Unlock()
	slices.Reverse(all) // newest first (stable for equal times: the later added first)
	slices.SortStableFunc(all, func(a, b fakeEvent) int { return int(b.created - a.created) })
	var match []fakeEvent
	for _, e := range all {
		if e.created >= gte && (len(types) == 0 || slices.Contains(types, e.typ)) {
			match = append(match, e)
		}
	}
	if after := q.Get("starting_after"); after != "" {
		i := slices.IndexFunc(match, func(e fakeEvent) bool { return e.id == after })
		match = match[i+1:]
	}
	more := len(match) > limit
	if more {
		match = match[:limit]
	}
	data := make([]json.RawMessage, len(match))
	for i, e := range match {
		data[i] = e.payload
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"object": "list", "url": "/v1/events", "has_more": more, "data": data})
}

// newReconcileEnv is a Gateway on the fake Stripe, with webhooks and (when
// m is not nil) callbacks to m.
func newReconcileEnv(t *testing.T, fake *eventsStripe, st testStore, m *merchant, opts ...envOpt) *env {
	t.Helper()
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return newReconcileEnvOn(t, srv.URL, st, m, opts...)
}

// newReconcileEnvAt is newReconcileEnv on another Stripe (the sandbox).
func newReconcileEnvAt(t *testing.T, stripeURL string, m *merchant) *env {
	t.Helper()
	return newReconcileEnvOn(t, stripeURL, nil, m)
}

func newReconcileEnvOn(t *testing.T, stripeURL string, st testStore, m *merchant, opts ...envOpt) *env {
	t.Helper()
	if st == nil {
		st, _ = newTestStore(t)
	}
	logs := &testenv.LockedBuffer{}
	cfg := paygate.Config{Store: st, StripeSecretKey: "sk_test_123abc", StripeAPIBase: stripeURL, StripeMaxNetworkRetries: -1,
		InsecureNoAuth: true, WebhookSecrets: []string{whsecNew}, Logger: slog.New(slog.NewJSONHandler(logs, nil))}
	if m != nil {
		cfg.CallbackURL, cfg.CallbackSecrets = m.URL+"/hooks", []string{callbackSecret}
	}
	for _, o := range opts {
		o(&cfg)
	}
	gw, err := paygate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(gw.Handler())
	t.Cleanup(api.Close)
	return &env{t: t, gw: gw, store: st, rec: &recorder{}, srv: api, logs: logs}
}

// received waits until m has n callbacks (10 s at most) and returns their
// actions in arrival order.
func (m *merchant) received(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m.mu.Lock()
		bodies := slices.Clone(m.bodies)
		m.mu.Unlock()
		if len(bodies) >= n || time.Now().After(deadline) {
			var actions []string
			for _, b := range bodies {
				var cb struct {
					Action string `json:"action"`
				}
				_ = json.Unmarshal(b, &cb)
				actions = append(actions, cb.Action)
			}
			if len(bodies) < n {
				t.Fatalf("%d callbacks received, want %d: %v", len(bodies), n, actions)
			}
			return actions
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Every webhook of a payment is lost: one pass repairs its status, refund
// and dispute from the Events API, sending each callback once; the same
// events arriving later as webhooks change nothing.
func TestReconcileRepairsDroppedWebhooks(t *testing.T) {
	t.Parallel()
	fake := &eventsStripe{}
	m := newMerchant(t)
	e := newReconcileEnv(t, fake, nil, m, func(c *paygate.Config) { c.Metrics = true })
	runGateway(t, e.gw) // delivers the callbacks (the interval is 15 min: no pass of its own here)
	ctx := context.Background()

	p := e.webhookPayment(paygate.MethodIntent, 1000)
	other := e.webhookPayment(paygate.MethodIntent, 500) // its webhook did arrive
	t0 := time.Now().Add(-2 * time.Hour)
	succeeded := fake.add("evt_rec_succ", "payment_intent.succeeded", piObject(p.PaymentIntentID, "succeeded", 1000, p.ID, "ch_rec"), t0)
	refunded := fake.add("evt_rec_refund", "charge.refunded", chargeObject("ch_rec", p.PaymentIntentID, 1000, 400, p.ID), t0.Add(time.Minute))
	fake.add("evt_rec_dispute", "charge.dispute.created", disputeObject("dp_rec", "ch_rec", p.PaymentIntentID, 600), t0.Add(2*time.Minute))
	fake.add("evt_rec_ignored", "customer.created", map[string]any{"id": "cus_1", "object": "customer"}, t0) // not a type we ask for
	delivered := fake.add("evt_rec_other", "payment_intent.succeeded", piObject(other.PaymentIntentID, "succeeded", 500, other.ID, "ch_o"), t0)
	e.send(delivered).must(t, 200, nil)
	if got := m.received(t, 1); !slices.Equal(got, []string{"payment_succeeded"}) {
		t.Fatalf("callbacks before the pass: %v", got)
	}

	res, err := e.gw.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped || res.EventsRead != 4 || res.EventsApplied != 3 || res.EventsKnown != 1 || res.EventsFailed != 0 || res.EventsError != "" ||
		res.Lag < 2*time.Hour-time.Minute || !res.Complete {
		t.Fatalf("result = %+v", res)
	}
	metrics := get(t, e.srv.URL+"/metrics")
	for _, want := range []string{`paygate_reconcile_events_total{result="read"} 4`, `paygate_reconcile_events_total{result="applied"} 3`,
		`paygate_reconcile_events_total{result="known"} 1`, `paygate_reconcile_passes_total{outcome="completed"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(metrics, "paygate_reconcile"))
		}
	}
	if strings.Contains(metrics, "paygate_reconcile_lag_seconds 0\n") || !strings.Contains(metrics, "paygate_reconcile_lag_seconds 7") {
		t.Errorf("lag gauge (about 2 h):\n%s", grepLines(metrics, "paygate_reconcile_lag"))
	}
	got := e.payment(p.ID)
	if got.Status != paygate.StatusPartiallyRefunded || got.AmountRefunded != 400 || got.ChargeID != "ch_rec" {
		t.Fatalf("payment after the pass: %+v", got.Payment)
	}
	var types []string
	for _, h := range got.History {
		if h.Source != "reconcile" || !strings.HasPrefix(h.StripeEventID, "evt_rec_") {
			t.Errorf("history entry %+v: want source reconcile and its event id", h)
		}
		types = append(types, string(h.EventType))
	}
	if want := []string{"payment_succeeded", "refund_created", "dispute_created"}; !slices.Equal(types, want) {
		t.Fatalf("history %v, want %v", types, want)
	}
	// Stored once, as events, with their outcome.
	for _, id := range []string{"evt_rec_succ", "evt_rec_refund", "evt_rec_dispute"} {
		ev, err := e.gw.GetWebhookEvent(ctx, id)
		if err != nil || ev.Status != paygate.EventProcessed || ev.PaymentID != p.ID || ev.ReceivedCount != 1 {
			t.Fatalf("event %s: %+v %v", id, ev, err)
		}
	}
	// Workers deliver concurrently, so arrival order is free; the sequence
	// numbers follow the order the events happened in (applied oldest first).
	got4 := m.received(t, 4)
	slices.Sort(got4)
	if !slices.Equal(got4, []string{"dispute_created", "payment_succeeded", "payment_succeeded", "refund_created"}) {
		t.Fatalf("callbacks: %v", got4)
	}
	m.mu.Lock()
	seqs := map[string]float64{}
	for _, b := range m.bodies {
		var cb map[string]any
		_ = json.Unmarshal(b, &cb)
		if cb["paymentId"] == p.ID {
			seqs[cb["action"].(string)] = cb["sequence"].(float64)
		}
	}
	m.mu.Unlock()
	if seqs["payment_succeeded"] != 1 || seqs["refund_created"] != 2 || seqs["dispute_created"] != 3 {
		t.Fatalf("sequences: %v", seqs)
	}

	// The webhooks arrive after all: duplicates, nothing changes, no callback.
	for _, payload := range [][]byte{succeeded, refunded} {
		var r paygate.WebhookResult
		e.send(payload).must(t, 200, &r)
		if !r.Duplicate {
			t.Fatalf("late webhook not a duplicate: %+v", r)
		}
	}
	if again := e.payment(p.ID); len(again.History) != 3 || again.AmountRefunded != 400 {
		t.Fatalf("a late webhook changed the payment: %+v", again.History)
	}
	// The cursor moved past them: a second pass starts 10 minutes before
	// the first one listed, and these are two hours old.
	res, err = e.gw.Reconcile(ctx)
	if err != nil || res.EventsRead != 0 || res.EventsApplied != 0 || res.Lag != 0 {
		t.Fatalf("second pass: %+v %v", res, err)
	}
	time.Sleep(1500 * time.Millisecond) // more than the engine's poll: a callback queued by mistake would have gone out
	if got := m.received(t, 4); len(got) != 4 {
		t.Fatalf("callbacks after the late webhooks: %v", got)
	}
	if n, _ := e.store.CallbackQueueDepth(ctx); n != 0 {
		t.Fatalf("%d callbacks still queued", n)
	}
}

// A payment that is final (succeeded) is not in the sweep: a refund and a
// dispute made on it, whose webhooks were lost, are found only through
// the Events API.
func TestReconcileFindsRefundAndDisputeOnFinalPayment(t *testing.T) {
	t.Parallel()
	fake := &eventsStripe{}
	e := newReconcileEnv(t, fake, nil, nil)
	ctx := context.Background()
	p := e.webhookPayment(paygate.MethodIntent, 2000, func(p *paygate.Payment) { p.ChargeID = "ch_final" })
	e.succeed(p.ID)

	// Nothing at Stripe yet: the sweep does not look at final payments.
	res, err := e.gw.Reconcile(ctx)
	if err != nil || res.Checked != 0 || res.EventsRead != 0 {
		t.Fatalf("first pass: %+v %v", res, err)
	}
	at := time.Now().Add(-time.Minute)
	fake.add("evt_final_refund", "charge.refunded", chargeObject("ch_final", p.PaymentIntentID, 2000, 2000, p.ID), at)
	fake.add("evt_final_dispute", "charge.dispute.created", disputeObject("dp_final", "ch_final", p.PaymentIntentID, 2000), at)
	res, err = e.gw.Reconcile(ctx)
	if err != nil || res.EventsApplied != 2 || res.Checked != 0 {
		t.Fatalf("second pass: %+v %v", res, err)
	}
	got := e.payment(p.ID)
	if got.Status != paygate.StatusRefunded || got.AmountRefunded != 2000 {
		t.Fatalf("payment: %+v", got.Payment)
	}
	var types []string
	for _, h := range got.History {
		types = append(types, string(h.EventType))
	}
	if !slices.Contains(types, "refund_created") || !slices.Contains(types, "dispute_created") {
		t.Fatalf("history: %v", types)
	}
	// The next pass reads them again (within the cursor's 10-minute
	// overlap) and knows them: nothing is applied twice.
	res, err = e.gw.Reconcile(ctx)
	if err != nil || res.EventsRead != 2 || res.EventsKnown != 2 || res.EventsApplied != 0 || len(e.payment(p.ID).History) != len(got.History) {
		t.Fatalf("third pass: %+v %v", res, err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.intentGs) != 0 {
		t.Fatalf("the sweep read final payments from Stripe: %v", fake.intentGs)
	}
}

// 3,000 payments that are not final are all checked in one pass (no cap);
// with a small time budget, passes resume where the last one stopped and
// together check each exactly once.
func TestReconcileChecksEveryNonFinalPayment(t *testing.T) {
	t.Parallel()
	fake := &eventsStripe{}
	e := newReconcileEnv(t, fake, nil, nil, func(c *paygate.Config) { c.Metrics = true })
	ctx := context.Background()
	const n = 3000
	base := time.Now().Add(-24 * time.Hour).UTC().Truncate(time.Microsecond)
	for i := 0; i < n; i++ {
		at := base.Add(time.Duration(i%700) * time.Second) // many share a created_at: the keyset pages by (created_at, id)
		p := &paygate.Payment{ID: fmt.Sprintf("pay_bulk%05d", i), Method: paygate.MethodIntent, Status: paygate.StatusPending, Amount: 1000,
			Currency: "usd", Quantity: 1, PaymentIntentID: fmt.Sprintf("pi_bulk%05d", i), Metadata: map[string]string{}, Refunds: []paygate.Refund{},
			CreatedAt: at, UpdatedAt: at}
		if err := e.store.InsertPayment(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	res, err := e.gw.Reconcile(ctx)
	if err != nil || res.Checked != n || res.Failed != 0 || !res.Complete {
		t.Fatalf("one pass: %+v %v", res, err)
	}
	fake.mu.Lock()
	if len(fake.intentGs) != n {
		t.Fatalf("Stripe was asked about %d PaymentIntents, want %d", len(fake.intentGs), n)
	}
	fake.intentGs = nil
	fake.mu.Unlock()
	if body := get(t, e.srv.URL+"/metrics"); !strings.Contains(body, `paygate_reconcile_payments_total{result="checked"} 3000`) ||
		!strings.Contains(body, `paygate_reconcile_passes_total{outcome="completed"} 1`) {
		t.Fatalf("metrics lack the pass: %s", grepLines(body, "paygate_reconcile"))
	}

	// A budget far below what 3,000 checks take: several passes, each
	// payment checked once.
	small := newReconcileEnv(t, fake, e.store, nil, func(c *paygate.Config) { c.ReconcileBudget = 300 * time.Millisecond })
	total, passes := 0, 0
	for {
		res, err := small.gw.Reconcile(ctx)
		if err != nil {
			t.Fatal(err)
		}
		total, passes = total+res.Checked, passes+1
		if res.Complete {
			break
		}
		if passes > 1000 {
			t.Fatal("the sweep never completes")
		}
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if passes < 2 || total != n || len(fake.intentGs) != n {
		t.Fatalf("%d passes checked %d (%d distinct), want several passes checking %d", passes, total, len(fake.intentGs), n)
	}
	for id, c := range fake.intentGs {
		if c != 1 {
			t.Fatalf("%s checked %d times", id, c)
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Two replicas on one database reconcile at the same moment: one pass
// runs, the other skips; once it is done the lease is free again.
func TestReconcileOneReplicaAtATime(t *testing.T) {
	t.Parallel()
	fake := &eventsStripe{block: make(chan struct{}), entered: make(chan struct{}, 4)}
	a := newReconcileEnv(t, fake, nil, nil)
	b := newReconcileEnv(t, fake, a.store, nil)
	ctx := context.Background()
	type outcome struct {
		res *paygate.ReconcileResult
		err error
	}
	results := make(chan outcome, 2)
	for _, e := range []*env{a, b} {
		go func() {
			res, err := e.gw.Reconcile(ctx)
			results <- outcome{res, err}
		}()
	}
	// One of them reaches Stripe and waits there; the other must skip.
	select {
	case <-fake.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no pass reached Stripe")
	}
	var first outcome
	select {
	case first = <-results:
	case <-fake.entered:
		t.Fatal("both replicas are reconciling at once")
	case <-time.After(10 * time.Second):
		t.Fatal("the second replica neither skipped nor ran")
	}
	if first.err != nil || !first.res.Skipped {
		t.Fatalf("second replica: %+v %v", first.res, first.err)
	}
	// While it runs, neither replica starts another: not the one running
	// it either (the lease's holder is the Gateway, so this needs a lock).
	for _, e := range []*env{a, b} {
		if res, err := e.gw.Reconcile(ctx); err != nil || !res.Skipped {
			t.Fatalf("a call during the pass: %+v %v", res, err)
		}
	}
	close(fake.block)
	second := <-results
	if second.err != nil || second.res.Skipped {
		t.Fatalf("the running pass: %+v %v", second.res, second.err)
	}
	// The lease was released: either replica runs the next pass.
	if res, err := b.gw.Reconcile(ctx); err != nil || res.Skipped {
		t.Fatalf("after the pass: %+v %v", res, err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fake.lists != 2 {
		t.Fatalf("events listed %d times, want 2 (one per pass that ran)", fake.lists)
	}
}

// Run checks Stripe's webhook endpoint for this service when it starts and
// warns (never fails) when it is not pinned to paygate's API version or
// misses handled events; health shows the result.
func TestWebhookEndpointCheck(t *testing.T) {
	t.Parallel()
	endpoint := func(url, version string, events ...string) string {
		b, _ := json.Marshal(map[string]any{"id": "we_" + strconv.Itoa(len(url)), "object": "webhook_endpoint", "url": url,
			"api_version": version, "enabled_events": events, "status": "enabled"})
		return string(b)
	}
	list := func(items ...string) string {
		return `{"object": "list", "url": "/v1/webhook_endpoints", "has_more": false, "data": [` + strings.Join(items, ",") + `]}`
	}
	fake := &eventsStripe{endpoints: list(
		endpoint("https://other.example/hooks", "2023-10-16", "*"),
		endpoint("https://shop.example/api/webhooks/stripe", "2022-11-15", "payment_intent.succeeded", "charge.refunded"),
	)}
	e := newReconcileEnv(t, fake, nil, nil)
	runGateway(t, e.gw)
	var h paygate.Health
	deadline := time.Now().Add(10 * time.Second)
	for h.Checks.Stripe.WebhookEndpoint == nil {
		if time.Now().After(deadline) {
			t.Fatal("no webhook endpoint check after Run started")
		}
		time.Sleep(20 * time.Millisecond)
		e.do("GET", "/api/health", "").must(t, 200, &h)
	}
	c := h.Checks.Stripe.WebhookEndpoint
	if c.OK || c.URL != "https://shop.example/api/webhooks/stripe" || c.APIVersion != "2022-11-15" ||
		len(c.MissingEvents) != len(paygate.HandledEventTypes)-2 || len(c.Problems) != 2 {
		t.Fatalf("check: %+v", c)
	}
	if !strings.Contains(e.logs.String(), "not pinned to 2023-10-16") || !strings.Contains(e.logs.String(), `"level":"WARN"`) {
		t.Fatalf("no warning logged:\n%s", e.logs.String())
	}

	// Fixed: pinned, every event ("*" counts as all).
	fake.mu.Lock()
	fake.endpoints = list(endpoint("https://shop.example/api/webhooks/stripe", "2023-10-16", "*"))
	fake.mu.Unlock()
	if c := e.gw.CheckWebhookEndpoint(context.Background()); !c.OK || len(c.Problems) != 0 {
		t.Fatalf("good endpoint: %+v", c)
	}
	// None for us; and a configured URL must match exactly.
	fake.mu.Lock()
	fake.endpoints = list(endpoint("https://other.example/hooks", "2023-10-16", "*"))
	fake.mu.Unlock()
	if c := e.gw.CheckWebhookEndpoint(context.Background()); c.OK || len(c.Problems) != 1 || !strings.Contains(c.Problems[0], "no webhook endpoint") {
		t.Fatalf("no endpoint: %+v", c)
	}
	exact := newReconcileEnv(t, fake, e.store, nil, func(c *paygate.Config) { c.WebhookEndpointURL = "https://other.example/hooks" })
	if c := exact.gw.CheckWebhookEndpoint(context.Background()); !c.OK {
		t.Fatalf("configured URL: %+v", c)
	}
}

// More lost events than a pass holds in memory at once (500): applied
// chunk by chunk, all in one pass, and the cursor moves on.
func TestReconcileManyLostEvents(t *testing.T) {
	t.Parallel()
	fake := &eventsStripe{}
	e := newReconcileEnv(t, fake, nil, nil)
	ctx := context.Background()
	const n = 1234
	at := time.Now().Add(-time.Minute)
	for i := 0; i < n; i++ { // disputes on charges this service does not know: stored as unmatched
		fake.add(fmt.Sprintf("evt_many%05d", i), "charge.dispute.created", disputeObject(fmt.Sprintf("dp_many%d", i), fmt.Sprintf("ch_many%d", i), "", 100), at)
	}
	res, err := e.gw.Reconcile(ctx)
	if err != nil || res.EventsRead != n || res.EventsApplied != n || res.EventsFailed != 0 || res.EventsError != "" {
		t.Fatalf("pass: %+v %v", res, err)
	}
	if got := e.eventCount(); got != n {
		t.Fatalf("%d events stored, want %d", got, n)
	}
	// Within the overlap the next pass reads them again, all known.
	if res, err := e.gw.Reconcile(ctx); err != nil || res.EventsKnown != n || res.EventsApplied != 0 {
		t.Fatalf("next pass: %+v %v", res, err)
	}
}

// Events arrive in any order: a refund named only by its charge, delivered
// before the event that teaches the payment that charge, is stored
// unmatched; the next reconciliation finds its payment and applies it, once.
func TestReconcileAppliesEventsStoredUnmatchedBeforeTheirPaymentWasKnown(t *testing.T) {
	t.Parallel()
	fake := &eventsStripe{}
	e := newReconcileEnv(t, fake, nil, nil)
	ctx := context.Background()
	p, refundID, deliver := refundBeforeSuccess(t, e, "ooo")
	if got := e.payment(p.ID); got.Status != paygate.StatusSucceeded || got.AmountRefunded != 0 {
		t.Fatalf("payment before reconciliation: %s, refunded %d", got.Status, got.AmountRefunded)
	}
	// An event of another service sharing the account stays unmatched.
	foreignID := fmt.Sprintf("evt_ooo_foreign%d", evtSeq.Add(1))
	deliver(foreignID, "payment_intent.succeeded", piObject(fmt.Sprintf("pi_foreign%d", evtSeq.Add(1)), "succeeded", 500, "", ""))
	res, err := e.gw.Reconcile(ctx)
	if err != nil || res.EventsApplied != 1 || res.EventsFailed != 0 {
		t.Fatalf("reconciliation: %+v, %v", res, err)
	}
	ev, err := e.gw.GetWebhookEvent(ctx, refundID)
	if err != nil || ev.Status != paygate.EventProcessed || ev.PaymentID != p.ID {
		t.Fatalf("the refund event: %+v, %v", ev, err)
	}
	got := e.payment(p.ID)
	if got.Status != paygate.StatusPartiallyRefunded || got.AmountRefunded != 300 {
		t.Fatalf("payment after reconciliation: %s, refunded %d", got.Status, got.AmountRefunded)
	}
	var fromRefund []paygate.HistoryEntry
	for _, h := range got.History {
		if h.StripeEventID == refundID {
			fromRefund = append(fromRefund, h)
		}
	}
	if len(fromRefund) == 0 || fromRefund[0].Source != paygate.SourceReconcile {
		t.Fatalf("history of the refund event: %+v", fromRefund)
	}
	if ev, err := e.gw.GetWebhookEvent(ctx, foreignID); err != nil || ev.Status != paygate.EventUnmatched {
		t.Fatalf("another service's event: %+v, %v", ev, err)
	}
	// Once: the next pass applies nothing.
	if res, err := e.gw.Reconcile(ctx); err != nil || res.EventsApplied != 0 || len(e.payment(p.ID).History) != len(got.History) {
		t.Fatalf("second reconciliation: %+v, %v", res, err)
	}
}

// refundBeforeSuccess delivers to e, for a new payment of 10.00, a
// charge.refunded of 3.00 naming only the charge (stored unmatched: no
// payment has that charge yet) and then the payment's success, which
// tells the payment the charge. It returns the payment, the refund event's
// id and a function that delivers more events, signed.
func refundBeforeSuccess(t *testing.T, e *env, tag string) (*paygate.Payment, string, func(id, typ string, obj map[string]any) *paygate.WebhookResult) {
	t.Helper()
	p := e.webhookPayment(paygate.MethodIntent, 1000)
	charge := fmt.Sprintf("ch_%s%d", tag, evtSeq.Add(1))
	deliver := func(id, typ string, obj map[string]any) *paygate.WebhookResult {
		t.Helper()
		payload := stripeEventJSON(id, typ, "2023-10-16", obj)
		res, err := e.gw.HandleWebhook(context.Background(), payload, signed(payload, whsecNew, time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	refundID := fmt.Sprintf("evt_%s_refund%d", tag, evtSeq.Add(1))
	refund := chargeObject(charge, "", 1000, 300, "")
	delete(refund, "metadata")
	if res := deliver(refundID, "charge.refunded", refund); res.Status != paygate.EventUnmatched {
		t.Fatalf("the refund, first: %+v", res)
	}
	if res := deliver("", "payment_intent.succeeded", piObject(p.PaymentIntentID, "succeeded", 1000, p.ID, charge)); res.Status != paygate.EventProcessed {
		t.Fatalf("the success: %+v", res)
	}
	return p, refundID, deliver
}
