package callback_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/callback"
)

// TestCallbackNotSentForItsLeaseKeepsItsAttempts: a callback not sent
// because its lease was too short (sendAndRecord) had its attempt counted
// when it was claimed; it is given back uncounted, so that the schedule's
// attempts are all real: with a schedule of 2 attempts and a receiver that
// always fails, the callback is marked failed after 2 requests, not 1.
func TestCallbackNotSentForItsLeaseKeepsItsAttempts(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) })
	id := f.seed(rc.URL, 1)[0]
	const timeout, lease = 2 * time.Second, 5 * time.Second
	q := newSlowClaimQueue(f, timeout, lease)
	e := f.engine(func(c *callback.Config) {
		c.Queue, c.Timeout, c.Lease, c.BreakerThreshold = q, timeout, lease, -1
		c.Schedule, c.Jitter = []time.Duration{0, 5 * time.Second}, -1
	})
	ctx := context.Background()
	q.slow.Store(true)
	step(t, e, 1) // claimed, not sent: the lease is too short
	q.slow.Store(false)
	if got := rc.calls.Load(); got != 0 {
		t.Fatalf("receiver saw %d requests, want 0 (skipped)", got)
	}
	for i := 0; i < 10; i++ {
		f.clock.Advance(10 * time.Second)
		if _, err := e.DeliverDue(ctx, 100); err != nil {
			t.Fatal(err)
		}
	}
	c := f.callback(id)
	if c.Status != paygate.CallbackFailed {
		t.Fatalf("callback is %s after %d requests, want failed", c.Status, rc.calls.Load())
	}
	if got := rc.calls.Load(); got != 2 {
		t.Errorf("callback marked failed after %d real attempts (attempts counter %d, attempt rows %d); its schedule has 2",
			got, c.Attempts, len(f.attempts(id)))
	}
}
