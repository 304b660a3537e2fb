package paygate_test

import (
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/internal/apitest"
)

// The document is valid OpenAPI 3.1, its examples included.
func TestOpenAPIValid(t *testing.T) {
	t.Parallel()
	doc, err := apitest.Doc()
	if err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	if doc.Webhooks["paygateCallback"] == nil {
		t.Fatal("the callback to the merchant is not described under webhooks")
	}
}

// Every route of the route table is in the document, with the same
// authentication, and every operation in the document is a route.
func TestOpenAPIMatchesRouteTable(t *testing.T) {
	t.Parallel()
	doc, err := apitest.Doc()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	var routes, documented []string
	public := map[string]bool{}
	for _, rt := range e.gw.Routes() {
		routes = append(routes, rt.Pattern)
		public[rt.Pattern] = rt.Public
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			pattern := method + " " + path
			documented = append(documented, pattern)
			isPublic := op.Security != nil && len(*op.Security) == 0
			if p, ok := public[pattern]; ok && p != isPublic {
				t.Errorf("%s: route table says public=%v, openapi.json says public=%v", pattern, p, isPublic)
			}
		}
	}
	sort.Strings(routes)
	sort.Strings(documented)
	if diff := cmp.Diff(routes, documented); diff != "" {
		t.Fatalf("route table vs openapi.json paths (-routes +documented):\n%s", diff)
	}
	// Turning the docs page off removes its route only.
	off := newEnv(t, func(c *paygate.Config) { c.DisableDocs = true })
	var offRoutes []string
	for _, rt := range off.gw.Routes() {
		offRoutes = append(offRoutes, rt.Pattern)
	}
	if slices.Contains(offRoutes, "GET /docs") || len(offRoutes) != len(routes)-1 {
		t.Fatalf("DisableDocs: routes %q", offRoutes)
	}
	if r := off.do("GET", "/docs", ""); r.Status != http.StatusNotFound {
		t.Fatalf("DisableDocs: GET /docs = %d", r.Status)
	}
}

// GET /api/openapi.json serves the document, without a key.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	resp, err := http.Get(e.srv.URL + "/api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || string(body) != string(paygate.OpenAPI()) {
		t.Fatalf("GET /api/openapi.json: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	if err := apitest.CheckResponse(resp.Request, resp.StatusCode, resp.Header, body); err != nil {
		t.Fatal(err)
	}
}

// The validator refuses what the document does not allow, or the hook in
// the test helpers would prove nothing.
func TestOpenAPIValidatorRefuses(t *testing.T) {
	t.Parallel()
	get := func(path string) *http.Request {
		r, _ := http.NewRequest("GET", "http://127.0.0.1:1"+path, nil)
		return r
	}
	h := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	for _, tc := range []struct {
		name   string
		req    *http.Request
		status int
		body   string
	}{
		{"undocumented status", get("/api/payments/config"), 418, `{"status":false,"code":418,"message":"x","data":null,"error":{"type":"internal","param":null,"requestId":"r"}}`},
		{"missing field", get("/api/payments/config"), 200, `{"status":true,"code":200,"message":"OK","data":{"currency":"usd"}}`},
		{"unknown field", get("/api/payments/config"), 200, `{"status":true,"code":200,"message":"OK","data":{"publishableKey":"","currency":"usd","extra":1}}`},
		{"not the envelope", get("/api/health/live"), 200, `{"status":"alive"}`},
		{"wrong error type", get("/api/payments/pay_1"), 404, `{"status":false,"code":404,"message":"x","data":null,"error":{"type":"missing","param":null,"requestId":"r"}}`},
		{"unknown route answered 200", get("/api/nope"), 200, `{}`},
		{"unknown route without the envelope", get("/api/nope"), 404, `{"error":"no"}`},
	} {
		if err := apitest.CheckResponse(tc.req, tc.status, h, []byte(tc.body)); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	post := func() *http.Request {
		r, _ := http.NewRequest("POST", "http://127.0.0.1:1/api/payments/payment-intent", nil)
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	for _, body := range []string{`{"currency":"usd"}`, `{"amount":1,"color":"red"}`, `{"amount":true}`} {
		if err := apitest.CheckRequest(post(), []byte(body)); err == nil {
			t.Errorf("request %s: accepted", body)
		}
	}
	if err := apitest.CheckRequest(post(), []byte(`{"amount":"19.99","currency":"JPY","metadata":{"orderId":"1"}}`)); err != nil {
		t.Errorf("a valid request refused: %v", err)
	}
	ok := `{"status":true,"code":200,"message":"OK","data":{"publishableKey":"pk_test_1","currency":"usd"}}`
	if err := apitest.CheckResponse(get("/api/payments/config"), 200, h, []byte(ok)); err != nil {
		t.Fatalf("a valid response refused: %v", err)
	}
}
