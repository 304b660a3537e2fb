package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/numedapp/paygate/callback/verify"
	"github.com/numedapp/paygate/paygatetest"
)

func TestMain(m *testing.M) { os.Exit(paygatetest.Main(m)) }

// The router serves paygate under /payments: a payment link made through
// the prefixed API is paid on the sandbox, and the merchant is called back.
func TestMountedUnderPrefix(t *testing.T) {
	env := paygatetest.New(t)
	srv := httptest.NewServer(newRouter(env.Gateway))
	defer srv.Close()

	do := func(method, path, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+paygatetest.APIKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	if code, body := do("GET", "/", ""); code != 200 || string(body) != "my shop\n" {
		t.Fatalf("GET /: %d %s", code, body)
	}
	code, body := do("POST", "/payments/api/payments/generate-url", `{"amount": "19.99"}`)
	if code != http.StatusCreated {
		t.Fatalf("generate-url: %d %s", code, body)
	}
	var created struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &created); err != nil || created.Data.ID == "" {
		t.Fatalf("generate-url: %v %s", err, body)
	}
	env.Succeed(created.Data.ID)
	env.WaitCallback(created.Data.ID, verify.ActionPaymentSucceeded)
	if code, body := do("GET", "/payments/api/payments/"+created.Data.ID, ""); code != 200 || !strings.Contains(string(body), `"succeeded"`) {
		t.Fatalf("GET payment: %d %s", code, body)
	}
	if code, body := do("GET", "/payments/docs", ""); code != 200 || !strings.Contains(string(body), "<html") {
		t.Fatalf("GET /payments/docs: %d %.200s", code, body)
	}
}
