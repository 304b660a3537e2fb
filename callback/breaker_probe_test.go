package callback_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/numedapp/paygate/callback"
)

// heldClaimQueue is the store whose claim, once armed, returns only when
// the test lets it (a claim transaction stuck on a lock): the worker holds
// its claimed callbacks meanwhile.
type heldClaimQueue struct {
	callback.Queue
	callback.BatchQueue
	callback.ReleasingQueue
	armed   atomic.Bool
	claimed chan struct{}
	release chan struct{}
}

func (q *heldClaimQueue) ClaimCallbacks(ctx context.Context, limit int, lease time.Duration, now time.Time) ([]callback.Callback, error) {
	cbs, err := q.Queue.ClaimCallbacks(ctx, limit, lease, now)
	if q.armed.CompareAndSwap(true, false) {
		close(q.claimed)
		<-q.release
	}
	return cbs, err
}

// TestUnsentCallbackLeavesAnotherWorkersProbe: the
// receiver is down and the breaker open; its cooldown is over and one
// worker's probe is in flight (allow answers 0 to every other worker
// meanwhile). Another worker whose claim was taken before the breaker
// opened (a slow claim transaction) finds its callback's lease too short
// and does not send it. It held no probe, so it must leave the breaker as
// it is: closed while the real probe is still in flight, the next claim
// would take every due callback and send it to the receiver that is down,
// each using up an attempt of its schedule.
func TestUnsentCallbackLeavesAnotherWorkersProbe(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	probeIn, probeGo := make(chan struct{}), make(chan struct{})
	var probeOnce sync.Once
	rc := newReceiver(t, func(n int, w http.ResponseWriter) {
		if n == 3 { // the probe: held until the test lets it answer
			probeOnce.Do(func() { close(probeIn) })
			<-probeGo
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	const timeout, lease = 2 * time.Second, 5 * time.Second
	q := &heldClaimQueue{Queue: f.store, BatchQueue: f.store, ReleasingQueue: f.store,
		claimed: make(chan struct{}), release: make(chan struct{})}
	e := f.engine(func(c *callback.Config) {
		c.Queue, c.Timeout, c.Lease, c.BreakerThreshold = q, timeout, lease, 2
	})
	ctx := context.Background()

	// Worker 1 claims callback Z while the breaker is closed; its claim
	// transaction is held.
	f.seed(rc.URL, 1)
	q.armed.Store(true)
	w1 := make(chan struct{})
	go func() {
		defer close(w1)
		_, _ = e.DeliverDue(ctx, 100)
	}()
	<-q.claimed

	// Meanwhile two callbacks fail with 503: the breaker opens.
	f.seed(rc.URL, 2)
	step(t, e, 2)
	if got := rc.calls.Load(); got != 2 {
		t.Fatalf("receiver saw %d requests, want 2", got)
	}
	f.clock.Advance(time.Minute) // the cooldown is over

	// Worker 2 probes; the probe is in flight.
	w2 := make(chan struct{})
	go func() {
		defer close(w2)
		_, _ = e.DeliverDue(ctx, 100)
	}()
	<-probeIn
	defer func() { close(probeGo); <-w2 }()

	// Worker 1's claim returns: its lease is too short now, Z is not sent.
	close(q.release)
	<-w1
	if got := rc.calls.Load(); got != 3 {
		t.Fatalf("receiver saw %d requests, want 3 (2 failures and the probe in flight)", got)
	}

	// The probe is still in flight: no other worker may send anything.
	n, err := e.DeliverDue(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 || rc.calls.Load() != 3 {
		t.Errorf("while the breaker's probe was in flight, a worker claimed %d callbacks and the down receiver saw %d requests in all (want 0 claimed, 3 requests): the unsent callback of another worker closed the breaker",
			n, rc.calls.Load())
	}
}

// TestUnsentProbeKeepsTheBreakerOpen: a probe not sent because its
// claim was slow says nothing about the receiver; the breaker must stay
// open and probe again with one callback. Recorded as a refusal by a
// receiver that answers, it closed the breaker: the next claim took every
// due callback and sent it to the receiver that was still down, each
// attempt counted.
func TestUnsentProbeKeepsTheBreakerOpen(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) })
	f.seed(rc.URL, 10)
	const timeout, lease = 2 * time.Second, 5 * time.Second
	q := newSlowClaimQueue(f, timeout, lease)
	e := f.engine(func(c *callback.Config) {
		c.Queue, c.Timeout, c.Lease, c.BreakerThreshold = q, timeout, lease, 2
	})
	ctx := context.Background()
	step(t, e, 10) // ten 503s: the breaker opens
	f.clock.Advance(time.Minute)

	q.slow.Store(true) // the probe's claim is slow: the probe is not sent
	step(t, e, 1)
	q.slow.Store(false)
	if got := rc.calls.Load(); got != 10 {
		t.Fatalf("receiver saw %d requests, want 10", got)
	}

	// The receiver is still down: the next step must be one probe.
	if _, err := e.DeliverDue(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if got := rc.calls.Load(); got != 11 {
		t.Errorf("after a probe left unsent, the next step sent %d callbacks to a receiver still down (want 1 probe): the breaker was closed without a successful probe",
			got-10)
	}
}
