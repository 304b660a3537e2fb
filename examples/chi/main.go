// Command chi mounts paygate's API under a prefix on a chi router: the
// application's own routes and middleware stay chi's, and everything under
// /payments/ is paygate's (the API at /payments/api/…, Stripe's webhooks at
// /payments/api/webhooks/stripe, the docs page at /payments/docs).
//
// It is a module of its own (go.mod replaces paygate with this checkout), so
// chi is its dependency, not the library's.
//
//	DATABASE_URL=postgres://… STRIPE_SECRET_KEY=sk_test_… API_KEY=$(openssl rand -hex 16) \
//	STRIPE_WEBHOOK_SECRET=whsec_… go run .
package main

import (
	"context"
	"errors"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/store"
)

// Prefix is where paygate is mounted.
const Prefix = "/payments"

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
		StripeAPIBase:   getenv("STRIPE_API_BASE"), // empty: Stripe's own; the sandbox's URL to try it
		Auth:            auth,
		WebhookSecrets:  list(getenv("STRIPE_WEBHOOK_SECRET")),
		CallbackURL:     getenv("CALLBACK_URL"),
		CallbackSecrets: list(getenv("CALLBACK_SECRET")),
	})
	if err != nil {
		return err
	}
	go gw.Run(ctx) // callbacks, reconciliation, housekeeping; until ctx ends

	srv := &http.Server{Addr: addr, Handler: newRouter(gw)}
	go func() {
		<-ctx.Done()
		srv.Shutdown(context.Background())
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newRouter is the application's chi router with paygate under Prefix.
// paygate's Handler routes on the full path (/api/…), so the prefix is
// stripped before it; its docs page calls the API relative to where it is
// served, so it works under the prefix too.
func newRouter(gw *paygate.Gateway) http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.RealIP, middleware.Recoverer)
	r.Get("/", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("my shop\n")) })
	r.Mount(Prefix, http.StripPrefix(Prefix, gw.Handler()))
	return r
}

func list(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
