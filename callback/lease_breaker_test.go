package callback_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/callback"
)

// slowClaimQueue is the store whose claim transaction takes long (a lock
// wait, a slow disk): when slow is set, the engine's clock moves on by
// delay while ClaimCallbacks runs, so that the claimed callbacks come back
// with less than an attempt's timeout left on their lease.
type slowClaimQueue struct {
	callback.Queue
	callback.BatchQueue
	callback.ReleasingQueue
	clock *clock
	delay time.Duration
	slow  atomic.Bool
}

func (q *slowClaimQueue) ClaimCallbacks(ctx context.Context, limit int, lease time.Duration, now time.Time) ([]callback.Callback, error) {
	cbs, err := q.Queue.ClaimCallbacks(ctx, limit, lease, now)
	if q.slow.Load() {
		q.clock.Advance(q.delay)
	}
	return cbs, err
}

func newSlowClaimQueue(f *fixture, timeout, lease time.Duration) *slowClaimQueue {
	return &slowClaimQueue{Queue: f.store, BatchQueue: f.store, ReleasingQueue: f.store, clock: f.clock, delay: lease - timeout}
}

// TestBreakerProbeSkippedForItsLeaseIsSentLater: the breaker is open (the
// receiver was down) and its cooldown is over: a worker claims one
// callback as the probe. The claim was slow, so the probe is not sent (its
// lease is too short, sendAndRecord). The breaker must be told: left
// "probing", allow would answer 0 for ever, ClaimToken "" (open), and no
// callback of this engine would be sent again once the receiver is back.
func TestBreakerProbeSkippedForItsLeaseIsSentLater(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var up atomic.Bool
	rc := newReceiver(t, func(_ int, w http.ResponseWriter) {
		if !up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	ids := f.seed(rc.URL, 3)
	const timeout, lease = 2 * time.Second, 5 * time.Second
	q := newSlowClaimQueue(f, timeout, lease)
	e := f.engine(func(c *callback.Config) {
		c.Queue, c.Timeout, c.Lease, c.BreakerThreshold = q, timeout, lease, 2
	})
	ctx := context.Background()
	step(t, e, 3) // three 503s: the breaker opens
	if got := rc.calls.Load(); got != 3 {
		t.Fatalf("receiver saw %d attempts, want 3", got)
	}
	up.Store(true)
	f.clock.Advance(time.Minute) // cooldown (30 s) and the 5 s retry step are over

	q.slow.Store(true) // the probe's claim is slow
	if _, err := e.DeliverDue(ctx, 100); err != nil {
		t.Fatal(err)
	}
	q.slow.Store(false)

	// The database is fast again, the receiver is up: within an hour of
	// polling every callback must have gone out.
	for i := 0; i < 60; i++ {
		f.clock.Advance(time.Minute)
		if _, err := e.DeliverDue(ctx, 100); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		if c := f.callback(id); c.Status != paygate.CallbackSucceeded {
			t.Errorf("an hour after the receiver came back, callback %s is %s (attempts %d) after %d sends in all: the breaker still waits for its probe",
				id, c.Status, c.Attempts, rc.calls.Load())
		}
	}
}
