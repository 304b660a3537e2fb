package sandbox

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestMountedUnderAPrefix serves Handler under /sandbox on another server,
// as paymentd dev may: the API, page links, forms and redirects all keep
// the prefix.
func TestMountedUnderAPrefix(t *testing.T) {
	t.Parallel()
	sb, err := New(Config{})
	must(t, err)
	t.Cleanup(sb.Close)
	mux := http.NewServeMux()
	mux.Handle("/sandbox/", http.StripPrefix("/sandbox", sb.Handler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	sb.SetBaseURL(srv.URL + "/sandbox")

	api := stripeAPI(t, sb, testKey)
	link := newLink(t, api, "pay_m", 800, "https://shop.example/thanks")
	if link.URL != srv.URL+"/sandbox/pay/"+link.ID {
		t.Fatalf("link url %s", link.URL)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(link.URL)
	must(t, err)
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != 303 || !strings.HasPrefix(loc, "/sandbox/checkout/cs_test_") {
		t.Fatalf("visit: %d %s", resp.StatusCode, loc)
	}
	page, err := http.Get(srv.URL + loc)
	must(t, err)
	body, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != 200 || !strings.Contains(string(body), `action="/sandbox/checkout/cs_test_`) {
		t.Fatalf("checkout page: %d", page.StatusCode)
	}
	resp, err = noFollow.PostForm(srv.URL+loc, url.Values{"payment_method": {"4000002500003155"}})
	must(t, err)
	resp.Body.Close()
	auth := resp.Header.Get("Location")
	if !strings.HasPrefix(auth, "/sandbox/authenticate/pi_") {
		t.Fatalf("3DS redirect %s", auth)
	}
	u, _ := url.Parse(auth)
	resp, err = noFollow.PostForm(srv.URL+u.Path, url.Values{"action": {"complete"}, "next": {u.Query().Get("next")}})
	must(t, err)
	resp.Body.Close()
	back := resp.Header.Get("Location")
	resp, err = noFollow.Get(srv.URL + back)
	must(t, err)
	resp.Body.Close()
	if got := resp.Header.Get("Location"); got != "https://shop.example/thanks" {
		t.Fatalf("after 3DS: %s then %s", back, got)
	}
}
