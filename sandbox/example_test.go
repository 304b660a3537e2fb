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

// paymentd dev style: mount the sandbox under a prefix of a server you
// already run, tell it its base URL, and point the webhooks at your own
// handler once you know the address.
func ExampleSandbox_Handler() {
	sb, err := sandbox.New(sandbox.Config{WebhookSecret: "whsec_dev"})
	if err != nil {
		log.Fatal(err)
	}
	defer sb.Close()
	mux := http.NewServeMux()
	mux.Handle("/sandbox/", http.StripPrefix("/sandbox", sb.Handler()))
	mux.HandleFunc("POST /webhooks/stripe", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if _, err := webhook.ConstructEventWithOptions(body, r.Header.Get("Stripe-Signature"), "whsec_dev",
			webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true}); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	sb.SetBaseURL(srv.URL + "/sandbox")
	if err := sb.SetWebhook(srv.URL+"/webhooks/stripe", ""); err != nil {
		log.Fatal(err)
	}
	sb.Run() // starts background delivery when Config.AutoDeliver is set

	api := &client.API{}
	api.Init("sk_test_dev", &stripe.Backends{
		API: stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{URL: stripe.String(sb.URL())}),
	})
	pi, err := api.PaymentIntents.New(&stripe.PaymentIntentParams{Amount: stripe.Int64(990), Currency: stripe.String("eur")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(pi.Status)
	fmt.Println(sb.DeliverAll().Sent, "delivered")
	// Output:
	// requires_payment_method
	// 1 delivered
}
