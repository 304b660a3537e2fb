package paygate_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/numedapp/paygate"
)

// wantForm checks that every key in want was sent with that value.
func wantForm(t *testing.T, c stripeCall, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := c.Form.Get(k); got != v {
			t.Errorf("%s %s: %s = %q, want %q (form %v)", c.Method, c.Path, k, got, v, c.Form)
		}
	}
}

func TestGenerateURL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var p paygate.Payment
	r := e.do("POST", "/api/payments/generate-url", `{"amount": 19.99, "quantity": 3, "productName": "Widget",
		"description": "Three widgets", "customerEmail": "buyer@example.com", "metadata": {"orderId": "1234"},
		"successUrl": "https://shop.example.com/thanks"}`).must(t, 201, &p)
	if r.Message != "Payment link created" {
		t.Errorf("message = %q", r.Message)
	}
	if p.Amount != 5997 || p.Currency != "usd" || p.Quantity != 3 || p.Status != paygate.StatusPending || p.Method != paygate.MethodLink {
		t.Errorf("payment = %+v", p)
	}
	if p.PaymentURL == "" || !strings.HasPrefix(p.PaymentLinkID, "plink_") || !strings.HasPrefix(p.ID, "pay_") {
		t.Errorf("payment ids/url = %+v", p)
	}
	if diff := cmp.Diff(map[string]string{"orderId": "1234"}, p.Metadata); diff != "" {
		t.Errorf("metadata echoes the caller's own only (-want +got):\n%s", diff)
	}
	calls := e.rec.Calls()
	if len(calls) != 2 || calls[0].Path != "/v1/prices" || calls[1].Path != "/v1/payment_links" {
		t.Fatalf("calls = %+v", calls)
	}
	wantForm(t, calls[0], map[string]string{
		"unit_amount": "1999", "currency": "usd", "product_data[name]": "Widget",
		"metadata[paygate_payment_id]": p.ID, "metadata[orderId]": "1234",
	})
	wantForm(t, calls[1], map[string]string{
		"line_items[0][quantity]":                           "3",
		"restrictions[completed_sessions][limit]":           "1",
		"payment_intent_data[metadata][paygate_payment_id]": p.ID,
		"payment_intent_data[metadata][orderId]":            "1234",
		"payment_intent_data[description]":                  "Three widgets",
		"metadata[paygate_payment_id]":                      p.ID,
		"after_completion[type]":                            "redirect",
		"after_completion[redirect][url]":                   "https://shop.example.com/thanks",
	})
	if calls[0].IdempotencyKey != "paygate:"+p.ID+":price" || calls[1].IdempotencyKey != "paygate:"+p.ID+":payment_link" {
		t.Errorf("idempotency keys = %q, %q", calls[0].IdempotencyKey, calls[1].IdempotencyKey)
	}

	// The stored payment has its history.
	var got paygate.PaymentWithHistory
	e.do("GET", "/api/payments/"+p.ID, "").must(t, 200, &got)
	if got.PaymentLinkID != p.PaymentLinkID || len(got.History) != 1 || got.History[0].EventType != paygate.HistoryPaymentCreated {
		t.Errorf("stored = %+v", got)
	}
}

func TestCreatePaymentIntent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tt := range []struct {
		body     string
		amount   string
		currency string
	}{
		{`{"amount": "500", "description": "Order 7", "customerEmail": "c@example.com", "metadata": {"orderId": "7"}}`, "50000", "usd"},
		{`{"amount": 500, "currency": "JPY"}`, "500", "jpy"},
		{`{"amount": "1.23", "currency": "kwd"}`, "1230", "kwd"},
	} {
		e.rec.Reset()
		var out paygate.CreatedIntent
		r := e.do("POST", "/api/payments/payment-intent", tt.body).must(t, 201, &out)
		if r.Message != "Payment intent created" || out.ClientSecret == "" || !strings.HasPrefix(out.PaymentIntentID, "pi_") || out.Currency != tt.currency {
			t.Errorf("%s: out = %+v (%s)", tt.body, out, r.Message)
		}
		if fmt.Sprint(out.Amount) != tt.amount {
			t.Errorf("%s: amount %d, want %s", tt.body, out.Amount, tt.amount)
		}
		calls := e.rec.Calls()
		if len(calls) != 1 || calls[0].Path != "/v1/payment_intents" {
			t.Fatalf("calls = %+v", calls)
		}
		wantForm(t, calls[0], map[string]string{
			"amount": tt.amount, "currency": tt.currency, "automatic_payment_methods[enabled]": "true",
			"metadata[paygate_payment_id]": out.PaymentID,
		})
		if calls[0].IdempotencyKey != "paygate:"+out.PaymentID+":payment_intent" {
			t.Errorf("idempotency key %q", calls[0].IdempotencyKey)
		}
	}
}

func TestCheckoutSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var out paygate.CreatedCheckout
	r := e.do("POST", "/api/payments/checkout-session", `{"amount": "5.00", "quantity": 2, "productName": "Tea",
		"successUrl": "https://shop.example.com/ok?session={CHECKOUT_SESSION_ID}", "cancelUrl": "https://shop.example.com/cancel",
		"customerEmail": "t@example.com", "metadata": {"orderId": "99"}}`).must(t, 201, &out)
	if r.Message != "Checkout session created" || !strings.HasPrefix(out.SessionID, "cs_") || out.URL == "" || out.PaymentID == "" {
		t.Fatalf("out = %+v", out)
	}
	calls := e.rec.Calls()
	if len(calls) != 1 || calls[0].Path != "/v1/checkout/sessions" {
		t.Fatalf("calls = %+v", calls)
	}
	wantForm(t, calls[0], map[string]string{
		"mode": "payment", "client_reference_id": out.PaymentID,
		"line_items[0][price_data][unit_amount]":            "500",
		"line_items[0][price_data][currency]":               "usd",
		"line_items[0][price_data][product_data][name]":     "Tea",
		"line_items[0][quantity]":                           "2",
		"success_url":                                       "https://shop.example.com/ok?session={CHECKOUT_SESSION_ID}",
		"cancel_url":                                        "https://shop.example.com/cancel",
		"customer_email":                                    "t@example.com",
		"metadata[paygate_payment_id]":                      out.PaymentID,
		"metadata[orderId]":                                 "99",
		"payment_intent_data[metadata][paygate_payment_id]": out.PaymentID,
	})
	var p paygate.PaymentWithHistory
	e.do("GET", "/api/payments/"+out.PaymentID, "").must(t, 200, &p)
	if p.Amount != 1000 || p.CheckoutSessionID != out.SessionID || p.PaymentURL != out.URL || p.Method != paygate.MethodCheckout {
		t.Errorf("stored = %+v", p.Payment)
	}
}

func createIntent(t *testing.T, e *env, amount string) paygate.CreatedIntent {
	t.Helper()
	var out paygate.CreatedIntent
	e.do("POST", "/api/payments/payment-intent", `{"amount": "`+amount+`"}`).must(t, 201, &out)
	return out
}

func TestPaymentIntentGetAndSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pi := createIntent(t, e, "19.99")
	var st paygate.IntentStatus
	e.do("GET", "/api/payments/payment-intent/"+pi.PaymentIntentID, "").must(t, 200, &st)
	if st.PaymentID != pi.PaymentID || st.PaymentIntentID != pi.PaymentIntentID || st.Amount != 1999 || st.Status == "" {
		t.Errorf("status = %+v", st)
	}
	var sess paygate.IntentSession
	e.do("GET", "/api/payments/payment-intent/"+pi.PaymentIntentID+"/session", "").must(t, 200, &sess)
	if sess.ClientSecret == "" || sess.PublishableKey != "pk_test_123abc" || sess.PaymentID != pi.PaymentID || sess.Amount != 1999 {
		t.Errorf("session = %+v", sess)
	}
	// A PaymentIntent this service did not create is a 404, and Stripe is not asked.
	e.rec.Reset()
	r := e.do("GET", "/api/payments/payment-intent/pi_notours", "")
	if r.Status != 404 || r.Error.Type != "not_found" || len(e.rec.Calls()) != 0 {
		t.Errorf("unknown intent: %d %s, calls %v", r.Status, r.Raw, e.rec.Calls())
	}
	var cfg paygate.PublicConfig
	e.do("GET", "/api/payments/config", "").must(t, 200, &cfg)
	if cfg != (paygate.PublicConfig{PublishableKey: "pk_test_123abc", Currency: "usd"}) {
		t.Errorf("config = %+v", cfg)
	}
}

func TestRefunds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pi := createIntent(t, e, "19.99")

	// Not yet succeeded: 409, and Stripe is not asked.
	e.rec.Reset()
	r := e.do("POST", "/api/payments/refund", `{"paymentIntentId": "`+pi.PaymentIntentID+`"}`)
	if r.Status != 409 || r.Error.Type != "conflict" || len(e.rec.Calls()) != 0 {
		t.Fatalf("refund of pending payment: %s", r.Raw)
	}

	e.succeed(pi.PaymentID)
	var rf paygate.CreatedRefund
	r = e.do("POST", "/api/payments/refund", `{"paymentIntentId": "`+pi.PaymentIntentID+`", "amount": "5.00", "reason": "requested_by_customer"}`).must(t, 201, &rf)
	if r.Message != "Refund created" || rf.Amount != 500 || rf.PaymentID != pi.PaymentID || !strings.HasPrefix(rf.RefundID, "re_") {
		t.Fatalf("refund = %+v", rf)
	}
	calls := e.rec.Calls()
	if len(calls) != 1 || calls[0].Path != "/v1/refunds" {
		t.Fatalf("calls = %+v", calls)
	}
	wantForm(t, calls[0], map[string]string{"amount": "500", "payment_intent": pi.PaymentIntentID, "reason": "requested_by_customer",
		"metadata[paygate_payment_id]": pi.PaymentID})
	if !strings.HasPrefix(calls[0].IdempotencyKey, "paygate:"+pi.PaymentID+":refund:rf_") || calls[0].Form.Get("metadata[paygate_refund_id]") == "" {
		t.Errorf("refund idempotency key %q, form %v", calls[0].IdempotencyKey, calls[0].Form)
	}
	var p paygate.PaymentWithHistory
	e.do("GET", "/api/payments/"+pi.PaymentID, "").must(t, 200, &p)
	if p.AmountRefunded != 500 || p.Status != paygate.StatusPartiallyRefunded || len(p.Refunds) != 1 {
		t.Fatalf("after partial refund: %+v", p.Payment)
	}

	// More than what remains: 400 naming amount, before Stripe is called.
	e.rec.Reset()
	r = e.do("POST", "/api/payments/refund", `{"paymentIntentId": "`+pi.PaymentIntentID+`", "amount": "15.00"}`)
	if r.Status != 400 || r.param() != "amount" || len(e.rec.Calls()) != 0 {
		t.Fatalf("over-refund: %s (calls %d)", r.Raw, len(e.rec.Calls()))
	}
	// No amount: the whole remaining 14.99.
	e.do("POST", "/api/payments/refund", `{"paymentIntentId": "`+pi.PaymentIntentID+`"}`).must(t, 201, &rf)
	if rf.Amount != 1499 {
		t.Fatalf("full refund amount = %d", rf.Amount)
	}
	e.do("GET", "/api/payments/"+pi.PaymentID, "").must(t, 200, &p)
	if p.AmountRefunded != 1999 || p.Status != paygate.StatusRefunded || len(p.History) != 3 {
		t.Fatalf("after full refund: %+v, %d history rows", p.Payment, len(p.History))
	}
	r = e.do("POST", "/api/payments/refund", `{"paymentIntentId": "`+pi.PaymentIntentID+`", "amount": "0.01"}`)
	if r.Status != 409 {
		t.Fatalf("refund of refunded payment: %s", r.Raw)
	}
	unknown := e.do("POST", "/api/payments/refund", `{"paymentIntentId": "pi_unknown"}`)
	if unknown.Status != 404 {
		t.Fatalf("refund of unknown intent: %s", unknown.Raw)
	}
}

// Concurrent refunds can never together exceed the payment: the guard runs
// under the payment's row lock.
func TestConcurrentRefundsNeverOverRefund(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pi := createIntent(t, e, "19.99")
	e.succeed(pi.PaymentID)
	e.rec.Reset()
	var wg sync.WaitGroup
	statuses := make(chan int, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- e.do("POST", "/api/payments/refund", `{"paymentIntentId": "`+pi.PaymentIntentID+`", "amount": "5.00"}`).Status
		}()
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[201] != 3 || count[400] != 7 || len(e.rec.Calls()) != 3 {
		t.Fatalf("statuses %v, stripe calls %d; want 3×201, 7×400, 3 calls", count, len(e.rec.Calls()))
	}
	p, _ := e.store.GetPayment(context.Background(), pi.PaymentID)
	if p.AmountRefunded != 1500 || p.Status != paygate.StatusPartiallyRefunded {
		t.Fatalf("payment = %+v", p)
	}
}

func TestListAndHistoryEndpoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, createIntent(t, e, "1.00").PaymentID)
	}
	e.do("POST", "/api/payments/generate-url", `{"amount": 2, "customerEmail": "x@example.com"}`).must(t, 201, nil)
	e.succeed(ids[0])

	var page paygate.Page[paygate.Payment]
	e.do("GET", "/api/payments?limit=2", "").must(t, 200, &page)
	if page.Total != 6 || len(page.Items) != 2 || page.Limit != 2 || page.NextCursor == nil {
		t.Fatalf("page 1 = %+v", page)
	}
	var next paygate.Page[paygate.Payment]
	e.do("GET", "/api/payments?limit=2&cursor="+url.QueryEscape(*page.NextCursor), "").must(t, 200, &next)
	if len(next.Items) != 2 || next.Items[0].ID == page.Items[1].ID {
		t.Fatalf("page 2 = %+v", next)
	}
	e.do("GET", "/api/payments?status=succeeded", "").must(t, 200, &page)
	if page.Total != 1 || page.Items[0].ID != ids[0] || page.Limit != 50 {
		t.Fatalf("status filter = %+v", page)
	}
	e.do("GET", "/api/payments?method=link&customerEmail=x@example.com", "").must(t, 200, &page)
	if page.Total != 1 || page.Items[0].Method != paygate.MethodLink {
		t.Fatalf("method filter = %+v", page)
	}
	e.do("GET", "/api/payments?limit=1000", "").must(t, 200, &page)
	if page.Limit != 100 {
		t.Fatalf("limit not clamped: %d", page.Limit)
	}
	e.do("GET", "/api/payments?createdFrom=2000-01-01T00:00:00Z&createdTo=2000-01-02T00:00:00Z", "").must(t, 200, &page)
	if page.Total != 0 || page.Items == nil || page.NextCursor != nil {
		t.Fatalf("empty range = %+v", page)
	}

	var hist paygate.Page[paygate.HistoryEntry]
	e.do("GET", "/api/payments/history?eventType=payment_created", "").must(t, 200, &hist)
	if hist.Total != 6 {
		t.Fatalf("history total = %d", hist.Total)
	}
	e.do("GET", "/api/payments/history?paymentId="+ids[2], "").must(t, 200, &hist)
	if hist.Total != 1 || hist.Items[0].PaymentID != ids[2] || hist.Items[0].Source != "api" {
		t.Fatalf("history by payment = %+v", hist)
	}
}

func TestUnknownRouteAndMethod(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do("GET", "/api/nope", "")
	if r.Status != 404 || r.Error.Type != "not_found" {
		t.Errorf("unknown route: %s", r.Raw)
	}
	r = e.do("DELETE", "/api/payments/refund", "")
	if r.Status != 405 || !strings.Contains(r.Header.Get("Allow"), "POST") {
		t.Errorf("wrong method: %d %s allow=%q", r.Status, r.Raw, r.Header.Get("Allow"))
	}
	r = e.do("PUT", "/api/payments/pay_x", "")
	if r.Status != 405 || !strings.Contains(r.Header.Get("Allow"), "GET") {
		t.Errorf("wrong method on payment: %d %s", r.Status, r.Raw)
	}
	r = e.do("GET", "/api/health/live", "", "X-Request-Id", "abc-123")
	if r.Header.Get("X-Request-Id") != "abc-123" || !strings.Contains(string(r.Data), "alive") {
		t.Errorf("live: %s %v", r.Raw, r.Header)
	}
	if r := e.do("GET", "/api/health/ready", ""); r.Status != http.StatusOK {
		t.Errorf("ready: %s", r.Raw)
	}
}
