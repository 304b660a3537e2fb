package sandbox

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/numedapp/paygate/internal/browser"
)

// textOf reads an element's text, failing the test on error.
func textOf(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
	if err != nil {
		t.Fatalf("text of #%s: %v", id, err)
	}
	return strings.TrimSpace(s)
}

// TestBrowserPaysALink opens a payment link in headless Chromium, pays with
// the success card and lands on the link's redirect URL. It fails (not
// skips) when Chromium is not installed.
func TestBrowserPaysALink(t *testing.T) {
	shop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<!doctype html><title>Thanks</title><h1 id="thanks">Thank you</h1>`))
	}))
	t.Cleanup(shop.Close)
	sb := newTestSandbox(t, Config{})
	rc := newReceiver(t, sb)
	api := stripeAPI(t, sb, testKey)
	link := newLink(t, api, "pay_b", 4200, shop.URL+"/thanks?cs={CHECKOUT_SESSION_ID}")

	ctx := browser.New(t, 60*time.Second)
	must(t, chromedp.Do(ctx,
		chromedp.Navigate(link.URL),
		chromedp.WaitVisible(chromedp.ID("sandbox-banner")),
	))
	banner, amount := textOf(t, ctx, "sandbox-banner"), textOf(t, ctx, "amount")
	// A decline first: the page says so and stays open.
	must(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("card-4000000000000002")),
		chromedp.WaitVisible(chromedp.ID("error")),
	))
	declined := textOf(t, ctx, "error")
	// Then the success card.
	must(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("card-4242424242424242")),
		chromedp.WaitVisible(chromedp.ID("thanks")),
	))
	landed, err := chromedp.Run(ctx, chromedp.Location())
	must(t, err)
	if !strings.Contains(banner, "SANDBOX") || amount != "42.00 USD" || !strings.Contains(declined, "declined") {
		t.Errorf("page: banner %q, amount %q, decline %q", banner, amount, declined)
	}
	tr := sb.Truth("pay_b")
	if !strings.HasPrefix(landed, shop.URL+"/thanks?cs=cs_test_") || tr.Succeeded == "" || textOf(t, ctx, "thanks") != "Thank you" {
		t.Fatalf("landed on %q; truth %+v", landed, tr)
	}
	sb.DeliverAll()
	if got := rc.types(); len(got) < 2 || got[len(got)-2] != "checkout.session.completed" {
		t.Errorf("events %v", got)
	}
}

// TestBrowserConfirmsAnIntentWith3DS mounts the Payment Element stand-in
// (sandbox.js) on a merchant page, types a 3D Secure card, completes the
// challenge and lands on return_url.
func TestBrowserConfirmsAnIntentWith3DS(t *testing.T) {
	sb := newTestSandbox(t, Config{})
	api := stripeAPI(t, sb, testKey)
	pi := newIntent(t, api, "pay_js", 1500)
	var shopURL string
	shop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		if r.URL.Path == "/done" {
			_, _ = w.Write([]byte(`<!doctype html><h1 id="done">` + r.URL.Query().Get("redirect_status") + `</h1>`))
			return
		}
		_, _ = w.Write([]byte(`<!doctype html><div id="pay"></div>
<script src="` + sb.URL() + `/sandbox.js"></script>
<script>PaygateSandbox.mount("#pay", {clientSecret: "` + pi.ClientSecret + `", returnUrl: "` + shopURL + `/done"});</script>`))
	}))
	t.Cleanup(shop.Close)
	shopURL = shop.URL

	ctx := browser.New(t, 60*time.Second)
	must(t, chromedp.Do(ctx, chromedp.Navigate(shop.URL), chromedp.WaitVisible(chromedp.CSS("iframe"))))
	src, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("iframe"), "src"))
	must(t, err)
	if !src.Exists || !strings.HasPrefix(src.Value, sb.URL()+"/confirm?embed=1&client_secret=") {
		t.Fatalf("iframe src %+v", src)
	}
	// Drive the embedded page in the tab itself; its form targets _top, as
	// it does inside the iframe.
	must(t, chromedp.Do(ctx,
		chromedp.Navigate(src.Value),
		chromedp.SendKeys(chromedp.ID("card-number"), "4000 0027 6000 3184"),
		chromedp.Click(chromedp.ID("pay")),
		chromedp.WaitVisible(chromedp.ID("complete")),
		chromedp.Click(chromedp.ID("complete")),
		chromedp.WaitVisible(chromedp.ID("done")),
	))
	if status := textOf(t, ctx, "done"); status != "succeeded" || sb.Truth("pay_js").Succeeded != pi.ID {
		t.Fatalf("redirect_status %q, truth %+v", status, sb.Truth("pay_js"))
	}
}
