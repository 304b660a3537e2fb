package paygate_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/internal/apitest"
)

// FuzzCreateBodies sends arbitrary bodies to every creating endpoint: none
// may answer 5xx (Stripe answering through stripe-mock is fine).
func FuzzCreateBodies(f *testing.F) {
	for _, s := range []string{
		`{"amount": 5}`, `{"amount": "19.99", "currency": "jpy"}`, `{"amount": 1e2, "metadata": {"a": "b"}}`,
		`{"amount": 5, "successUrl": "https://a.example", "cancelUrl": "https://b.example"}`,
		`{"paymentIntentId": "pi_123", "amount": "1.00"}`, `{"amount": "\u0000"}`, `{"metadata": {"\u0000": 1}}`,
		`{"amount": 5, "quantity": 99999999999999999999}`, `{"amount": -0.0}`, `{"amount": 5, "productName": "\ud800"}`,
		`[`, `{"amount": 5, "customerEmail": "a@b"}`, `{"amount": 5, "currency": "KWD", "description": "x"}`,
	} {
		f.Add(s)
	}
	e := newEnv(f)
	paths := []string{"/api/payments/generate-url", "/api/payments/payment-intent", "/api/payments/checkout-session", "/api/payments/refund"}
	f.Fuzz(func(t *testing.T, body string) {
		for _, p := range paths {
			postNo5xx(t, e.srv.URL+p, body, "Authorization", "Bearer "+testAPIKey)
		}
	})
}

// FuzzSignedWebhooks sends arbitrary payloads, validly signed, to the
// webhook endpoint: none may answer 5xx (Stripe would resend it forever).
func FuzzSignedWebhooks(f *testing.F) {
	for _, s := range []string{
		string(stripeEventJSON("evt_f1", "payment_intent.succeeded", "2023-10-16", piObject("pi_f1", "succeeded", 100, "pay_f1", "ch_f1"))),
		string(stripeEventJSON("evt_f2", "charge.refunded", "2023-10-16", chargeObject("ch_f1", "pi_f1", 100, 50, "pay_f1"))),
		string(stripeEventJSON("evt_f3", "checkout.session.completed", "2020-08-27", sessionObject("cs_f", "pi_f1", "plink_f", "paid", "complete", 100, ""))),
		string(stripeEventJSON("evt_f4", "charge.refund.updated", "2023-10-16", refundObject("re_f", "ch_f1", "pi_f1", "failed", 10, nil))),
		`{"id": "evt_x", "type": "charge.refunded", "data": {"object": {"id": "ch_1", "amount_refunded": -5}}}`,
		`{"id": "evt_y", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1", "latest_charge": {"id": 5}}}}`,
		`{"id": "evt_z", "type": "charge.dispute.created", "data": {"object": {"id": "dp_1", "amount": 1e30}}}`,
	} {
		f.Add(s)
	}
	e := newEnv(f, withWebhookSecrets(whsecNew))
	// The payment the seed events name, so that they apply.
	e.webhookPayment(paygate.MethodIntent, 100, func(q *paygate.Payment) { q.ID, q.PaymentIntentID = "pay_f1", "pi_f1" })
	f.Fuzz(func(t *testing.T, body string) {
		postNo5xx(t, e.srv.URL+"/api/webhooks/stripe", body, "Stripe-Signature", signed([]byte(body), whsecNew, time.Now()))
	})
}

// postNo5xx posts body with the headers (name, value pairs) and fails on a
// 5xx answer.
func postNo5xx(t *testing.T, url, body string, hdr ...string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		t.Fatalf("POST %s %q: %d %s", url, body, resp.StatusCode, raw)
	}
	if err := apitest.CheckResponse(req, resp.StatusCode, resp.Header, raw); err != nil {
		t.Fatalf("POST %s %q: %v\n%s", url, body, err, raw)
	}
}
