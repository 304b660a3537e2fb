package paygate_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/numedapp/paygate"
)

type badCase struct {
	name, method, path, body string
	status                   int
	param                    string
}

// commonBodyCases are the bad bodies every creating POST refuses.
func commonBodyCases(path string) []badCase {
	return []badCase{
		{"empty body", "POST", path, "", 400, "body"},
		{"not JSON", "POST", path, "amount=5", 400, "body"},
		{"truncated JSON", "POST", path, `{"amount": 5`, 400, "body"},
		{"array body", "POST", path, `[1,2]`, 400, "body"},
		{"string body", "POST", path, `"hello"`, 400, "body"},
		{"trailing data", "POST", path, `{"amount": 5} {}`, 400, "body"},
		{"unknown field", "POST", path, `{"amount": 5, "amout": 5}`, 400, "amout"},
		{"body over limit", "POST", path, `{"description": "` + strings.Repeat("x", 70<<10) + `"}`, 413, "body"},
	}
}

// amountCases are the bad amounts every amount-taking POST refuses.
func amountCases(path, extra string) []badCase {
	b := func(amount string) string { return `{"amount": ` + amount + extra + `}` }
	return []badCase{
		{"missing amount", "POST", path, `{"currency": "usd"` + extra + `}`, 400, "amount"},
		{"amount bool", "POST", path, b(`true`), 400, "amount"},
		{"amount object", "POST", path, b(`{"v": 1}`), 400, "amount"},
		{"amount zero", "POST", path, b(`0`), 400, "amount"},
		{"amount negative", "POST", path, b(`-5`), 400, "amount"},
		{"amount too precise", "POST", path, b(`19.999`), 400, "amount"},
		{"amount huge", "POST", path, b(`"1e12"`), 400, "amount"},
		{"amount exponent trick", "POST", path, b(`"1e-3"`), 400, "amount"},
		{"amount NaN", "POST", path, b(`"NaN"`), 400, "amount"},
		{"amount Infinity", "POST", path, b(`"Infinity"`), 400, "amount"},
		{"amount words", "POST", path, b(`"ten"`), 400, "amount"},
		{"jpy with decimals", "POST", path, `{"amount": 10.5, "currency": "jpy"` + extra + `}`, 400, "amount"},
		{"kwd last digit", "POST", path, `{"amount": "1.234", "currency": "kwd"` + extra + `}`, 400, "amount"},
		{"unknown currency", "POST", path, `{"amount": 5, "currency": "xyz"` + extra + `}`, 400, "currency"},
		{"currency number", "POST", path, `{"amount": 5, "currency": 840` + extra + `}`, 400, "currency"},
		{"bad email", "POST", path, `{"amount": 5, "customerEmail": "not-an-email"` + extra + `}`, 400, "customerEmail"},
		{"email with name", "POST", path, `{"amount": 5, "customerEmail": "Bob <b@example.com>"` + extra + `}`, 400, "customerEmail"},
		{"metadata not object", "POST", path, `{"amount": 5, "metadata": "x"` + extra + `}`, 400, "metadata"},
		{"metadata number value", "POST", path, `{"amount": 5, "metadata": {"orderId": 5}` + extra + `}`, 400, "metadata.orderId"},
		{"metadata reserved key", "POST", path, `{"amount": 5, "metadata": {"paygate_payment_id": "x"}` + extra + `}`, 400, "metadata.paygate_payment_id"},
		{"metadata long value", "POST", path, `{"amount": 5, "metadata": {"k": "` + strings.Repeat("v", 501) + `"}` + extra + `}`, 400, "metadata.k"},
		{"metadata long key", "POST", path, `{"amount": 5, "metadata": {"` + strings.Repeat("k", 41) + `": "v"}` + extra + `}`, 400, "metadata"},
		{"metadata too many keys", "POST", path, `{"amount": 5, "metadata": {` + manyKeys(50) + `}` + extra + `}`, 400, "metadata"},
		{"metadata NUL value", "POST", path, `{"amount": 5, "metadata": {"k": "a\u0000b"}` + extra + `}`, 400, "metadata.k"},
		{"metadata control key", "POST", path, `{"amount": 5, "metadata": {"k\u0007": "v"}` + extra + `}`, 400, "metadata"},
		{"description NUL", "POST", path, `{"amount": 5, "description": "a\u0000b"` + extra + `}`, 400, "description"},
		{"description too long", "POST", path, `{"amount": 5, "description": "` + strings.Repeat("d", 1001) + `"` + extra + `}`, 400, "description"},
	}
}

func manyKeys(n int) string {
	var parts []string
	for i := 0; i < n; i++ {
		parts = append(parts, fmt.Sprintf(`"k%d": "v"`, i))
	}
	return strings.Join(parts, ", ")
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// One succeeded payment to refund, so refund cases reach the amount checks.
	pi := createIntent(t, e, "10.00")
	e.succeed(pi.PaymentID)
	refundBody := func(rest string) string { return `{"paymentIntentId": "` + pi.PaymentIntentID + `"` + rest + `}` }

	var cases []badCase
	for _, path := range []string{"/api/payments/generate-url", "/api/payments/payment-intent", "/api/payments/checkout-session", "/api/payments/refund"} {
		cases = append(cases, commonBodyCases(path)...)
	}
	checkoutURLs := `, "successUrl": "https://a.example/ok", "cancelUrl": "https://a.example/no"`
	cases = append(cases, amountCases("/api/payments/generate-url", "")...)
	cases = append(cases, amountCases("/api/payments/payment-intent", "")...)
	cases = append(cases, amountCases("/api/payments/checkout-session", checkoutURLs)...)
	cases = append(cases,
		badCase{"quantity zero", "POST", "/api/payments/generate-url", `{"amount": 5, "quantity": 0}`, 400, "quantity"},
		badCase{"quantity fraction", "POST", "/api/payments/generate-url", `{"amount": 5, "quantity": 1.5}`, 400, "quantity"},
		badCase{"quantity string", "POST", "/api/payments/generate-url", `{"amount": 5, "quantity": "2"}`, 400, "quantity"},
		badCase{"amount × quantity over max", "POST", "/api/payments/generate-url", `{"amount": 999999, "quantity": 2}`, 400, "amount"},
		badCase{"relative successUrl", "POST", "/api/payments/generate-url", `{"amount": 5, "successUrl": "/thanks"}`, 400, "successUrl"},
		badCase{"javascript successUrl", "POST", "/api/payments/generate-url", `{"amount": 5, "successUrl": "javascript:alert(1)"}`, 400, "successUrl"},
		badCase{"productName too long", "POST", "/api/payments/generate-url", `{"amount": 5, "productName": "` + strings.Repeat("p", 251) + `"}`, 400, "productName"},
		badCase{"productName control char", "POST", "/api/payments/generate-url", `{"amount": 5, "productName": "a\u0000b"}`, 400, "productName"},
		badCase{"intent quantity is unknown", "POST", "/api/payments/payment-intent", `{"amount": 5, "quantity": 2}`, 400, "quantity"},
		badCase{"missing successUrl", "POST", "/api/payments/checkout-session", `{"amount": 5, "cancelUrl": "https://a.example/no"}`, 400, "successUrl"},
		badCase{"missing cancelUrl", "POST", "/api/payments/checkout-session", `{"amount": 5, "successUrl": "https://a.example/ok"}`, 400, "cancelUrl"},
		badCase{"relative cancelUrl", "POST", "/api/payments/checkout-session", `{"amount": 5, "successUrl": "https://a.example/ok", "cancelUrl": "no"}`, 400, "cancelUrl"},
		badCase{"ftp successUrl", "POST", "/api/payments/checkout-session", `{"amount": 5, "successUrl": "ftp://a.example/ok", "cancelUrl": "https://a.example/no"}`, 400, "successUrl"},
		badCase{"successUrl number", "POST", "/api/payments/checkout-session", `{"amount": 5, "successUrl": 5, "cancelUrl": "https://a.example/no"}`, 400, "successUrl"},
		badCase{"missing paymentIntentId", "POST", "/api/payments/refund", `{"amount": 5}`, 400, "paymentIntentId"},
		badCase{"malformed paymentIntentId", "POST", "/api/payments/refund", `{"paymentIntentId": "pay_123"}`, 400, "paymentIntentId"},
		badCase{"paymentIntentId number", "POST", "/api/payments/refund", `{"paymentIntentId": 5}`, 400, "paymentIntentId"},
		badCase{"refund bad reason", "POST", "/api/payments/refund", refundBody(`, "reason": "because"`), 400, "reason"},
		badCase{"refund zero", "POST", "/api/payments/refund", refundBody(`, "amount": 0`), 400, "amount"},
		badCase{"refund negative", "POST", "/api/payments/refund", refundBody(`, "amount": -1`), 400, "amount"},
		badCase{"refund too precise", "POST", "/api/payments/refund", refundBody(`, "amount": "1.001"`), 400, "amount"},
		badCase{"refund above remaining", "POST", "/api/payments/refund", refundBody(`, "amount": "10.01"`), 400, "amount"},
		badCase{"refund huge", "POST", "/api/payments/refund", refundBody(`, "amount": "1e15"`), 400, "amount"},

		badCase{"intent id malformed", "GET", "/api/payments/payment-intent/abc", "", 400, "id"},
		badCase{"intent id sql", "GET", "/api/payments/payment-intent/pi_1'%20OR%201=1", "", 400, "id"},
		badCase{"intent unknown", "GET", "/api/payments/payment-intent/pi_unknown", "", 404, ""},
		badCase{"session id malformed", "GET", "/api/payments/payment-intent/x/session", "", 400, "id"},
		badCase{"session unknown", "GET", "/api/payments/payment-intent/pi_unknown/session", "", 404, ""},
		badCase{"payment id malformed", "GET", "/api/payments/123", "", 400, "id"},
		badCase{"payment id too long", "GET", "/api/payments/pay_" + strings.Repeat("a", 80), "", 400, "id"},
		badCase{"payment unknown", "GET", "/api/payments/pay_unknown", "", 404, ""},

		badCase{"limit zero", "GET", "/api/payments?limit=0", "", 400, "limit"},
		badCase{"limit negative", "GET", "/api/payments?limit=-1", "", 400, "limit"},
		badCase{"limit text", "GET", "/api/payments?limit=ten", "", 400, "limit"},
		badCase{"limit float", "GET", "/api/payments?limit=1.5", "", 400, "limit"},
		badCase{"offset negative", "GET", "/api/payments?offset=-1", "", 400, "offset"},
		badCase{"offset huge", "GET", "/api/payments?offset=99999999999999999999", "", 400, "offset"},
		badCase{"status bogus", "GET", "/api/payments?status=bogus", "", 400, "status"},
		badCase{"method bogus", "GET", "/api/payments?method=cash", "", 400, "method"},
		badCase{"createdFrom malformed", "GET", "/api/payments?createdFrom=yesterday", "", 400, "createdFrom"},
		badCase{"createdTo malformed", "GET", "/api/payments?createdTo=2024-13-01", "", 400, "createdTo"},
		badCase{"range reversed", "GET", "/api/payments?createdFrom=2024-02-01T00:00:00Z&createdTo=2024-01-01T00:00:00Z", "", 400, "createdTo"},
		// Go's zero time means "not given" to the filters: a bound before
		// 1970 is refused rather than ignored.
		badCase{"createdTo in year 1", "GET", "/api/payments?createdTo=0001-01-01T00:00:00Z", "", 400, "createdTo"},
		badCase{"createdFrom before 1970", "GET", "/api/payments?createdFrom=1969-12-31T23:59:59Z", "", 400, "createdFrom"},
		badCase{"logs to in year 1", "GET", "/api/logs/logs?to=0001-01-01T00:00:00Z", "", 400, "to"},
		badCase{"logs from before 1970", "GET", "/api/logs/logs?from=0001-01-01T00:00:00Z", "", 400, "from"},
		badCase{"cursor malformed", "GET", "/api/payments?cursor=%%%", "", 400, "query"},
		badCase{"cursor garbage", "GET", "/api/payments?cursor=bm9wZQ", "", 400, "cursor"},
		badCase{"cursor with NUL id", "GET", "/api/payments?cursor=" + nulCursor(), "", 400, "cursor"},
		badCase{"customerEmail NUL", "GET", "/api/payments?customerEmail=a%00b", "", 400, "customerEmail"},
		badCase{"successUrl NUL", "POST", "/api/payments/generate-url", `{"amount": 5, "successUrl": "https://a.example/\u0000"}`, 400, "successUrl"},
		badCase{"history limit zero", "GET", "/api/payments/history?limit=0", "", 400, "limit"},
		badCase{"history paymentId malformed", "GET", "/api/payments/history?paymentId=x", "", 400, "paymentId"},
		badCase{"history intent malformed", "GET", "/api/payments/history?paymentIntentId=x", "", 400, "paymentIntentId"},
		badCase{"history eventType bogus", "GET", "/api/payments/history?eventType=bogus", "", 400, "eventType"},
		badCase{"history cursor malformed", "GET", "/api/payments/history?cursor=abc", "", 400, "cursor"},
	)

	before, err := e.store.ListPayments(context.Background(), paygate.PaymentFilter{PageParams: paygate.PageParams{Limit: 100}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path+" "+tc.name, func(t *testing.T) {
			e.rec.Reset()
			r := e.do(tc.method, tc.path, tc.body)
			if r.Status != tc.status || r.param() != tc.param {
				t.Fatalf("got %d param %q, want %d param %q: %s", r.Status, r.param(), tc.status, tc.param, truncateStr(r.Raw, 300))
			}
			if r.Error == nil || r.Error.RequestID == "" || r.Message == "" {
				t.Fatalf("error envelope incomplete: %s", truncateStr(r.Raw, 300))
			}
			if calls := e.rec.Calls(); len(calls) != 0 && tc.status != 404 {
				t.Fatalf("Stripe was called for bad input: %+v", calls)
			}
		})
	}
	after, err := e.store.ListPayments(context.Background(), paygate.PaymentFilter{PageParams: paygate.PageParams{Limit: 100}})
	if err != nil {
		t.Fatal(err)
	}
	if after.Total != before.Total || after.Items[0].AmountRefunded != 0 || after.Items[0].Status != paygate.StatusSucceeded {
		t.Fatalf("bad input changed what is stored: before %d payments, after %d: %+v", before.Total, after.Total, after.Items[0])
	}
}

func nulCursor() string {
	return base64.RawURLEncoding.EncodeToString([]byte("2026-01-01T00:00:00Z|pay_\x00x"))
}

func truncateStr(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
