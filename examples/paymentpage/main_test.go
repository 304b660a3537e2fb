package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/internal/browser"
	"github.com/numedapp/paygate/paygatetest"
)

func TestMain(m *testing.M) { os.Exit(paygatetest.Main(m)) }

// A customer pays on the shop's page in a real browser: the cart, the
// Payment Element (the sandbox's stand-in, in an iframe), the test card,
// back to the return URL, which shows the status paygate holds.
func TestPayInBrowser(t *testing.T) {
	env := paygatetest.New(t)
	shop := httptest.NewServer(newShop(env.Gateway, env.Sandbox.URL()))
	defer shop.Close()

	ctx := browser.New(t, 90*time.Second)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(shop.URL),
		chromedp.Click(chromedp.ID("checkout")),
		chromedp.WaitVisible(chromedp.CSS("iframe")),
	); err != nil {
		t.Fatal(err)
	}
	src, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("iframe"), "src"))
	if err != nil || !src.Exists {
		t.Fatalf("iframe src %+v, %v", src, err)
	}
	// Drive the embedded page in the tab itself: its form posts to the top
	// window, as it does inside the iframe.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(src.Value),
		chromedp.SendKeys(chromedp.ID("card-number"), "4242 4242 4242 4242"),
		chromedp.Click(chromedp.ID("pay")),
		chromedp.WaitVisible(chromedp.ID("status")),
	); err != nil {
		t.Fatal(err)
	}
	status, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
	if err != nil || strings.TrimSpace(status) != "succeeded" {
		t.Fatalf("the return page says %q (%v)", status, err)
	}
}

// Without a browser: the page carries the sandbox's script and the client
// secret; a payment made on the sandbox shows on the return URL.
func TestPayPage(t *testing.T) {
	env := paygatetest.New(t)
	shop := httptest.NewServer(newShop(env.Gateway, env.Sandbox.URL()))
	defer shop.Close()

	res, err := http.PostForm(shop.URL+"/pay", url.Values{"amount": {"12.50"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	page := string(body)
	if res.StatusCode != 200 || !strings.Contains(page, env.Sandbox.URL()+"/sandbox.js") || !strings.Contains(page, "_secret_") {
		t.Fatalf("pay page: %d\n%s", res.StatusCode, page)
	}
	list, err := env.Gateway.ListPayments(t.Context(), paygate.PaymentFilter{}) // the one payment the page made
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("payments: %v %v", list, err)
	}
	pi := list.Items[0].PaymentIntentID
	if err := env.Sandbox.PayIntent(pi, paygatetest.CardSucceeds); err != nil {
		t.Fatal(err)
	}
	res, err = http.Get(shop.URL + "/done?payment_intent=" + pi)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), `<span id="status">succeeded</span>`) || !strings.Contains(string(body), "1250 usd") {
		t.Fatalf("return page:\n%s", body)
	}

	res, err = http.PostForm(shop.URL+"/pay", url.Values{"amount": {"0.001"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("a bad amount: %d", res.StatusCode)
	}
}
