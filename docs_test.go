package paygate_test

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/internal/apitest"
)

// getPage fetches a page without an API key and checks the response
// against the OpenAPI document.
func getPage(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := apitest.CheckResponse(resp.Request, resp.StatusCode, resp.Header, body); err != nil {
		t.Error(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

var (
	hrefHashRe = regexp.MustCompile(`href="#([^"]*)"`)
	idRe       = regexp.MustCompile(`\sid="([^"]+)"`)
	routeRe    = regexp.MustCompile(`data-route="([^"]+)"`)
)

func TestDocsPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	status, h, page := getPage(t, e.srv.URL+"/docs")
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /docs: %d %s\n%s", status, h.Get("Content-Type"), e.logs)
	}
	// Every route of the route table is on the page.
	onPage := map[string]bool{}
	for _, m := range routeRe.FindAllStringSubmatch(page, -1) {
		onPage[m[1]] = true
	}
	for _, rt := range e.gw.Routes() {
		if !onPage[rt.Pattern] {
			t.Errorf("route %s is not on the docs page", rt.Pattern)
		}
	}
	// Every in-page link resolves, and ids are unique.
	ids := map[string]int{}
	for _, m := range idRe.FindAllStringSubmatch(page, -1) {
		ids[m[1]]++
	}
	for id, n := range ids {
		if n > 1 {
			t.Errorf("id %q appears %d times", id, n)
		}
	}
	links := hrefHashRe.FindAllStringSubmatch(page, -1)
	if len(links) < 20 {
		t.Fatalf("only %d in-page links", len(links))
	}
	for _, m := range links {
		if ids[m[1]] == 0 {
			t.Errorf("link #%s goes nowhere", m[1])
		}
	}
	// Nothing is loaded from elsewhere: the page works offline.
	for _, bad := range []string{`<link `, `src="http`, `src="//`, `url(http`, `@import`} {
		if strings.Contains(page, bad) {
			t.Errorf("the page loads an external asset (%s)", bad)
		}
	}
	// Both languages, the two entry points, the guides.
	for _, want := range []string{`data-lang="th"`, `ทดสอบชำระเงิน`, `เริ่มใช้งาน`, `Test payment`, `Get started`,
		`id="tp-form"`, `stripe listen --forward-to localhost:8080/api/webhooks/stripe`, `verify.Parse(`, `crypto.timingSafeEqual`,
		`hmac.compare_digest`, `hash_equals`, `Idempotency-Key`, `rate_limited`, `paymentd reconcile`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if _, _, en := getPage(t, e.srv.URL+"/docs?lang=en"); !strings.Contains(en, `<html lang="en" data-lang="en">`) {
		t.Error("?lang=en does not show English first")
	}
}

// The test payment page is offered on a Stripe stand-in and in Stripe's test
// mode, and never with a live key.
func TestDocsTestPaymentModes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		opt      envOpt
		form     bool
		contains string
	}{
		{"stand-in", func(c *paygate.Config) {}, true, `data-mode="sandbox"`},
		{"stripe test mode", func(c *paygate.Config) { c.StripeAPIBase = "https://api.stripe.com" }, true, `data-mode="test"`},
		{"live key", func(c *paygate.Config) { c.StripeSecretKey = "sk_live_123abc" }, false, `not offer test payments`},
		{"restricted live key", func(c *paygate.Config) { c.StripeSecretKey = "rk_live_123abc" }, false, `data-mode="live"`},
		{"no key", func(c *paygate.Config) { c.StripeSecretKey = "" }, false, `data-mode="none"`},
		{"no auth", func(c *paygate.Config) { c.Auth, c.InsecureNoAuth = nil, true }, true, `data-auth="false"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tc.opt)
			_, _, page := getPage(t, e.srv.URL+"/docs")
			if got := strings.Contains(page, `id="tp-form"`); got != tc.form {
				t.Errorf("test payment form offered: %v, want %v", got, tc.form)
			}
			if !strings.Contains(page, tc.contains) {
				t.Errorf("page lacks %q", tc.contains)
			}
			if tc.name == "no auth" && strings.Contains(page, `id="tp-key"`) {
				t.Error("asks for an API key with authentication off")
			}
		})
	}
}
