// Command receiver is a merchant's endpoint for paygate callbacks: it
// verifies each callback's Standard Webhooks signature, drops duplicates
// (webhook-id) and stale callbacks (sequence), and answers 204.
//
//	CALLBACK_SECRET=whsec_… go run ./examples/receiver
package main

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"os"
	"sync"

	"github.com/numedapp/paygate/callback"
)

type payload struct {
	EventID   string          `json:"eventId"`
	Action    string          `json:"action"`
	PaymentID string          `json:"paymentId"`
	Sequence  int64           `json:"sequence"`
	Data      json.RawMessage `json:"data"`
}

func main() {
	secret := os.Getenv("CALLBACK_SECRET")
	var mu sync.Mutex
	seen := map[string]bool{}     // webhook-ids applied (use your database)
	lastSeq := map[string]int64{} // per payment
	http.HandleFunc("POST /paygate", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		if err := callback.Verify(secret, r.Header, body); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var p payload
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, "bad payload", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		id := r.Header.Get(callback.HeaderID)
		if seen[id] || p.Sequence <= lastSeq[p.PaymentID] {
			w.WriteHeader(http.StatusNoContent) // already applied, or older than what we have
			return
		}
		seen[id], lastSeq[p.PaymentID] = true, p.Sequence
		log.Printf("payment %s: %s (sequence %d)", p.PaymentID, p.Action, p.Sequence)
		w.WriteHeader(http.StatusNoContent)
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:9000", nil))
}
