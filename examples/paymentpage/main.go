// Command paymentpage is a shop's payment page with Stripe's Payment
// Element, tried on paygate's sandbox: the shop creates a PaymentIntent
// with gw.CreatePaymentIntent, the page mounts the sandbox's stand-in for
// the Payment Element (/sandbox.js) with its client secret, the customer
// pays, the browser comes back to the return URL, and the shop reads the
// payment's status from paygate (which catches up with Stripe on the way).
//
// With real Stripe the page loads https://js.stripe.com/v3 and calls
// stripe.elements({clientSecret}) and stripe.confirmPayment instead; the
// server side is the same.
//
//	DATABASE_URL=postgres://… go run ./examples/paymentpage
//	# open http://127.0.0.1:8080, pay with 4242 4242 4242 4242
package main

import (
	"context"
	"errors"
	"html/template"
	"log"
	"net/http"
	"os"
	"os/signal"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/sandbox"
	"github.com/numedapp/paygate/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Getenv("DATABASE_URL"), "127.0.0.1:8080"); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, databaseURL, addr string) error {
	// Stripe, played by the sandbox on a loopback port; its webhooks come here.
	sb, err := sandbox.NewServer(sandbox.Config{AutoDeliver: true})
	if err != nil {
		return err
	}
	defer sb.Close()
	if err := sb.SetWebhook("http://"+addr+paygate.WebhookPath, ""); err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, databaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := store.Migrate(ctx, pool); err != nil {
		return err
	}
	gw, err := paygate.New(paygate.Config{
		Store:           store.New(pool),
		StripeSecretKey: "sk_test_paymentpage",
		StripeAPIBase:   sb.URL(),
		WebhookSecrets:  []string{sb.WebhookSecret()},
		InsecureNoAuth:  true, // only the webhook route is served, never the API
	})
	if err != nil {
		return err
	}
	go gw.Run(ctx)

	srv := &http.Server{Addr: addr, Handler: newShop(gw, sb.URL())}
	go func() {
		<-ctx.Done()
		srv.Shutdown(context.Background())
	}()
	log.Printf("the shop: http://%s (the sandbox's dashboard: %s/_sandbox/dashboard)", addr, sb.URL())
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newShop serves the shop: the cart (GET /), the payment page (POST /pay),
// the return URL (GET /done), and Stripe's webhooks for paygate.
// stripeJS is where the Payment Element comes from (the sandbox's URL).
func newShop(gw *paygate.Gateway, stripeJS string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST "+paygate.WebhookPath, gw.WebhookHandler())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		render(w, cartPage, nil)
	})
	mux.HandleFunc("POST /pay", func(w http.ResponseWriter, r *http.Request) {
		pi, err := gw.CreatePaymentIntent(r.Context(), paygate.PaymentIntentParams{
			Amount:      paygate.Decimal(r.FormValue("amount")),
			Currency:    "usd",
			Description: "Order from the example shop",
		})
		if err != nil {
			// A *paygate.Error says what is wrong with the request (its
			// message is safe to show); anything else stays in the log.
			var pe *paygate.Error
			if errors.As(err, &pe) {
				http.Error(w, pe.Message, pe.HTTPStatus())
				return
			}
			log.Print(err)
			http.Error(w, "the payment could not be started", http.StatusBadGateway)
			return
		}
		render(w, payPage, map[string]any{
			"StripeJS":     stripeJS + "/sandbox.js",
			"ClientSecret": pi.ClientSecret,
			"ReturnURL":    "http://" + r.Host + "/done",
			"Amount":       pi.Amount,
		})
	})
	mux.HandleFunc("GET /done", func(w http.ResponseWriter, r *http.Request) {
		// Never trust redirect_status alone: ask paygate, which asks Stripe.
		st, err := gw.GetPaymentIntent(r.Context(), r.URL.Query().Get("payment_intent"))
		if err != nil {
			http.Error(w, "no such payment", http.StatusNotFound)
			return
		}
		render(w, donePage, st)
	})
	return mux
}

func render(w http.ResponseWriter, t *template.Template, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := t.Execute(w, data); err != nil {
		log.Print(err)
	}
}

var (
	cartPage = template.Must(template.New("cart").Parse(`<!doctype html>
<title>Example shop</title>
<h1>Your cart</h1>
<form method="post" action="/pay">
  <label>Amount (USD) <input id="amount" name="amount" value="19.99"></label>
  <button id="checkout">Pay</button>
</form>`))
	payPage = template.Must(template.New("pay").Parse(`<!doctype html>
<title>Pay</title>
<h1>Pay {{.Amount}} cents</h1>
<div id="payment-element"></div>
<script src="{{.StripeJS}}"></script>
<script>PaygateSandbox.mount("#payment-element", {clientSecret: "{{.ClientSecret}}", returnUrl: "{{.ReturnURL}}"});</script>`))
	donePage = template.Must(template.New("done").Parse(`<!doctype html>
<title>Thank you</title>
<h1>Payment <span id="status">{{.PaymentStatus}}</span></h1>
<p>{{.Amount}} {{.Currency}} (Stripe: {{.Status}})</p>`))
)
