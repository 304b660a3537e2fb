package paygate

import (
	"context"
	"sync"
	"time"
)

// WebhookRecord is one webhook event for WebhookBatchStore: the event, the
// refs that name its payment and the apply function, as for
// RecordWebhookEvent; the store fills in the outcome.
type WebhookRecord struct {
	Event *WebhookEvent
	Refs  PaymentRefs
	Apply func(p *Payment) (EventOutcome, error)

	// ClaimToken, if set, asks the store to insert the callbacks this
	// event queues already claimed — leased to ClaimToken until ClaimUntil,
	// their first attempt counted — where the claim would have taken them:
	// the payment has no earlier callback pending, and it is the payment's
	// first callback in the batch. A store may ignore it.
	ClaimToken string
	ClaimUntil time.Time

	// Stored is the event as stored (for a duplicate: with its new
	// receivedCount); Duplicate reports a resend; Err is why this record
	// alone was rolled back (nothing of it is stored). Claimed are the
	// callbacks committed claimed for ClaimToken, to be sent now.
	Stored    *WebhookEvent
	Duplicate bool
	Err       error
	Claimed   []Callback
}

// WebhookBatchStore is implemented by a Store that can record several
// webhook events in one transaction (group commit). RecordWebhookEvents
// records each as RecordWebhookEvent would, all committed together; a
// record that fails is rolled back alone (its Err set) and does not fail the
// others. It returns an error when the transaction as a whole failed: then
// nothing of the batch is stored. The store package implements it.
type WebhookBatchStore interface {
	RecordWebhookEvents(ctx context.Context, recs []*WebhookRecord) error
}

// maxIngestBatch bounds the events one transaction records. One batch is
// in flight at a time: the events that arrive meanwhile make the next one.
// A second worker starts only when the batch in flight has taken longer
// than ingestStall (waiting for a payment's lock, say), so one slow batch
// does not hold up the rest. Two batches at once were tried: on a busy
// host they made smaller transactions, each costing PostgreSQL about as
// much CPU as a big one, and ingest was slower (docs/benchmarks.md).
const (
	maxIngestBatch = 128
	ingestWorkers  = 2
	ingestStall    = 50 * time.Millisecond
)

// ingestTimeout bounds a batch's transaction; webhook requests do not cancel
// it (they share it).
const ingestTimeout = 30 * time.Second

// batcher groups concurrent webhook events into one transaction: while one
// batch commits, the events that arrive wait and go together in the next.
// Under no load a batch is one event, with no added delay; under load the
// cost of a commit is shared. The worker goroutine runs only while there is
// work, so a Gateway starts nothing until a webhook arrives.
type batcher struct {
	store   WebhookBatchStore
	mu      sync.Mutex
	queue   []*batchItem
	running int // workers
	// started is when the latest batch was taken from the queue (or its
	// worker started); stallCheck is set while a timer will look again.
	started    time.Time
	stallCheck bool
	// observe, if set, is told each batch's size.
	observe func(n int)
}

type batchItem struct {
	rec  *WebhookRecord
	err  error
	done chan struct{}
}

// record submits rec and waits until its batch committed (or failed). A
// canceled ctx stops the wait, not the batch.
func (b *batcher) record(ctx context.Context, rec *WebhookRecord) error {
	it := &batchItem{rec: rec, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, it)
	b.startLocked()
	b.mu.Unlock()
	select {
	case <-it.done:
		return it.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startLocked starts a worker for the queue when none runs, or a second
// one when the batch in flight has run longer than ingestStall; until then
// a timer looks again at that moment, so events queued behind a stuck batch
// do not wait for it even if nothing else arrives. b.mu is held.
func (b *batcher) startLocked() {
	if b.running >= ingestWorkers || len(b.queue) == 0 {
		return
	}
	if wait := ingestStall - time.Since(b.started); b.running == 0 || wait <= 0 {
		b.running++
		b.started = time.Now()
		go b.run()
	} else if !b.stallCheck {
		b.stallCheck = true
		time.AfterFunc(wait, func() {
			b.mu.Lock()
			b.stallCheck = false
			b.startLocked()
			b.mu.Unlock()
		})
	}
}

func (b *batcher) run() {
	for {
		b.mu.Lock()
		n := min(len(b.queue), maxIngestBatch)
		if n == 0 {
			b.running--
			b.mu.Unlock()
			return
		}
		items := make([]*batchItem, n)
		copy(items, b.queue)
		b.started = time.Now()
		b.queue = b.queue[n:]
		if len(b.queue) == 0 {
			b.queue = nil // let the backing array go
		}
		b.mu.Unlock()

		recs := make([]*WebhookRecord, n)
		for i, it := range items {
			recs[i] = it.rec
		}
		if b.observe != nil {
			b.observe(n)
		}
		ctx, cancel := context.WithTimeout(context.Background(), ingestTimeout)
		err := b.store.RecordWebhookEvents(ctx, recs)
		cancel()
		for _, it := range items {
			it.err = err
			close(it.done)
		}
	}
}
