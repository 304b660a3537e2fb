// Command mount embeds paygate in an existing service: the payments API is
// mounted under /api/ beside the application's own routes.
//
//	DATABASE_URL=postgres://… STRIPE_SECRET_KEY=sk_test_… API_KEY=$(openssl rand -hex 16) go run ./examples/mount
package main

import (
	"context"
	"log"
	"net/http"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/store"
)

func main() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := store.Migrate(ctx, pool); err != nil { // migrations are explicit
		log.Fatal(err)
	}
	auth, err := paygate.BearerKeys(os.Getenv("API_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	gw, err := paygate.New(paygate.Config{Store: store.New(pool), StripeSecretKey: os.Getenv("STRIPE_SECRET_KEY"), Auth: auth})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", gw.Handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("my shop\n")) })
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", mux))
}
