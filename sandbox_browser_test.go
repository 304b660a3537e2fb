package paygate_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/internal/browser"
)

// TestBrowserPaysAPaymentLink: a payment link made through paygate's API
// with a successUrl, paid in headless Chromium on the sandbox's hosted page
// with the success card; the customer lands on the merchant's success URL,
// and once the webhooks are delivered the payment is succeeded and the
// merchant's callbacks arrived. It fails (never skips) without Chromium.
func TestBrowserPaysAPaymentLink(t *testing.T) {
	t.Parallel()
	shop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><title>Thanks</title><h1 id="thanks">Thank you, order ` + r.URL.Query().Get("order") + `</h1>`))
	}))
	t.Cleanup(shop.Close)
	e := newSBEnv(t, sbOpts{})
	p := e.createLink(t, `{"amount":"42.00","productName":"Consultation","successUrl":"`+shop.URL+`/thanks?order=A-7","metadata":{"orderId":"A-7"}}`)
	if !strings.HasPrefix(p.PaymentURL, e.sb.URL()+"/pay/") {
		t.Fatalf("paymentUrl %q", p.PaymentURL)
	}

	ctx := browser.New(t, 60*time.Second)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(p.PaymentURL),
		chromedp.WaitVisible(chromedp.ID("sandbox-banner")),
	); err != nil {
		t.Fatalf("opening the payment page: %v", err)
	}
	amount, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("amount")))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("card-4242424242424242")),
		chromedp.WaitVisible(chromedp.ID("thanks")),
	); err != nil {
		t.Fatalf("paying: %v", err)
	}
	landed, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	thanks, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("thanks")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(amount) != "42.00 USD" || landed != shop.URL+"/thanks?order=A-7" || thanks != "Thank you, order A-7" {
		t.Fatalf("amount %q, landed on %q (%q)", amount, landed, thanks)
	}

	// Paid at Stripe; paygate knows once the webhooks arrive.
	e.flush()
	got := e.checkTruth(t, p.ID)
	if got.Status != paygate.StatusSucceeded || got.Amount != 4200 || got.Metadata["orderId"] != "A-7" {
		t.Fatalf("payment %+v", got.Payment)
	}
	wantSeq(t, "callbacks", []string{"payment_succeeded", "checkout_completed"}, e.actions(p.ID))
	cbs, _ := e.m.of(p.ID)
	if cbs[0].Data.Status != "succeeded" || cbs[0].Data.PaymentIntentID != got.PaymentIntentID || cbs[1].Data.SessionID != got.CheckoutSessionID {
		t.Errorf("callbacks %+v", cbs)
	}
	e.checkMerchant(t)
}
