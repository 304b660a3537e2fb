// Command receiver is a merchant's endpoint for paygate callbacks: it
// verifies each callback's Standard Webhooks signature, drops duplicates
// (webhook-id) and stale callbacks (sequence), and answers 204. It imports
// only callback/verify, which depends on the standard library alone.
//
//	CALLBACK_SECRET=whsec_… go run ./examples/receiver
package main

import (
	"io"
	"log"
	"net/http"
	"os"
	"sync"

	"github.com/numedapp/paygate/callback/verify"
)

func main() {
	secret := os.Getenv("CALLBACK_SECRET")
	if _, err := verify.ParseSecret(secret); err != nil {
		log.Fatalf("CALLBACK_SECRET: %v", err)
	}
	var mu sync.Mutex
	seen := map[string]bool{}     // webhook-ids applied (use your database)
	lastSeq := map[string]int64{} // per payment
	http.HandleFunc("POST /paygate", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		p, err := verify.Parse(secret, r.Header, body)
		if err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		id := r.Header.Get(verify.HeaderID)
		if seen[id] || p.Sequence <= lastSeq[p.PaymentID] {
			w.WriteHeader(http.StatusNoContent) // already applied, or older than what we have
			return
		}
		seen[id], lastSeq[p.PaymentID] = true, p.Sequence
		switch p.Action {
		case verify.ActionPaymentSucceeded:
			log.Printf("payment %s succeeded: %d %s, order %q", p.PaymentID, p.Data.Amount, p.Data.Currency, p.Data.Metadata["orderId"])
		default:
			log.Printf("payment %s: %s, now %s (sequence %d)", p.PaymentID, p.Action, p.Data.Status, p.Sequence)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:9000", nil))
}
