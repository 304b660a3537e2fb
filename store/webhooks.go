package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	sq "github.com/Masterminds/squirrel"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/numedapp/paygate"
)

const eventColumns = `id, type, api_version, livemode, status, error, payment_id, received_count, created_at, received_at, processed_at`

func scanEvent(row pgx.Row, withPayload bool) (*paygate.WebhookEvent, error) {
	var e paygate.WebhookEvent
	dst := []any{&e.ID, &e.Type, &e.APIVersion, &e.Livemode, &e.Status, &e.Error, &e.PaymentID, &e.ReceivedCount, &e.CreatedAt, &e.ReceivedAt, &e.ProcessedAt}
	var payload []byte
	if withPayload {
		dst = append(dst, &payload)
	}
	if err := row.Scan(dst...); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("webhook event: %w", paygate.ErrNotFound)
		}
		return nil, err
	}
	e.CreatedAt, e.ReceivedAt = e.CreatedAt.UTC(), e.ReceivedAt.UTC()
	if e.ProcessedAt != nil {
		t := e.ProcessedAt.UTC()
		e.ProcessedAt = &t
	}
	if withPayload {
		e.Payload = payload
	}
	return &e, nil
}

// RecordWebhookEvent implements paygate.Store.
//
// The event row is inserted last, with its final status, by
// INSERT … ON CONFLICT DO NOTHING: when it already exists (a resend, or a
// concurrent delivery that committed first) the whole transaction, including
// anything apply changed, is rolled back and only receivedCount is
// incremented. Concurrent deliveries of one event serialize on the payment's
// row lock or on the event's primary key.
func (s *Store) RecordWebhookEvent(ctx context.Context, ev *paygate.WebhookEvent, refs paygate.PaymentRefs,
	apply func(p *paygate.Payment) (paygate.EventOutcome, error)) (*paygate.WebhookEvent, bool, error) {
	var out *paygate.WebhookEvent
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) (err error) {
		out, err = recordEvent(ctx, tx, ev, refs, apply)
		return err
	})
	err = stripeIDTaken(err)
	if err != nil && !errors.Is(err, errDuplicate) && ctx.Err() == nil {
		// apply runs before the event's insert finds a resend: when it
		// failed (or the payment's changes were refused) for an event that
		// is already stored, the delivery is still only a duplicate.
		var seen bool
		if qerr := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM paygate_webhook_events WHERE id = $1)`, ev.ID).Scan(&seen); qerr == nil && seen {
			err = errDuplicate
		}
	}
	if errors.Is(err, errDuplicate) {
		dup, err := countResend(ctx, s.pool, ev.ID)
		if err != nil {
			return nil, false, err
		}
		return dup, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: record event: %w", err)
	}
	return out, false, nil
}

// recordEvent records one event in tx (see RecordWebhookEvent); it returns
// errDuplicate when the event is stored already.
func recordEvent(ctx context.Context, tx pgx.Tx, ev *paygate.WebhookEvent, refs paygate.PaymentRefs,
	apply func(p *paygate.Payment) (paygate.EventOutcome, error)) (*paygate.WebhookEvent, error) {
	status, errMsg, paymentID := ev.Status, ev.Error, ""
	if status == "" {
		status = paygate.EventIgnored
	}
	b := &pgx.Batch{}
	processed := ev.ReceivedAt
	b.Queue(`INSERT INTO paygate_webhook_events (id, type, api_version, livemode, status, error, payment_id,
		created_at, received_at, processed_at, payload)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING`,
		ev.ID, ev.Type, ev.APIVersion, ev.Livemode, &status, &errMsg, &paymentID, ev.CreatedAt, ev.ReceivedAt, processed, string(ev.Payload))
	if apply != nil {
		p, err := lockPayment(ctx, tx, refs)
		if err != nil && !errors.Is(err, paygate.ErrNotFound) {
			return nil, err
		}
		var before map[string]paygate.Refund
		var beforeIDs []string
		var beforeRow paygate.Payment
		if p != nil {
			paymentID = p.ID
			before, beforeIDs, beforeRow = refundsByID(p), p.StripeIDs(), *p
		}
		res, err := apply(p)
		if err != nil {
			return nil, err
		}
		status, errMsg = res.Status, res.Error
		if p != nil && (len(res.History) > 0 || !sameRow(&beforeRow, p) || refundsChanged(before, p)) {
			if queueSave(b, p, before, beforeIDs, res.History) {
				queueNotify(b)
			}
		}
	}
	br := tx.SendBatch(ctx, b)
	tag, err := br.Exec()
	if err == nil && tag.RowsAffected() == 0 {
		err = errDuplicate
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	o := *ev
	o.Status, o.Error, o.PaymentID, o.ReceivedCount, o.ProcessedAt, o.Payload = status, errMsg, paymentID, 1, &processed, nil
	return &o, nil
}

// countResend counts one more delivery of a stored event and returns it.
func countResend(ctx context.Context, q querier, id string) (*paygate.WebhookEvent, error) {
	dup, err := scanEvent(q.QueryRow(ctx, `UPDATE paygate_webhook_events SET received_count = received_count + 1
		WHERE id = $1 RETURNING `+eventColumns, id), false)
	if err != nil {
		return nil, fmt.Errorf("store: count resend: %w", err)
	}
	return dup, nil
}

// retryable reports a transaction that failed only because of concurrent
// ones (a deadlock, a serialization failure): running it again can succeed.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// errDuplicate rolls back the transaction of an event already stored.
var errDuplicate = errors.New("store: event already recorded")

// sameRow reports whether the columns queueSave writes are unchanged.
func sameRow(a, b *paygate.Payment) bool {
	return a.Status == b.Status && a.AmountRefunded == b.AmountRefunded && a.StripeAmountRefunded == b.StripeAmountRefunded &&
		a.PaymentURL == b.PaymentURL && a.PriceID == b.PriceID && a.PaymentLinkID == b.PaymentLinkID &&
		a.CheckoutSessionID == b.CheckoutSessionID && a.PaymentIntentID == b.PaymentIntentID && a.ChargeID == b.ChargeID &&
		a.Livemode == b.Livemode && a.UpdatedAt.Equal(b.UpdatedAt) && a.CustomerEmail == b.CustomerEmail &&
		a.CallbackSeq == b.CallbackSeq && a.StripeRefundedAt.Equal(b.StripeRefundedAt) &&
		reflect.DeepEqual(a.Attempts, b.Attempts) && slices.Equal(a.Disputes, b.Disputes)
}

func refundsChanged(before map[string]paygate.Refund, p *paygate.Payment) bool {
	if len(before) != len(p.Refunds) {
		return true
	}
	for _, r := range p.Refunds {
		if old, ok := before[r.ID]; !ok || old != r {
			return true
		}
	}
	return false
}

// lockPayment finds the payment refs name — by our id, else by the first of
// its Stripe ids that is indexed — and locks its row.
func lockPayment(ctx context.Context, tx pgx.Tx, refs paygate.PaymentRefs) (*paygate.Payment, error) {
	if refs.PaymentID != "" {
		p, err := lockPaymentWhere(ctx, tx, "p.id = $1", refs.PaymentID)
		if !errors.Is(err, paygate.ErrNotFound) {
			return p, err
		}
	}
	ids := refs.StripeIDs()
	if len(ids) == 0 {
		return nil, fmt.Errorf("payment: %w", paygate.ErrNotFound)
	}
	return lockPaymentWhere(ctx, tx, `p.id = (SELECT r.payment_id FROM paygate_payment_refs r
		WHERE r.stripe_id = ANY($1) ORDER BY array_position($1, r.stripe_id) LIMIT 1)`, ids)
}

// ListWebhookEvents implements paygate.Store.
func (s *Store) ListWebhookEvents(ctx context.Context, f paygate.WebhookEventFilter) (*paygate.Page[paygate.WebhookEvent], error) {
	where := sq.And{}
	if f.Type != "" {
		where = append(where, sq.Eq{"type": f.Type})
	}
	if f.Status != "" {
		where = append(where, sq.Eq{"status": f.Status})
	}
	return listPage(ctx, s.pool, "paygate_webhook_events", eventColumns, where, f.PageParams,
		byTime("events", "received_at", func(e paygate.WebhookEvent) (time.Time, string) { return e.ReceivedAt, e.ID }),
		func(r pgx.CollectableRow) (paygate.WebhookEvent, error) {
			e, err := scanEvent(r, false)
			if err != nil {
				return paygate.WebhookEvent{}, err
			}
			return *e, nil
		})
}

// GetWebhookEvent implements paygate.Store.
func (s *Store) GetWebhookEvent(ctx context.Context, id string) (*paygate.WebhookEvent, error) {
	return scanEvent(s.pool.QueryRow(ctx, `SELECT `+eventColumns+`, payload FROM paygate_webhook_events WHERE id = $1`, id), true)
}

// RematchWebhookEvent implements paygate.EventRematcher: in one
// transaction, it locks the payment refs find, if any, and the event's
// row, and if the event is still unmatched applies it to the payment and
// stores the changes, history and callbacks with the event's new outcome.
func (s *Store) RematchWebhookEvent(ctx context.Context, id string, refs paygate.PaymentRefs, now time.Time,
	apply func(p *paygate.Payment) (paygate.EventOutcome, error)) (*paygate.WebhookEvent, bool, error) {
	var out *paygate.WebhookEvent
	matched := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		matched = false
		// The payment first, then the event: the order in which a batch
		// that counts a resend of this event takes them.
		p, err := lockPayment(ctx, tx, refs)
		if err != nil && !errors.Is(err, paygate.ErrNotFound) {
			return err
		}
		ev, err := scanEvent(tx.QueryRow(ctx, `SELECT `+eventColumns+` FROM paygate_webhook_events WHERE id = $1 FOR UPDATE`, id), false)
		if err != nil {
			return err
		}
		out = ev
		if ev.Status != paygate.EventUnmatched || p == nil {
			return nil
		}
		before, beforeIDs := refundsByID(p), p.StripeIDs()
		res, err := apply(p)
		if err != nil {
			return err
		}
		if res.Status == paygate.EventUnmatched {
			return nil
		}
		b := &pgx.Batch{}
		b.Queue(`UPDATE paygate_webhook_events SET status = $2, error = $3, payment_id = $4, processed_at = $5 WHERE id = $1`,
			id, res.Status, res.Error, p.ID, now)
		if queueSave(b, p, before, beforeIDs, res.History) {
			queueNotify(b)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		o := *ev
		o.Status, o.Error, o.PaymentID, o.ProcessedAt = res.Status, res.Error, p.ID, &now
		out, matched = &o, true
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("store: rematch event: %w", stripeIDTaken(err))
	}
	return out, matched, nil
}
