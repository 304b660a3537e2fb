package paygate_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/callback"
)

// TestCallbackClaimedAtBirthPastItsLeaseIsSentOnce: a callback committed
// already claimed by Run's engine (ClaimToken: leased
// from before the webhook's batch ran) is sent by the engine's inline
// worker without looking at its lease. When the batch took longer than the
// lease (here: it waited for a payment row lock), the callback is committed
// with its lease already expired, so a polling worker claims it too: a
// healthy receiver (2xx well within the timeout) gets it twice, with the
// same webhook-id, both attempts at once (API.md §4: a second delivery is
// for a failed attempt only).
func TestCallbackClaimedAtBirthPastItsLeaseIsSentOnce(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	got := map[string]int{}
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Header.Get("webhook-id")]++
		mu.Unlock()
		time.Sleep(300 * time.Millisecond) // healthy: answers well within the 2 s timeout
		w.WriteHeader(http.StatusNoContent)
	}))
	defer merchant.Close()
	e := newEnv(t, withWebhookSecrets(whsecNew), func(c *paygate.Config) {
		c.CallbackURL, c.CallbackSecrets = merchant.URL+"/hooks", []string{callbackSecret}
		c.CallbackEngine = callback.Config{Timeout: 2 * time.Second, Lease: 2500 * time.Millisecond, PollInterval: 50 * time.Millisecond}
		c.ReconcileInterval = -1
	})
	if e.pool == nil {
		t.Skip("PostgreSQL row locks hold the batch")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.gw.Run(ctx) }()
	defer func() { cancel(); <-done }()
	time.Sleep(200 * time.Millisecond) // the engine runs: webhook batches claim their callbacks

	p := e.webhookPayment(paygate.MethodIntent, 1000)
	release, holder := e.lockPaymentRow(p.ID)
	answer := e.postWebhookAsync(stripeEventJSON("", "payment_intent.succeeded", "2023-10-16", piObject(p.PaymentIntentID, "succeeded", 1000, p.ID, "ch_inl")))
	e.waitForLockWaits(holder, 1)
	time.Sleep(3 * time.Second) // longer than the lease taken before the batch
	release()
	if s := <-answer; s != 200 {
		t.Fatalf("webhook: %d", s)
	}
	time.Sleep(2 * time.Second) // every send, and any second one, is done
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("callbacks received: %v; want one", got)
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("callback %s delivered %d times to a receiver that answered 204 in 300 ms", id, n)
		}
	}
}
