// Command mount embeds paygate in an existing service: the payments API is
// mounted under /api/ beside the application's own routes, and one line,
// go gw.Run(ctx), runs everything in the background: callbacks to
// CALLBACK_URL, reconciliation with Stripe, housekeeping.
//
//	DATABASE_URL=postgres://… STRIPE_SECRET_KEY=sk_test_… API_KEY=$(openssl rand -hex 16) \
//	STRIPE_WEBHOOK_SECRET=whsec_… CALLBACK_URL=https://shop.example/paygate CALLBACK_SECRET=whsec_… go run ./examples/mount
package main

import (
	"context"
	"errors"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Getenv, "127.0.0.1:8080"); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, getenv func(string) string, addr string) error {
	pool, err := pgxpool.New(ctx, getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := store.Migrate(ctx, pool); err != nil { // migrations are explicit
		return err
	}
	auth, err := paygate.BearerKeys(getenv("API_KEY"))
	if err != nil {
		return err
	}
	gw, err := paygate.New(paygate.Config{
		Store:           store.New(pool),
		StripeSecretKey: getenv("STRIPE_SECRET_KEY"),
		StripeAPIBase:   getenv("STRIPE_API_BASE"), // empty: Stripe's own
		Auth:            auth,
		WebhookSecrets:  list(getenv("STRIPE_WEBHOOK_SECRET")),
		CallbackURL:     getenv("CALLBACK_URL"),
		CallbackSecrets: list(getenv("CALLBACK_SECRET")),
	})
	if err != nil {
		return err
	}
	go gw.Run(ctx) // callbacks, reconciliation, housekeeping; until ctx ends

	mux := http.NewServeMux()
	mux.Handle("/api/", gw.Handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("my shop\n")) })
	srv := &http.Server{Addr: addr, Handler: mux}
	go func() {
		<-ctx.Done()
		srv.Shutdown(context.Background())
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func list(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
