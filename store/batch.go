package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/numedapp/paygate"
)

// RecordWebhookEvents implements paygate.WebhookBatchStore: every record in
// one transaction, so the batch shares one commit (one WAL flush).
//
// The usual way takes two round trips for the whole batch, whatever its
// size: (1) BEGIN, lock every payment the events name, in id order, read
// their refunds and the Stripe ids that name them; (2) apply the events in
// memory, send every write and COMMIT, pipelined. A resend is found by the
// event's primary key when it is inserted: the insert fails, PostgreSQL
// skips the rest of the pipeline (the COMMIT with it), and the batch goes
// the event-by-event way, which counts the resend. There is no separate
// "stored already?" read: a read of a table that grows from empty can be
// planned once, while it is tiny, as a sequential scan and then kept (a
// cached generic plan); that read cost 0.2–0.6 ms per event.
//
// If anything in (2) fails — a resend, a Stripe id that names another
// payment, any database error — the batch is rolled back and recorded
// again one event at a time, each under a savepoint, so that a failing
// event fails alone. A deadlock or serialization failure retries the batch.
func (s *Store) RecordWebhookEvents(ctx context.Context, recs []*paygate.WebhookRecord) error {
	// Events are applied in the order they arrived: an event may find its
	// payment only by an id an earlier one taught it. The usual way locks
	// every payment in one statement, in id order; the event-by-event way
	// may deadlock with another batch, and is then retried.
	var err error
	waited := false // for the batches before this one (see paygate.WaitEarlierBatches)
	wait := func() error {
		waited = true
		return paygate.WaitEarlierBatches(ctx)
	}
	for attempt := 0; attempt < 5; attempt++ {
		err = s.recordPipelined(ctx, recs, waited)
		if errors.Is(err, errWaitEarlier) {
			if err = wait(); err == nil {
				err = s.recordPipelined(ctx, recs, waited)
			}
		}
		if errors.Is(err, errSlowPath) {
			// Event by event, an event that finds no payment is stored
			// unmatched at once: wait first for the batches before this
			// one, if they may add what names one of its payments.
			err = nil
			if !waited && slices.ContainsFunc(recs, func(r *paygate.WebhookRecord) bool {
				return r.Apply != nil && paygate.EarlierBatchMayAdd(ctx, r.Refs)
			}) {
				err = wait()
			}
			if err == nil {
				err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return recordEach(ctx, tx, recs) })
			}
		}
		if !retryable(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("store: record events: %w", err)
	}
	return nil
}

// indexPlans, first in a hot transaction, makes its statements run on
// generic plans that read indexes:
//
//   - plan_cache_mode: PostgreSQL otherwise planned most of a batch's
//     statements afresh at every execution (their arrays make a custom plan
//     look cheaper), which cost about half as much CPU as running them.
//   - enable_seqscan: a generic plan is kept for the connection's life (until
//     the table's statistics change), and one made while a table was small
//     scans it: a fresh paymentd's callback-result UPDATE and refunds read
//     scanned every callback and refund of the table, 1.6 ms a batch and
//     growing. Every statement of these transactions finds its rows by a
//     key, so an index scan is right at any size.
//
// A generic plan belongs to the statement's text, whatever the settings it
// was made under: a statement of these transactions must not also run
// elsewhere (it would take its plan there, or bring one back).
// TestBatchPlansUseIndexes checks the plans on an empty store and a large one.
const indexPlans = `SELECT set_config('plan_cache_mode', 'force_generic_plan', true), set_config('enable_seqscan', 'off', true)`

// errSlowPath sends a batch to recordEach.
var errSlowPath = errors.New("store: record the batch event by event")

// errWaitEarlier sends a batch back, rolled back, to wait for the batches
// before it: an event found no payment while one of them, not yet
// committed, may be adding the Stripe id that names it.
var errWaitEarlier = errors.New("store: wait for the batches before this one")

// recordPipelined runs recordBatch on one connection, its transaction
// opened and committed inside its two pipelines.
func (s *Store) recordPipelined(ctx context.Context, recs []*paygate.WebhookRecord, waited bool) error {
	return s.onConn(ctx, func(c *pgx.Conn) error { return recordBatch(ctx, c, recs, waited) })
}

// hotTx runs the statements queue adds as one transaction in one round
// trip — BEGIN, indexPlans, them, COMMIT — on a connection of its own.
func (s *Store) hotTx(ctx context.Context, queue func(b *pgx.Batch)) error {
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(indexPlans)
	queue(b)
	b.Queue(`COMMIT`)
	return s.onConn(ctx, func(c *pgx.Conn) error { return c.SendBatch(ctx, b).Close() })
}

// onConn runs fn, which opens and commits a transaction in pipelines of its
// own (BEGIN and COMMIT queued with other statements), on a connection of
// the pool, and rolls back whatever fn left open if it fails.
func (s *Store) onConn(ctx context.Context, fn func(*pgx.Conn) error) error {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	err = fn(c.Conn())
	if err != nil && c.Conn().PgConn().TxStatus() != 'I' {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, rerr := c.Exec(rctx, "ROLLBACK"); rerr != nil {
			// The pool closes a connection returned mid-transaction.
			return errors.Join(err, rerr)
		}
	}
	return err
}

// touched is a payment of the batch as it was locked, and what the batch's
// events wrote to its history.
type touched struct {
	p         *paygate.Payment
	before    map[string]paygate.Refund
	beforeIDs []string
	beforeRow paygate.Payment
	hist      []paygate.HistoryEntry
	histRecs  []*paygate.WebhookRecord // the record each entry of hist came from
}

// recordBatch is the usual way (see RecordWebhookEvents). It opens the
// transaction in its first pipeline and commits it at the end of its
// second; on an error the caller rolls back.
func recordBatch(ctx context.Context, conn *pgx.Conn, recs []*paygate.WebhookRecord, waited bool) error {
	var payIDs, stripeIDs []string
	seen := make(map[string]bool, len(recs))
	for _, r := range recs {
		r.Stored, r.Duplicate, r.Err, r.Claimed = nil, false, nil, nil
		if seen[r.Event.ID] {
			return errSlowPath // a resend within the batch: counted there
		}
		seen[r.Event.ID] = true
		if r.Apply == nil {
			continue
		}
		if r.Refs.PaymentID != "" {
			payIDs = append(payIDs, r.Refs.PaymentID)
		}
		stripeIDs = append(stripeIDs, r.Refs.StripeIDs()...)
	}

	// (1) Lock and read.
	// The ids are gathered first (an InitPlan), so the payments are read
	// by their primary key.
	const named = `p.id = ANY(ARRAY(SELECT unnest($1::text[]) UNION SELECT r.payment_id FROM paygate_payment_refs r WHERE r.stripe_id = ANY($2)))`
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(indexPlans)
	b.Queue(`SELECT `+paymentColumns+` FROM paygate_payments p WHERE `+named+` ORDER BY p.id FOR UPDATE`, payIDs, stripeIDs)
	// Statements after the lock see every refund committed before it.
	b.Queue(`SELECT id, payment_id, stripe_refund_id, amount, status, reason, created_at, updated_at FROM paygate_refunds p
		WHERE `+strings.Replace(named, "p.id = ANY", "p.payment_id = ANY", 1)+` ORDER BY created_at, id`, payIDs, stripeIDs)
	b.Queue(`SELECT stripe_id, payment_id FROM paygate_payment_refs WHERE stripe_id = ANY($1)`, stripeIDs)
	// Which events would have to wait for an earlier batch (one in flight
	// that names their Stripe ids) if they find no payment: asked before
	// the reads, so that a batch that commits meanwhile is either seen by
	// them or waited for.
	var mayWait []bool
	if !waited {
		mayWait = make([]bool, len(recs))
		for i, r := range recs {
			mayWait[i] = r.Apply != nil && paygate.EarlierBatchMayAdd(ctx, r.Refs)
		}
	}
	br := conn.SendBatch(ctx, b)
	for range 2 { // BEGIN, indexPlans
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
	}
	payments := map[string]*touched{}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return err
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*paygate.Payment, error) { return scanPayment(r) })
	if err != nil {
		br.Close()
		return err
	}
	byID := map[string]*paygate.Payment{}
	for _, p := range ps {
		byID[p.ID] = p
	}
	if rows, err = br.Query(); err != nil {
		br.Close()
		return err
	}
	if err := scanRefunds(rows, byID); err != nil {
		br.Close()
		return err
	}
	refs := map[string]string{}
	if rows, err = br.Query(); err != nil {
		br.Close()
		return err
	}
	var sid, pid string
	if _, err := pgx.ForEachRow(rows, []any{&sid, &pid}, func() error { refs[sid] = pid; return nil }); err != nil {
		br.Close()
		return err
	}
	if err := br.Close(); err != nil {
		return err
	}

	// (2) Apply in memory, then send every write and the commit.
	w := &pgx.Batch{}
	var events eventRows
	var order []*touched
	for i, r := range recs {
		ev := r.Event
		status, errMsg, paymentID := ev.Status, ev.Error, ""
		if status == "" {
			status = paygate.EventIgnored
		}
		if r.Apply != nil {
			t := payments[findIn(r.Refs, byID, refs)]
			if t == nil {
				if p := byID[findIn(r.Refs, byID, refs)]; p != nil {
					t = &touched{p: p, before: refundsByID(p), beforeIDs: p.StripeIDs(), beforeRow: *p}
					payments[p.ID] = t
					order = append(order, t)
				}
			}
			var p *paygate.Payment
			if t != nil {
				p, paymentID = t.p, t.p.ID
			} else if mayWait != nil && mayWait[i] {
				return errWaitEarlier
			}
			res, err := r.Apply(p)
			if err != nil {
				return errSlowPath // this event fails alone, on the slow path
			}
			status, errMsg = res.Status, res.Error
			if t != nil {
				t.hist = append(t.hist, res.History...)
				for range res.History {
					t.histRecs = append(t.histRecs, r)
				}
				for _, id := range t.p.StripeIDs() {
					refs[id] = t.p.ID // later events of the batch find it by them
				}
			}
		}
		o := *ev
		o.Status, o.Error, o.PaymentID, o.ReceivedCount, o.ProcessedAt, o.Payload = status, errMsg, paymentID, 1, &o.ReceivedAt, nil
		r.Stored = &o
		events.add(ev, status, errMsg, paymentID)
	}
	events.queue(w) // first: a resend fails here, before any other write
	claimed := map[string]bool{}
	if unclaimed := queueSaves(w, order, claimed); unclaimed {
		queueNotify(w)
	}
	w.Queue(`COMMIT`)
	bufs := sizeBuffers(ctx, conn, w)
	// Close reads every result in order (the claimed callbacks' rows among
	// them) and returns the first error; after one, PostgreSQL skipped the
	// rest, the COMMIT with it.
	err = conn.SendBatch(ctx, w).Close()
	bufs.release(conn)
	if err != nil {
		for _, r := range recs {
			r.Stored = nil
		}
		return slowPathFor(err)
	}
	for _, t := range order {
		for i, h := range t.hist {
			if c, r := h.Callback, t.histRecs[i]; c != nil && claimed[c.ID] {
				cb := *c
				cb.LeaseToken, cb.LeaseUntil, cb.Attempts = r.ClaimToken, r.ClaimUntil, 1
				r.Claimed = append(r.Claimed, cb)
			}
		}
	}
	return nil
}

// slowPathFor turns a failed write into errSlowPath, unless retrying the
// whole batch is the answer (a deadlock) or the connection is gone.
func slowPathFor(err error) error {
	if retryable(err) || !isPgError(err) && !errors.Is(err, errSlowPath) {
		return err
	}
	return errSlowPath
}

func isPgError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr)
}

// findIn returns the id of the payment refs name among the locked ones: by
// our id, else by the first of its Stripe ids that names one.
func findIn(r paygate.PaymentRefs, byID map[string]*paygate.Payment, refs map[string]string) string {
	if byID[r.PaymentID] != nil {
		return r.PaymentID
	}
	for _, id := range r.StripeIDs() {
		if pid := refs[id]; byID[pid] != nil {
			return pid
		}
	}
	return ""
}

// recordEach records the batch event by event, each under a savepoint: a
// duplicate, a Stripe id clash or an apply error rolls back that event alone.
// It first locks every payment the batch names, in id order, as
// recordBatch does: locked event by event, in the batch's order, two
// batches naming the same payments in different orders deadlock each other
// on every retry (found by storetest's WebhookBatches).
func recordEach(ctx context.Context, tx pgx.Tx, recs []*paygate.WebhookRecord) error {
	var payIDs, stripeIDs []string
	for _, r := range recs {
		if r.Apply == nil {
			continue
		}
		if r.Refs.PaymentID != "" {
			payIDs = append(payIDs, r.Refs.PaymentID)
		}
		stripeIDs = append(stripeIDs, r.Refs.StripeIDs()...)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM paygate_payments p WHERE p.id = ANY(ARRAY(SELECT unnest($1::text[])
		UNION SELECT r.payment_id FROM paygate_payment_refs r WHERE r.stripe_id = ANY($2))) ORDER BY p.id FOR UPDATE`, payIDs, stripeIDs); err != nil {
		return err
	}
	for _, r := range recs {
		r.Stored, r.Duplicate, r.Err = nil, false, nil
		if _, err := tx.Exec(ctx, `SAVEPOINT paygate_event`); err != nil {
			return err
		}
		stored, err := recordEvent(ctx, tx, r.Event, r.Refs, r.Apply)
		if err == nil {
			r.Stored = stored
			continue
		}
		if _, rerr := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT paygate_event`); rerr != nil {
			return errors.Join(err, rerr) // the transaction is lost
		}
		switch {
		case errors.Is(err, errDuplicate):
			dup, err := countResend(ctx, tx, r.Event.ID)
			if err != nil {
				return err
			}
			r.Stored, r.Duplicate = dup, true
		case retryable(err):
			return err // the whole batch again
		default:
			r.Err = fmt.Errorf("store: record event: %w", stripeIDTaken(err))
		}
	}
	return nil
}
