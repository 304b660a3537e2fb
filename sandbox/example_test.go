package sandbox_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/numedapp/paygate/sandbox"
)

// A test starts a sandbox, points stripe-go (or paygate's
// Config.StripeAPIBase) at it, pays as a customer would, and delivers the
// signed webhooks when it chooses.
func Example() {
	sb, err := sandbox.NewServer(sandbox.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer sb.Close()

	// The merchant's webhook endpoint (paygate's WebhookHandler in a real test).
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ev, err := webhook.ConstructEventWithOptions(body, r.Header.Get("Stripe-Signature"), sb.WebhookSecret(),
			webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Println("webhook:", ev.Type)
	}))
	defer hook.Close()
	if err := sb.SetWebhook(hook.URL, ""); err != nil {
		log.Fatal(err)
	}

	api := &client.API{}
	api.Init("sk_test_123abc", &stripe.Backends{
		API: stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{URL: stripe.String(sb.URL())}),
	})
	params := &stripe.PaymentIntentParams{Amount: stripe.Int64(2500), Currency: stripe.String("usd")}
	params.AddMetadata(sandbox.MetadataPaymentKey, "pay_123")
	pi, err := api.PaymentIntents.New(params)
	if err != nil {
		log.Fatal(err)
	}

	// The customer pays with Stripe's success test card.
	if err := sb.PayIntent(pi.ID, "4242424242424242"); err != nil {
		log.Fatal(err)
	}
	sb.DeliverAll()

	truth := sb.Truth("pay_123")
	fmt.Println("succeeded:", truth.Succeeded == pi.ID, "paid:", truth.AmountPaid)
	// Output:
	// webhook: payment_intent.created
	// webhook: charge.succeeded
	// webhook: payment_intent.succeeded
	// succeeded: true paid: 2500
}
