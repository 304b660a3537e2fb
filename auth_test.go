package paygate_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/numedapp/paygate"
)

func TestAuthEveryProtectedRoute(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const wrongKey = "wrong-key-that-must-not-be-logged"
	headers := map[string]string{
		"no header":          "",
		"wrong key":          "Bearer " + wrongKey,
		"malformed":          "Bearer",
		"wrong scheme":       "Basic " + testAPIKey,
		"key without scheme": testAPIKey,
	}
	var protected, public int
	for _, rt := range e.gw.Routes() {
		method, path, _ := strings.Cut(rt.Pattern, " ")
		path = strings.ReplaceAll(path, "{id}", "pi_123")
		body := ""
		if method == "POST" {
			body = `{}`
		}
		if rt.Public {
			public++
			// Not e.do: the OpenAPI document and the docs page are not in the envelope.
			req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
			r, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			if r.StatusCode == 401 {
				t.Errorf("public route %s refused without a key", rt.Pattern)
			}
			continue
		}
		protected++
		for name, h := range headers {
			r := e.do(method, path, body, "Authorization", h)
			if r.Status != 401 || r.Error.Type != "authentication" || r.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s with %s: %d %s", rt.Pattern, name, r.Status, r.Raw)
			}
			if strings.Contains(r.Raw, wrongKey) || strings.Contains(r.Raw, testAPIKey) {
				t.Errorf("%s with %s: response echoes the key", rt.Pattern, name)
			}
		}
		if r := e.do(method, path, body); r.Status == 401 {
			t.Errorf("%s refused the right key", rt.Pattern)
		}
	}
	if protected < 12 || public != 7 {
		t.Fatalf("route table: %d protected, %d public", protected, public)
	}
	if logs := e.logs.String(); strings.Contains(logs, wrongKey) || strings.Contains(logs, testAPIKey) {
		t.Fatal("a key reached the log")
	} else if !strings.Contains(logs, "unknown API key") || !strings.Contains(logs, "unsupported scheme") {
		t.Fatalf("refusals not logged with their reason:\n%s", logs)
	}
}

func TestNewRequiresAuthDecision(t *testing.T) {
	t.Parallel()
	st := &nopStore{}
	_, err := paygate.New(paygate.Config{Store: st})
	if e := paygate.AsError(err); err == nil || e.Param != "Auth" {
		t.Fatalf("New without auth: %v", err)
	}
	if _, err := paygate.New(paygate.Config{Store: st, InsecureNoAuth: true}); err != nil {
		t.Fatalf("explicit opt-out refused: %v", err)
	}
	for _, keys := range [][]string{nil, {"short"}, {"has a space in it!!"}} {
		if _, err := paygate.BearerKeys(keys...); err == nil {
			t.Errorf("BearerKeys(%q) accepted", keys)
		}
	}
	for _, tc := range []struct {
		cfg   paygate.Config
		field string
	}{
		{paygate.Config{InsecureNoAuth: true}, "Store"},
		{paygate.Config{Store: st, InsecureNoAuth: true, StripeSecretKey: "pk_test_wrongkind"}, "StripeSecretKey"},
		{paygate.Config{Store: st, InsecureNoAuth: true, StripePublishableKey: "sk_test_secret"}, "StripePublishableKey"},
		{paygate.Config{Store: st, InsecureNoAuth: true, DefaultCurrency: "xyz"}, "DefaultCurrency"},
		{paygate.Config{Store: st, InsecureNoAuth: true, StripeAPIBase: "not a url"}, "StripeAPIBase"},
	} {
		_, err := paygate.New(tc.cfg)
		if e := paygate.AsError(err); err == nil || e.Param != tc.field {
			t.Errorf("New(%s bad) = %v", tc.field, err)
		}
		if err != nil && strings.Contains(err.Error(), "sk_test_secret") {
			t.Errorf("config error echoes a secret: %v", err)
		}
	}
}

// nopStore satisfies paygate.Store for constructor tests that never touch it.
type nopStore struct{ paygate.Store }
