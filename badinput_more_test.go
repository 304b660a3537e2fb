package paygate_test

// Bad input on the HTTP endpoints, found by a review (API.md §1: bad input gets a clear
// 4xx in the envelope that names the field; unknown routes a 404 and wrong
// methods a 405, in the envelope; secrets never appear in a system log row
// or a list response; every response one that docs/openapi.json allows).
// Each test failed before the fix its comment describes.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/internal/apitest"
)

// rawResp is a response read without the envelope checks of env.do (which
// would stop at the first non-envelope body).
type rawResp struct {
	status int
	header http.Header
	body   string
	// openapi is the result of checking the response against openapi.json.
	openapi error
}

// raw sends a request with the test API key, never following redirects.
func (e *env) raw(t *testing.T, method, path, body string, hdr ...string) rawResp {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+testAPIKey)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return rawResp{status: resp.StatusCode, header: resp.Header, body: string(b),
		openapi: apitest.CheckResponse(req, resp.StatusCode, resp.Header, b)}
}

// isEnvelope reports whether body is the error envelope with code status.
func isEnvelope(body string, status int) bool {
	var env struct {
		Status *bool `json:"status"`
		Code   int   `json:"code"`
		Error  *struct {
			Type string `json:"type"`
		} `json:"error"`
	}
	return json.Unmarshal([]byte(body), &env) == nil && env.Status != nil && !*env.Status && env.Code == status && env.Error != nil
}

// TestWrongMethodOnCreatingRoutesIs405: API.md §1 says "wrong
// methods a 405, in the envelope" (decisions.md: "A 405 lists the allowed
// methods in Allow"). The creating routes /api/payments/refund,
// /generate-url, /payment-intent and /checkout-session are POST-only, but a
// GET (or HEAD) of them is taken by the pattern "GET /api/payments/{id}"
// (handler.go, Routes) with id "refund", and answered 400 "id must be a
// payment id (pay_…)" naming id — a field the caller never sent; a PUT is
// a 405 whose Allow says GET is allowed there. openapi.json has no GET
// operation on these paths, so the 400 is a response the contract does not
// allow (apitest: "no route in openapi.json, yet answered 400").
func TestWrongMethodOnCreatingRoutesIs405(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, path := range []string{"/api/payments/refund", "/api/payments/generate-url", "/api/payments/payment-intent", "/api/payments/checkout-session"} {
		for _, method := range []string{"GET", "HEAD", "PUT"} {
			r := e.raw(t, method, path, "")
			allow := r.header.Get("Allow")
			if r.status != 405 || allow != "POST" {
				t.Errorf("%s %s: got %d (Allow %q), want 405 with Allow: POST: %s", method, path, r.status, allow, truncateStr(r.body, 200))
				continue
			}
			if method != "HEAD" && !isEnvelope(r.body, 405) {
				t.Errorf("%s %s: 405 not in the envelope: %s", method, path, r.body)
			}
			if method != "HEAD" && r.openapi != nil { // a HEAD answer has no body to check
				t.Errorf("%s %s: %v", method, path, r.openapi)
			}
		}
	}
}

// TestUncleanPathsAnswerInTheEnvelope: API.md §1: "Every
// response, errors included, uses the envelope … Unknown routes are a 404
// … in the envelope." A path with an empty segment, "." or ".." (a client
// joining a base URL and a path carelessly: "/api/" + "/payments/refund")
// is answered by net/http's ServeMux with a 307 redirect whose body is
// text/html (GET) or empty (POST) — not the envelope, and a status
// openapi.json documents for no operation. dispatch (handler.go) only
// intercepts requests whose pattern is "", and ServeMux returns the cleaned
// route's pattern together with its redirect handler, so the redirect goes
// out as is. (A client that follows the 307 re-sends the POST, refund
// included, to the cleaned path.)
func TestUncleanPathsAnswerInTheEnvelope(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/payments/./history", ""},
		{"GET", "/api//payments", ""},
		{"GET", "/api/payments/x/../history", ""},
		{"POST", "/api//payments/refund", `{"paymentId": "pay_abc", "amount": "1.00"}`},
		{"POST", "/api/payments//payment-intent", `{"amount": 5}`},
	} {
		r := e.raw(t, c.method, c.path, c.body)
		if r.status < 400 || r.status >= 500 || !isEnvelope(r.body, r.status) {
			t.Errorf("%s %s: got %d (Location %q), want a 4xx in the envelope: %q", c.method, c.path, r.status, r.header.Get("Location"), truncateStr(r.body, 200))
		}
		if r.openapi != nil {
			t.Errorf("%s %s: %v", c.method, c.path, r.openapi)
		}
	}
}

// TestSecretInPathNeverReachesTheSystemLog: API.md §1: "Secrets
// (… client secrets) never appear in any log line, system log row, error
// message or list response", and decisions.md: redaction masks credentials
// by shape (pi_…_secret_…) "in log messages, string attributes, system
// log rows". A merchant who passes a PaymentIntent's client secret where
// its id goes (GET /api/payments/payment-intent/{clientSecret}/session —
// the two look alike, and intentIDPattern accepts the secret's shape) gets
// a 404, but the access row observe writes (syslog.go, observe) stores
// r.URL.Path unredacted in both Path and Message, and GET /api/logs/logs
// then serves it to anyone with an API key.
func TestSecretInPathNeverReachesTheSystemLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withSystemLogs(1024))
	runGateway(t, e.gw)
	const secret = "pi_3Review1Input_secret_DISTINCTpathSECRET"
	for _, path := range []string{
		"/api/payments/payment-intent/" + secret,
		"/api/payments/payment-intent/" + secret + "/session",
	} {
		r := e.do("GET", path, "", "X-Request-Id", "req-review-secret-path")
		if r.Status != 404 {
			t.Fatalf("GET %s: %d %s", path, r.Status, r.Raw)
		}
	}
	rows := e.logsWhere(t, paygate.SystemLogFilter{RequestID: "req-review-secret-path"}, 2)
	if len(rows) < 2 {
		t.Fatalf("the requests were not logged: %+v", rows)
	}
	listed := e.do("GET", "/api/logs/logs?requestId=req-review-secret-path", "").must(t, 200, nil)
	rowText, _ := json.Marshal(rows)
	for where, text := range map[string]string{"system log rows": string(rowText), "GET /api/logs/logs": listed.Raw} {
		if strings.Contains(text, "DISTINCTpathSECRET") {
			t.Errorf("%s contain the client secret: %s", where, truncateStr(text, 600))
		}
	}
}

// TestRepeatedMetadataKeyIsRefused: decisions.md (HTTP): "a field
// given twice" is a 400, because encoding/json lets the last of a repeated
// name win where a proxy or an audit log in front may read the first
// (strictbody_test.go: a refund of 1.00 that refunded 9.00). The rule is
// applied to the body's top level only (exactFields, handler.go); metadata
// is decoded by Metadata.UnmarshalJSON (validate.go) into a
// map[string]json.RawMessage, where the last value silently wins. So
// {"metadata": {"orderId": "1001", "orderId": "1002"}} creates a payment
// whose Stripe objects, stored row and callbacks say order 1002, while any
// first-wins reader in front logged order 1001 — the merchant fulfils the
// wrong order from the callback.
func TestRepeatedMetadataKeyIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const meta = `"metadata": {"orderId": "1001", "orderId": "1002"}`
	for _, c := range []struct{ path, body string }{
		{"/api/payments/payment-intent", `{"amount": 5, ` + meta + `}`},
		{"/api/payments/generate-url", `{"amount": 5, ` + meta + `}`},
		{"/api/payments/checkout-session", `{"amount": 5, "successUrl": "https://a.example/ok", "cancelUrl": "https://a.example/no", ` + meta + `}`},
	} {
		e.rec.Reset()
		r := e.raw(t, "POST", c.path, c.body)
		if r.status != 400 || !strings.Contains(r.body, `"param":"metadata.orderId"`) {
			t.Errorf("POST %s with metadata.orderId given twice: got %d, want 400 naming metadata.orderId: %s", c.path, r.status, truncateStr(r.body, 300))
		}
		if calls := e.rec.Calls(); len(calls) != 0 {
			t.Errorf("POST %s: Stripe was called for an ambiguous body; metadata sent: %v", c.path, calls[len(calls)-1].Form)
		}
	}
	page, err := e.store.ListPayments(context.Background(), paygate.PaymentFilter{PageParams: paygate.PageParams{Limit: 10}})
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != 0 {
		t.Errorf("ambiguous bodies created %d payments (first metadata %v)", page.Total, page.Items[0].Metadata)
	}
}

// TestRepeatedQueryFilterWithABadValueIsRefused: API.md §1: "A
// filter with an invalid value (status=bogus, a malformed date) is a 400
// naming it." When a filter is repeated, the handlers read only its first
// value (url.Values.Get in handleListPayments, handleListEvents,
// handleListCallbacks, handleLogs, handleHistory, pageParams), so an
// invalid second value is silently dropped and the list is answered 200 —
// filtered by a value the caller may not have meant (a proxy or another
// framework that takes the last value reads the query otherwise). The same
// body rule is a 400 (decisions.md: a field given twice).
func TestRepeatedQueryFilterWithABadValueIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, c := range []struct{ path, param string }{
		{"/api/payments?status=succeeded&status=bogus", "status"},
		{"/api/payments?method=link&method=cash", "method"},
		{"/api/payments?createdFrom=2024-01-01T00:00:00Z&createdFrom=yesterday", "createdFrom"},
		{"/api/payments?limit=5&limit=0", "limit"},
		{"/api/payments?offset=0&offset=-1", "offset"},
		{"/api/webhooks/events?status=processed&status=bogus", "status"},
		{"/api/webhooks/callbacks?success=true&success=maybe", "success"},
		{"/api/payments/history?eventType=payment_created&eventType=bogus", "eventType"},
		{"/api/logs/logs?level=warn&level=debug", "level"},
	} {
		r := e.do("GET", c.path, "")
		if r.Status != 400 || r.param() != c.param {
			t.Errorf("GET %s: got %d param %q, want 400 naming %s: %s", c.path, r.Status, r.param(), c.param, truncateStr(r.Raw, 200))
		}
	}
}

// TestAccessRowNamesTheCaller (outside bad input proper, found
// while reading the access rows above): decisions.md, System logs: "Rows:
// one per API request (http: method, path, status, duration, route, caller
// id)". observe (syslog.go) writes fields.caller from CallerFrom(r), but r
// there is observe's own request: requireAuth (auth.go) puts the caller in
// the context of a new request (r.WithContext) that it hands on, which
// observe never sees. So every access row says "caller": "" — an operator
// cannot tell which API key made a request (a leaked key's use, say).
func TestAccessRowNamesTheCaller(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withSystemLogs(1024))
	runGateway(t, e.gw)
	e.do("GET", "/api/payments", "", "X-Request-Id", "req-review-caller").must(t, 200, nil)
	rows := e.logsWhere(t, paygate.SystemLogFilter{RequestID: "req-review-caller"}, 1)
	if len(rows) != 1 {
		t.Fatalf("access rows: %+v", rows)
	}
	var fields map[string]any
	if err := json.Unmarshal(rows[0].Fields, &fields); err != nil {
		t.Fatal(err)
	}
	if c, _ := fields["caller"].(string); !strings.HasPrefix(c, "key_") {
		t.Errorf("access row of an authenticated request names caller %q, want the API key's id (key_…): %s", c, rows[0].Fields)
	}
}

// TestNullIsNotAFieldLeftOut: API.md §1: "JSON of the wrong type
// is a 400 naming the field"; openapi.json types every optional request
// field as a non-nullable string (metadata an object of strings, reason an
// enum), with additionalProperties false. decisions.md already refuses null
// for amount ("must not read as a field left out"), but every other field
// takes null as "left out": encoding/json leaves a Go string untouched on
// null, and Metadata.UnmarshalJSON (validate.go) turns a null value into "".
// The request is then carried out — a payment created, a refund made — on a
// body the contract does not allow (the suite's own apitest.CheckRequest
// reports "was accepted, but openapi.json does not allow it"). For a refund,
// {"paymentId": …, "paymentIntentId": null} is carried out although the
// caller's two references cannot be checked against each other.
func TestNullIsNotAFieldLeftOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pi := createIntent(t, e, "10.00")
	e.succeed(pi.PaymentID)
	urls := `"successUrl": "https://a.example/ok", "cancelUrl": "https://a.example/no"`
	for _, c := range []struct{ path, body, param string }{
		{"/api/payments/generate-url", `{"amount": 5, "currency": null}`, "currency"},
		{"/api/payments/generate-url", `{"amount": 5, "productName": null}`, "productName"},
		{"/api/payments/generate-url", `{"amount": 5, "customerEmail": null}`, "customerEmail"},
		{"/api/payments/generate-url", `{"amount": 5, "successUrl": null}`, "successUrl"},
		{"/api/payments/generate-url", `{"amount": 5, "metadata": null}`, "metadata"},
		{"/api/payments/payment-intent", `{"amount": 5, "description": null}`, "description"},
		{"/api/payments/payment-intent", `{"amount": 5, "metadata": {"orderId": null}}`, "metadata.orderId"},
		{"/api/payments/checkout-session", `{"amount": 5, ` + urls + `, "productName": null}`, "productName"},
		{"/api/payments/refund", `{"paymentId": "` + pi.PaymentID + `", "amount": 1, "reason": null}`, "reason"},
		{"/api/payments/refund", `{"paymentId": "` + pi.PaymentID + `", "paymentIntentId": null, "amount": 1}`, "paymentIntentId"},
	} {
		e.rec.Reset()
		r := e.raw(t, "POST", c.path, c.body)
		if r.status != 400 || !strings.Contains(r.body, `"param":"`+c.param+`"`) {
			t.Errorf("POST %s %s: got %d, want 400 naming %s: %s", c.path, c.body, r.status, c.param, truncateStr(r.body, 200))
		}
		if n := len(e.rec.Calls()); n != 0 && r.status < 300 {
			t.Errorf("POST %s %s: carried out (%d Stripe calls)", c.path, c.body, n)
		}
	}
	var p paygate.PaymentWithHistory
	e.do("GET", "/api/payments/"+pi.PaymentID, "").must(t, 200, &p)
	if p.AmountRefunded != 0 {
		t.Errorf("refund bodies with null fields refunded %d", p.AmountRefunded)
	}
}
