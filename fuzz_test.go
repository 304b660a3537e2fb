package paygate_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
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
			req, _ := http.NewRequest("POST", e.srv.URL+p, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+testAPIKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				t.Fatalf("POST %s %q: %d %s", p, body, resp.StatusCode, raw)
			}
		}
	})
}
