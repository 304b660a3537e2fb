package paygate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/callback"
	"github.com/numedapp/paygate/sandbox"
)

// The harness of the sandbox tests: paygate's HTTP API on a throwaway
// schema, talking to the sandbox (the stateful Stripe stand-in) as Stripe,
// receiving the sandbox's signed webhooks, and calling back a merchant
// that verifies every callback. Everything runs on the sandbox clock, so
// Advance moves paygate, the callback engine and the merchant with it.

// sbEnv is one paygate + sandbox + callback engine + merchant.
type sbEnv struct {
	*env // do() and the API key
	t    testing.TB
	sb   *sandbox.Sandbox
	eng  *callback.Engine
	m    *sbMerchant
}

// sbMerchant is the merchant's callback endpoint: it verifies every
// callback's signature against the sandbox clock and records it.
type sbMerchant struct {
	srv *httptest.Server
	now func() time.Time

	mu       sync.Mutex
	received []sbCallback // in arrival order, duplicates included
	bad      []string     // requests that did not verify
}

// sbCallback is one callback as the merchant received it.
type sbCallback struct {
	WebhookID string
	EventID   string `json:"eventId"`
	EventType string `json:"eventType"`
	Action    string `json:"action"`
	PaymentID string `json:"paymentId"`
	Sequence  int64  `json:"sequence"`
	Data      struct {
		PaymentID       string `json:"paymentId"`
		PaymentIntentID string `json:"paymentIntentId"`
		Status          string `json:"status"`
		Amount          int64  `json:"amount"`
		AmountRefunded  *int64 `json:"amountRefunded"`
		RefundID        string `json:"refundId"`
		RefundStatus    string `json:"refundStatus"`
		DisputeID       string `json:"disputeId"`
		DisputeStatus   string `json:"disputeStatus"`
		SessionID       string `json:"sessionId"`
	} `json:"data"`
}

func (m *sbMerchant) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := callback.VerifyAt(callbackSecret, r.Header, body, m.now(), callback.DefaultTolerance); err != nil {
		m.bad = append(m.bad, err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var c sbCallback
	if err := json.Unmarshal(body, &c); err != nil {
		m.bad = append(m.bad, "not JSON: "+string(body))
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	c.WebhookID = r.Header.Get(callback.HeaderID)
	m.received = append(m.received, c)
	w.WriteHeader(http.StatusNoContent)
}

// sbOpts tunes newSBEnv.
type sbOpts struct {
	sandbox sandbox.Config
	// lose, if set, says which webhooks are lost on the way: they are
	// answered 200 without reaching paygate (as if Stripe's delivery
	// vanished; only reconciliation can learn what they said).
	lose func(eventType string) bool
	// retries and stripeTimeout, if set, have stripe-go retry its calls
	// itself (StripeMaxNetworkRetries) with that client timeout; by default
	// faults reach paygate's caller unretried.
	retries       int
	stripeTimeout time.Duration
	// via, if set, puts a proxy between paygate and the sandbox: it is
	// given the sandbox's URL and returns the proxy's handler.
	via func(sandbox *url.URL) http.Handler
}

// newSBEnv builds the whole chain for one test. The sandbox runs on real
// time plus Advance; paygate, the engine and the merchant use its clock.
func newSBEnv(t testing.TB, o sbOpts) *sbEnv {
	t.Helper()
	sb, err := sandbox.NewServer(o.sandbox)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	stripeBase := sb.URL()
	if o.via != nil {
		target, _ := url.Parse(sb.URL())
		proxy := httptest.NewServer(o.via(target))
		t.Cleanup(proxy.Close)
		stripeBase = proxy.URL
	}
	m := &sbMerchant{now: sb.Now}
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.srv.Close)

	st, pool := newTestStore(t)
	auth, err := paygate.BearerKeys(testAPIKey)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	retries, client := -1, (*http.Client)(nil) // faults reach paygate's caller, who retries with the same Idempotency-Key
	if o.retries > 0 {
		retries = o.retries
	}
	if o.stripeTimeout > 0 {
		client = &http.Client{Timeout: o.stripeTimeout}
	}
	gw, err := paygate.New(paygate.Config{
		Store:                   st,
		Auth:                    auth,
		StripeAPIBase:           stripeBase,
		StripeSecretKey:         "sk_test_123abc",
		StripePublishableKey:    "pk_test_123abc",
		StripeMaxNetworkRetries: retries,
		HTTPClient:              client,
		WebhookSecrets:          []string{sb.WebhookSecret()},
		CallbackURL:             m.srv.URL + "/hooks/paygate",
		Now:                     sb.Now,
		Logger:                  quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := gw.Handler()
	if o.lose != nil {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == paygate.WebhookPath {
				body, _ := io.ReadAll(r.Body)
				var ev struct {
					Type string `json:"type"`
				}
				_ = json.Unmarshal(body, &ev)
				if o.lose(ev.Type) {
					w.WriteHeader(http.StatusOK)
					return
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
			inner.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	if err := sb.SetWebhook(srv.URL+paygate.WebhookPath, ""); err != nil {
		t.Fatal(err)
	}
	eng, err := callback.New(callback.Config{Queue: st, Secrets: []string{callbackSecret}, Now: sb.Now, Logger: quiet, Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	return &sbEnv{env: &env{t: t, gw: gw, store: st, pool: pool, srv: srv}, t: t, sb: sb, eng: eng, m: m}
}

// flush delivers every webhook due, then every callback due.
func (e *sbEnv) flush() {
	e.t.Helper()
	e.sb.DeliverAll()
	e.callbacks()
}

// advance moves the sandbox clock (delivering what falls due on the way)
// and then sends the callbacks due.
func (e *sbEnv) advance(d time.Duration) {
	e.t.Helper()
	e.sb.Advance(d)
	e.callbacks()
}

// callbacks steps the engine until nothing is due.
func (e *sbEnv) callbacks() {
	e.t.Helper()
	for i := 0; i < 10000; i++ {
		n, err := e.eng.DeliverDue(context.Background(), 100)
		if err != nil {
			e.t.Fatalf("DeliverDue: %v", err)
		}
		if n == 0 {
			return
		}
	}
	e.t.Fatal("the callback engine never ran dry")
}

// call is do() for a test that is not e.t (the property test's shards).
func (e *sbEnv) call(t testing.TB, method, path, body string, hdr ...string) *response {
	t.Helper()
	saved := e.env.t
	e.env.t = t
	defer func() { e.env.t = saved }()
	return e.do(method, path, body, hdr...)
}

// data decodes a response's data, requiring the status.
func (r *response) into(t testing.TB, status int, v any) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Raw)
	}
	if v != nil {
		if err := json.Unmarshal(r.Data, v); err != nil {
			t.Fatalf("decode data: %v\n%s", err, r.Raw)
		}
	}
}

func (e *sbEnv) createLink(t testing.TB, body string, hdr ...string) *paygate.Payment {
	t.Helper()
	var p paygate.Payment
	e.call(t, "POST", "/api/payments/generate-url", body, hdr...).into(t, 201, &p)
	return &p
}

func (e *sbEnv) createCheckout(t testing.TB, body string, hdr ...string) *paygate.CreatedCheckout {
	t.Helper()
	var c paygate.CreatedCheckout
	e.call(t, "POST", "/api/payments/checkout-session", body, hdr...).into(t, 201, &c)
	return &c
}

func (e *sbEnv) createIntent(t testing.TB, body string, hdr ...string) *paygate.CreatedIntent {
	t.Helper()
	var c paygate.CreatedIntent
	e.call(t, "POST", "/api/payments/payment-intent", body, hdr...).into(t, 201, &c)
	return &c
}

func (e *sbEnv) refund(t testing.TB, body string, hdr ...string) *paygate.CreatedRefund {
	t.Helper()
	var c paygate.CreatedRefund
	e.call(t, "POST", "/api/payments/refund", body, hdr...).into(t, 201, &c)
	return &c
}

// payment reads a payment with its history through the API.
func (e *sbEnv) payment(t testing.TB, id string) *paygate.PaymentWithHistory {
	t.Helper()
	var p paygate.PaymentWithHistory
	e.call(t, "GET", "/api/payments/"+id, "").into(t, 200, &p)
	return &p
}

// received returns the callbacks of one payment the merchant received
// (each webhook-id once), by sequence, and the webhook-ids that arrived
// more than once.
func (m *sbMerchant) of(paymentID string) (cbs []sbCallback, dupIDs []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	for _, c := range m.received {
		if c.PaymentID != paymentID {
			continue
		}
		if seen[c.WebhookID] {
			dupIDs = append(dupIDs, c.WebhookID)
			continue
		}
		seen[c.WebhookID] = true
		cbs = append(cbs, c)
	}
	sort.SliceStable(cbs, func(i, j int) bool { return cbs[i].Sequence < cbs[j].Sequence })
	return cbs, dupIDs
}

// arrival lists the sequence numbers of a payment's callbacks in the
// order they first arrived.
func (m *sbMerchant) arrival(paymentID string) []int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	var out []int64
	for _, c := range m.received {
		if c.PaymentID == paymentID && !seen[c.WebhookID] {
			seen[c.WebhookID] = true
			out = append(out, c.Sequence)
		}
	}
	return out
}

// historyActions maps a history type to the callback action it queues.
var historyActions = map[paygate.HistoryType]string{
	paygate.HistoryPaymentSucceeded:  "payment_succeeded",
	paygate.HistoryPaymentFailed:     "payment_failed",
	paygate.HistoryPaymentProcessing: "payment_processing",
	paygate.HistoryPaymentCanceled:   "payment_canceled",
	paygate.HistoryCheckoutCompleted: "checkout_completed",
	paygate.HistoryCheckoutExpired:   "checkout_expired",
	paygate.HistoryRefundCreated:     "refund_created",
	paygate.HistoryRefundUpdated:     "refund_updated",
	paygate.HistoryRefundFailed:      "refund_updated",
	paygate.HistoryDisputeCreated:    "dispute_created",
	paygate.HistoryDisputeUpdated:    "dispute_updated",
	paygate.HistoryDisputeClosed:     "dispute_closed",
}

// cbStep is what one callback (or the history row it reports) says, for
// comparing the two.
type cbStep struct {
	Seq     int64
	Action  string
	EventID string
	Status  string
}

// calledBack reports the history rows that queue a callback: every change,
// except a refund reservation Stripe refused (source api, refund_failed:
// never announced, so not called back — docs/decisions.md).
func calledBack(h paygate.HistoryEntry) bool {
	if _, ok := historyActions[h.EventType]; !ok {
		return false
	}
	return !(h.Source == paygate.SourceAPI && h.EventType == paygate.HistoryRefundFailed)
}

// checkCallbacks asserts that the merchant received exactly one callback
// per history change of the payment, once each, with sequence 1, 2, 3, …
// in history order, each naming the change's Stripe event and status.
func (e *sbEnv) checkCallbacks(t testing.TB, p *paygate.PaymentWithHistory) {
	t.Helper()
	var want []cbStep
	for _, h := range p.History {
		if calledBack(h) {
			want = append(want, cbStep{Seq: int64(len(want) + 1), Action: historyActions[h.EventType], EventID: h.StripeEventID, Status: string(h.ToStatus)})
		}
	}
	cbs, dups := e.m.of(p.ID)
	// They arrived in sequence order too: the engine sends a payment's
	// callbacks one at a time, in sequence.
	if arrived := e.m.arrival(p.ID); !slices.IsSorted(arrived) {
		t.Errorf("payment %s: callbacks arrived in the order %v, not by sequence", p.ID, arrived)
	}
	var got []cbStep
	for _, c := range cbs {
		got = append(got, cbStep{Seq: c.Sequence, Action: c.Action, EventID: c.EventID, Status: c.Data.Status})
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("payment %s: callbacks vs history (-history +callbacks):\n%s\nhistory:\n%s", p.ID, diff, historyText(p.History))
	}
	if len(dups) > 0 {
		t.Errorf("payment %s: callbacks sent twice to a merchant that answered 2xx: %v", p.ID, dups)
	}
}

func historyText(hs []paygate.HistoryEntry) string {
	var b strings.Builder
	for _, h := range hs {
		fmt.Fprintf(&b, "  %-18s %-18s -> %-18s %-8s %s %s\n", h.EventType, h.FromStatus, h.ToStatus, h.Source, h.StripeEventID, h.Data)
	}
	return b.String()
}

// view is the part of a payment compared with the sandbox's truth.
type view struct {
	Status          paygate.Status
	AmountRefunded  int64
	PaymentIntentID string
	ChargeID        string
	Refunds         []refundView
	// Disputes are "id status", sorted: the API shows disputes only in
	// the history, so paygate's side is each dispute's last history row.
	Disputes []string
}

type refundView struct {
	ID     string
	Amount int64
	Status string
}

// paygateView is paygate's record as the API shows it. Refund reservations
// Stripe never made (failed, with no re_ id) are left out: the sandbox has
// nothing for them; the tests that make them assert them directly.
func paygateView(p *paygate.PaymentWithHistory) view {
	v := view{Status: p.Status, AmountRefunded: p.AmountRefunded, PaymentIntentID: p.PaymentIntentID, ChargeID: p.ChargeID}
	disputes := map[string]string{}
	for _, h := range p.History {
		switch h.EventType {
		case paygate.HistoryDisputeCreated, paygate.HistoryDisputeUpdated, paygate.HistoryDisputeClosed:
			var d struct{ DisputeID, DisputeStatus string }
			if err := json.Unmarshal(h.Data, &d); err == nil {
				disputes[d.DisputeID] = d.DisputeStatus
			}
		}
	}
	for id, st := range disputes {
		v.Disputes = append(v.Disputes, id+" "+st)
	}
	sort.Strings(v.Disputes)
	for _, r := range p.Refunds {
		if r.StripeRefundID == "" && r.Status == paygate.RefundFailed {
			continue
		}
		v.Refunds = append(v.Refunds, refundView{ID: r.StripeRefundID, Amount: r.Amount, Status: string(r.Status)})
	}
	sort.Slice(v.Refunds, func(i, j int) bool { return v.Refunds[i].ID < v.Refunds[j].ID })
	return v
}

// truthView is what paygate's record must say, derived from Stripe's
// truth alone (docs/decisions.md, "The state machine"): a succeeded
// PaymentIntent owns the ids, refunds, refunded amount and disputes are
// Stripe's; else one processing; else what the attempts say by method.
func truthView(sb *sandbox.Sandbox, method paygate.Method, amount int64, tr sandbox.PaymentTruth) view {
	var v view
	charge := func(pi string) string {
		for _, x := range tr.PaymentIntents {
			if x.ID == pi {
				return x.LatestCharge
			}
		}
		return ""
	}
	// A try failed: a declined charge, or a PaymentIntent back to
	// requires_payment_method with a last_payment_error (a failed 3D
	// Secure challenge has no charge).
	failedCharge := slices.ContainsFunc(tr.Charges, func(c sandbox.ChargeTruth) bool { return c.Status == "failed" }) ||
		slices.ContainsFunc(tr.PaymentIntents, func(x sandbox.IntentTruth) bool {
			return x.Status == "requires_payment_method" && sb.Object(x.ID)["last_payment_error"] != nil
		})
	switch {
	case tr.Succeeded != "":
		v.Status, v.PaymentIntentID, v.ChargeID = paygate.StatusSucceeded, tr.Succeeded, charge(tr.Succeeded)
		switch {
		case tr.AmountRefunded >= amount:
			v.Status = paygate.StatusRefunded
		case tr.AmountRefunded > 0:
			v.Status = paygate.StatusPartiallyRefunded
		}
		v.AmountRefunded = tr.AmountRefunded
	case tr.Processing != "":
		v.Status, v.PaymentIntentID, v.ChargeID = paygate.StatusProcessing, tr.Processing, charge(tr.Processing)
	default:
		v.Status = paygate.StatusPending
		expired := slices.ContainsFunc(tr.CheckoutSessions, func(s sandbox.SessionTruth) bool { return s.Status == "expired" })
		canceled := slices.ContainsFunc(tr.PaymentIntents, func(x sandbox.IntentTruth) bool { return x.Status == "canceled" })
		switch {
		case method == paygate.MethodCheckout && expired:
			v.Status = paygate.StatusExpired
		case method != paygate.MethodLink && canceled:
			v.Status = paygate.StatusCanceled
		case failedCharge:
			v.Status = paygate.StatusFailed
		}
		if n := len(tr.PaymentIntents); n > 0 {
			// The newest attempt (the sandbox lists oldest first).
			last := tr.PaymentIntents[n-1]
			v.PaymentIntentID, v.ChargeID = last.ID, last.LatestCharge
		}
	}
	for _, r := range tr.Refunds {
		st := r.Status
		if st == "requires_action" {
			st = "pending"
		}
		v.Refunds = append(v.Refunds, refundView{ID: r.ID, Amount: r.Amount, Status: st})
	}
	sort.Slice(v.Refunds, func(i, j int) bool { return v.Refunds[i].ID < v.Refunds[j].ID })
	for _, d := range tr.Disputes {
		v.Disputes = append(v.Disputes, d.ID+" "+d.Status)
	}
	sort.Strings(v.Disputes)
	return v
}

// checkTruth asserts that paygate's record of the payment equals the
// sandbox's truth, that its callbacks match its history, and that every
// Stripe object the sandbox holds carries paygate's metadata.
func (e *sbEnv) checkTruth(t testing.TB, id string) *paygate.PaymentWithHistory {
	t.Helper()
	p := e.checkRecord(t, id)
	if u := e.sb.Untagged(); len(u) > 0 {
		t.Errorf("Stripe objects without paygate's metadata: %v", u)
	}
	return p
}

// checkRecord is checkTruth without the metadata check (which looks at
// every object: the property test makes it once).
func (e *sbEnv) checkRecord(t testing.TB, id string) *paygate.PaymentWithHistory {
	t.Helper()
	p := e.payment(t, id)
	tr := e.sb.Truth(id)
	if diff := cmp.Diff(truthView(e.sb, p.Method, p.Amount, tr), paygateView(p), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("payment %s (%s): paygate vs the sandbox's truth (-truth +paygate):\n%s\ntruth: %+v\nhistory:\n%s", id, p.Method, diff, tr, historyText(p.History))
	}
	e.checkCallbacks(t, p)
	return p
}

// types lists a payment's history types, oldest first.
func types(p *paygate.PaymentWithHistory) []string {
	out := make([]string, len(p.History))
	for i, h := range p.History {
		out[i] = string(h.EventType)
	}
	return out
}

// actions lists the callbacks the merchant received for a payment, by
// sequence.
func (e *sbEnv) actions(id string) []string {
	cbs, _ := e.m.of(id)
	out := make([]string, len(cbs))
	for i, c := range cbs {
		out[i] = c.Action
	}
	return out
}

func (e *sbEnv) checkMerchant(t testing.TB) {
	t.Helper()
	e.m.mu.Lock()
	defer e.m.mu.Unlock()
	if len(e.m.bad) > 0 {
		t.Errorf("callbacks that did not verify: %v", e.m.bad)
	}
}
