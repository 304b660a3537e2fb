package paygate

import (
	"context"
	"slices"
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
// nothing of the batch is stored. Two batches can be in flight at once (when
// one is stuck): a store must not record an event as unmatched while an
// earlier batch may still add the Stripe id that names its payment (see
// WaitEarlierBatches). The store package implements it.
type WebhookBatchStore interface {
	RecordWebhookEvents(ctx context.Context, recs []*WebhookRecord) error
}

// maxIngestBatch bounds the events one transaction records. One batch is
// in flight at a time: the events that arrive meanwhile make the next one.
// A second batch starts only when the batch in flight has taken longer
// than ingestStall (waiting for a payment's lock, say), so one slow batch
// does not hold up the rest; it takes only the events that name none of
// the payments of the batches in flight (takeBesideLocked). Two batches at
// once were tried, again with the second starting once the first had sent
// its COMMIT (its locks and reads overlapping the first's WAL flush): on
// this two-core host they made smaller transactions, each costing
// PostgreSQL about as much CPU as a big one (30 % more an event), and
// ingest was no faster at 8 senders and slower at 32 (docs/benchmarks.md).
const (
	maxIngestBatch = 128
	ingestWorkers  = 2
	ingestStall    = 50 * time.Millisecond
)

// ingestTimeout bounds a batch's transaction; webhook requests do not cancel
// it (they share it).
const ingestTimeout = 30 * time.Second

// batcher groups concurrent webhook events into one transaction: while one
// batch locks and applies, the events that arrive wait and go together in
// the next. Under no load a batch is one event, with no added delay; under
// load the cost of a commit is shared. A goroutine runs each batch, so a
// Gateway starts nothing until a webhook arrives.
type batcher struct {
	store WebhookBatchStore
	mu    sync.Mutex
	queue []*batchItem
	// running counts the batches in flight; leader is the latest taken,
	// at started, until it finishes (0: none); stallCheck is set while a
	// timer will look again.
	running    int
	inflight   map[uint64]*flight
	leader     uint64
	batches    uint64
	started    time.Time
	stallCheck bool
	// observe, if set, is told each batch's size.
	observe func(n int)
	// left, if set, is called with a record its request stopped waiting
	// for, once its batch has committed it (to send the callbacks it
	// committed claimed, which would otherwise wait for their lease).
	left func(rec *WebhookRecord)
}

// flight is a batch in flight: done is closed when it has finished; the
// Stripe ids its records name are all the ids it can add to a payment.
type flight struct {
	done chan struct{}
	recs []*WebhookRecord
}

type batchItem struct {
	rec  *WebhookRecord
	err  error
	done chan struct{}
}

// record submits rec and waits until its batch committed (or failed). A
// canceled ctx stops the wait, not the batch (b.left is told of rec then).
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
		if b.left != nil {
			go func() {
				<-it.done
				if it.err == nil && rec.Err == nil {
					b.left(rec)
				}
			}()
		}
		return ctx.Err()
	}
}

// startLocked takes the next batch from the queue when none is in flight,
// or when the latest has been in flight for longer than ingestStall; until
// then a timer looks again at that moment, so events queued behind a stuck
// batch do not wait for it even if nothing else arrives. b.mu is held.
func (b *batcher) startLocked() {
	if b.running >= ingestWorkers || len(b.queue) == 0 {
		return
	}
	if wait := ingestStall - time.Since(b.started); b.leader != 0 && wait > 0 {
		if !b.stallCheck {
			b.stallCheck = true
			time.AfterFunc(wait, func() {
				b.mu.Lock()
				b.stallCheck = false
				b.startLocked()
				b.mu.Unlock()
			})
		}
		return
	}
	var items []*batchItem
	if len(b.inflight) == 0 {
		n := min(len(b.queue), maxIngestBatch)
		items = make([]*batchItem, n)
		copy(items, b.queue)
		b.queue = b.queue[n:]
	} else if items = b.takeBesideLocked(); len(items) == 0 {
		return // every queued event names a payment of a batch in flight: it waits for it
	}
	if len(b.queue) == 0 {
		b.queue = nil // let the backing array go
	}
	n := len(items)
	b.batches++
	b.leader, b.started = b.batches, time.Now()
	b.running++
	if b.inflight == nil {
		b.inflight = map[uint64]*flight{}
	}
	recs := make([]*WebhookRecord, n)
	for i, it := range items {
		recs[i] = it.rec
	}
	b.inflight[b.batches] = &flight{done: make(chan struct{}), recs: recs}
	go b.run(b.batches, items, recs)
}

// takeBesideLocked takes the next batch to start beside a stuck one (or
// one waiting for a stuck one): the queued events that name none of the
// payments and Stripe ids of the batches in flight. The others stay
// queued: beside the stuck batch they would wait for the same payment's
// lock, and a second batch stuck on it would leave no batch for any other
// payment's events. b.mu is held.
func (b *batcher) takeBesideLocked() []*batchItem {
	busy := map[string]bool{}
	for _, f := range b.inflight {
		for _, r := range f.recs {
			if r.Refs.PaymentID != "" {
				busy[r.Refs.PaymentID] = true
			}
			for _, id := range r.Refs.StripeIDs() {
				busy[id] = true
			}
		}
	}
	var items []*batchItem
	rest := b.queue[:0]
	for _, it := range b.queue {
		refs := it.rec.Refs
		if len(items) < maxIngestBatch && !busy[refs.PaymentID] && !slices.ContainsFunc(refs.StripeIDs(), func(id string) bool { return busy[id] }) {
			items = append(items, it)
		} else {
			rest = append(rest, it)
		}
	}
	clear(b.queue[len(rest):])
	b.queue = rest
	return items
}

// earlierMayAdd reports whether a batch taken before batch id, still in
// flight, names any of ids.
func (b *batcher) earlierMayAdd(id uint64, ids []string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, f := range b.inflight {
		if k >= id {
			continue
		}
		for _, r := range f.recs {
			if r.Apply != nil && slices.ContainsFunc(r.Refs.StripeIDs(), func(s string) bool { return slices.Contains(ids, s) }) {
				return true
			}
		}
	}
	return false
}

// waitEarlier waits until every batch taken before batch id has finished
// (committed or failed). Meanwhile batch id holds no connection and no
// lock, so it does not count as in flight for starting others: the events
// queued behind it, and behind the batch it waits for, go on.
func (b *batcher) waitEarlier(ctx context.Context, id uint64) error {
	b.mu.Lock()
	var earlier []chan struct{}
	for k, f := range b.inflight {
		if k < id {
			earlier = append(earlier, f.done)
		}
	}
	if len(earlier) > 0 {
		b.running--
		if b.leader == id {
			b.leader = 0
		}
		b.startLocked()
	}
	b.mu.Unlock()
	if len(earlier) == 0 {
		return nil
	}
	defer func() {
		b.mu.Lock()
		b.running++
		b.mu.Unlock()
	}()
	for _, done := range earlier {
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (b *batcher) run(id uint64, items []*batchItem, recs []*WebhookRecord) {
	if b.observe != nil {
		b.observe(len(items))
	}
	ctx, cancel := context.WithTimeout(context.Background(), ingestTimeout)
	ctx = context.WithValue(ctx, batchKey{}, batchHooks{
		waitEarlier: func(ctx context.Context) error { return b.waitEarlier(ctx, id) },
		mayAdd:      func(ids []string) bool { return b.earlierMayAdd(id, ids) },
	})
	err := b.store.RecordWebhookEvents(ctx, recs)
	cancel()
	b.mu.Lock()
	close(b.inflight[id].done)
	delete(b.inflight, id)
	b.running--
	if b.leader == id {
		b.leader = 0
	}
	b.startLocked()
	b.mu.Unlock()
	for _, it := range items {
		it.err = err
		close(it.done)
	}
}

type batchKey struct{}

type batchHooks struct {
	waitEarlier func(context.Context) error
	mayAdd      func(ids []string) bool
}

// WaitEarlierBatches is for a WebhookBatchStore: it waits until every batch
// of webhook events taken before the one RecordWebhookEvents was called for
// (with ctx) has committed or failed.
//
// A batch starts beside the one in flight only when that one is stuck (in
// flight for 50 ms), and then cannot see what the stuck one has not committed: a
// payment found by a Stripe id that the stuck batch adds is not found. So,
// before it reads, a store asks EarlierBatchMayAdd of each event's refs;
// when an event so marked finds no payment, it rolls back,
// WaitEarlierBatches and reads again before it records the event as
// unmatched. A store that records a batch another way (event by event,
// say) waits before it starts, if EarlierBatchMayAdd says so of one of its
// events. Events then find what the events that arrived before them added,
// as one batch after the other would, and an event of another service does
// not wait for a stuck batch.
func WaitEarlierBatches(ctx context.Context) error {
	if h, ok := ctx.Value(batchKey{}).(batchHooks); ok {
		return h.waitEarlier(ctx)
	}
	return nil
}

// EarlierBatchMayAdd is for a WebhookBatchStore: it reports whether a batch
// of webhook events taken before the one RecordWebhookEvents was called for
// (with ctx), still in flight, has an event that names one of refs' Stripe
// ids, and so may be adding it to a payment. An event can add to its
// payment only the ids it names. See WaitEarlierBatches.
func EarlierBatchMayAdd(ctx context.Context, refs PaymentRefs) bool {
	if h, ok := ctx.Value(batchKey{}).(batchHooks); ok {
		return h.mayAdd(refs.StripeIDs())
	}
	return false
}
