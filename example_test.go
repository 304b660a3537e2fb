package paygate_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/store"
)

// Amounts arrive as exact decimals in major units and live as integers in
// Stripe's minor units.
func ExampleCurrency_ParseAmount() {
	for _, tc := range []struct{ currency, amount string }{
		{"usd", "19.99"}, {"jpy", "500"}, {"kwd", "1.23"}, {"usd", "19.999"}, {"jpy", "10.5"},
	} {
		c, _ := paygate.LookupCurrency(tc.currency)
		minor, err := c.ParseAmount(tc.amount)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(tc.amount, tc.currency, "=", minor, "minor units =", c.FormatAmount(minor))
	}
	// Output:
	// 19.99 usd = 1999 minor units = 19.99
	// 500 jpy = 500 minor units = 500
	// 1.23 kwd = 1230 minor units = 1.230
	// paygate: invalid_request: amount has more decimal places than USD allows (2) (param amount)
	// paygate: invalid_request: amount has more decimal places than JPY allows (0) (param amount)
}

// BearerKeys checks API keys in constant time; several keys allow rotation.
func ExampleBearerKeys() {
	auth, err := paygate.BearerKeys("current-key-0123456789", "previous-key-0123456789")
	if err != nil {
		log.Fatal(err)
	}
	for _, h := range []string{"Bearer previous-key-0123456789", "Bearer guessed-key-000000000", "Basic current-key-0123456789"} {
		r := httptest.NewRequest("GET", "/api/payments", nil)
		r.Header.Set("Authorization", h)
		_, ok := auth(r)
		fmt.Println(ok)
	}
	// Output:
	// true
	// false
	// false
}

// Mount the API on an existing mux. (Not run: it needs a database.)
func ExampleGateway_Handler() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := store.Migrate(ctx, pool); err != nil {
		log.Fatal(err)
	}
	auth, err := paygate.BearerKeys(os.Getenv("API_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	gw, err := paygate.New(paygate.Config{
		Store:           store.New(pool),
		StripeSecretKey: os.Getenv("STRIPE_SECRET_KEY"),
		Auth:            auth,
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", gw.Handler())
	log.Fatal(http.ListenAndServe(":8080", mux))
}

// Call the Gateway from Go, without HTTP. (Not run: it needs a database and Stripe.)
func ExampleGateway_CreateCheckoutSession() {
	var gw *paygate.Gateway // from paygate.New
	out, err := gw.CreateCheckoutSession(context.Background(), paygate.CheckoutParams{
		Amount:     "49.90",
		Currency:   "eur",
		SuccessURL: "https://shop.example.com/thanks",
		CancelURL:  "https://shop.example.com/cart",
		Metadata:   paygate.Metadata{"orderId": "1234"},
	})
	if err != nil {
		log.Fatal(err) // a *paygate.Error naming the field, or a mapped Stripe error
	}
	fmt.Println("redirect the customer to", out.URL)
}
