package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	sq "github.com/Masterminds/squirrel"

	"github.com/numedapp/paygate"
)

const eventColumns = `id, type, api_version, livemode, status, error, payment_id, received_count, created_at, received_at, processed_at`

func scanEvent(row scanner, withPayload bool) (*paygate.WebhookEvent, error) {
	var e paygate.WebhookEvent
	dst := []any{&e.ID, &e.Type, &e.APIVersion, &e.Livemode, &e.Status, &e.Error, &e.PaymentID, &e.ReceivedCount,
		tsScan{&e.CreatedAt}, tsScan{&e.ReceivedAt}, tsNullScan{&e.ProcessedAt}}
	if withPayload {
		dst = append(dst, rawScan{&e.Payload})
	}
	if err := row.Scan(dst...); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("webhook event: %w", paygate.ErrNotFound)
		}
		return nil, err
	}
	return &e, nil
}

// RecordWebhookEvent implements paygate.Store. The whole of it is one write
// transaction: a resend, or a concurrent delivery of the same event, waits
// for the writer connection and then finds the event stored.
func (s *Store) RecordWebhookEvent(ctx context.Context, ev *paygate.WebhookEvent, refs paygate.PaymentRefs,
	apply func(p *paygate.Payment) (paygate.EventOutcome, error)) (*paygate.WebhookEvent, bool, error) {
	var out *paygate.WebhookEvent
	dup, queued := false, false
	err := s.write(ctx, func(ctx context.Context, tx *wtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE paygate_webhook_events SET received_count = received_count + 1 WHERE id = ?`, ev.ID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n > 0 {
			dup = true
			out, err = scanEvent(tx.QueryRowContext(ctx, `SELECT `+eventColumns+` FROM paygate_webhook_events WHERE id = ?`, ev.ID), false)
			return err
		}
		status, errMsg, paymentID := ev.Status, ev.Error, ""
		if status == "" {
			status = paygate.EventIgnored
		}
		processed := ev.ReceivedAt
		if apply != nil {
			p, err := lockPayment(ctx, tx, refs)
			if err != nil && !errors.Is(err, paygate.ErrNotFound) {
				return err
			}
			var before map[string]paygate.Refund
			var beforeIDs []string
			if p != nil {
				paymentID = p.ID
				before, beforeIDs = refundsByID(p), p.StripeIDs()
			}
			o, err := apply(p)
			if err != nil {
				return err
			}
			status, errMsg = o.Status, o.Error
			if p != nil {
				// Unchanged columns cost one UPDATE; SQLite has no row lock
				// to release, so unlike PostgreSQL nothing is saved by
				// skipping it.
				if queued, err = save(ctx, tx, p, before, beforeIDs, o.History); err != nil {
					return err
				}
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO paygate_webhook_events (id, type, api_version, livemode, status, error, payment_id,
			created_at, received_at, processed_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			ev.ID, ev.Type, ev.APIVersion, b2i(ev.Livemode), string(status), errMsg, paymentID,
			ts(ev.CreatedAt), ts(ev.ReceivedAt), ts(processed), string(ev.Payload)); err != nil {
			return fmt.Errorf("event: %w", err)
		}
		o := *ev
		o.Status, o.Error, o.PaymentID, o.ReceivedCount, o.ProcessedAt, o.Payload = status, errMsg, paymentID, 1, &processed, nil
		out = &o
		return nil
	})
	if err != nil {
		queued = false
		if errors.Is(err, paygate.ErrStripeIDTaken) {
			return nil, false, err
		}
		return nil, false, fmt.Errorf("store: record event: %w", err)
	}
	if queued {
		s.notifyCallbacks()
	}
	return out, dup, nil
}

// lockPayment finds the payment refs name — by our id, else by the first of
// its Stripe ids that is indexed — inside the write transaction.
func lockPayment(ctx context.Context, tx queryer, refs paygate.PaymentRefs) (*paygate.Payment, error) {
	if refs.PaymentID != "" {
		p, err := loadPayment(ctx, tx, `id = ?`, refs.PaymentID)
		if !errors.Is(err, paygate.ErrNotFound) {
			return p, err
		}
	}
	for _, id := range refs.StripeIDs() {
		p, err := loadPayment(ctx, tx, `id = (SELECT payment_id FROM paygate_payment_refs WHERE stripe_id = ?)`, id)
		if !errors.Is(err, paygate.ErrNotFound) {
			return p, err
		}
	}
	return nil, fmt.Errorf("payment: %w", paygate.ErrNotFound)
}

// ListWebhookEvents implements paygate.Store.
func (s *Store) ListWebhookEvents(ctx context.Context, f paygate.WebhookEventFilter) (*paygate.Page[paygate.WebhookEvent], error) {
	where := sq.And{}
	if f.Type != "" {
		where = append(where, sq.Eq{"type": f.Type})
	}
	if f.Status != "" {
		where = append(where, sq.Eq{"status": string(f.Status)})
	}
	var page *paygate.Page[paygate.WebhookEvent]
	err := s.read(ctx, func(tx *sql.Tx) (err error) {
		page, err = listPage(ctx, tx, "paygate_webhook_events", eventColumns, where, f.PageParams,
			byTime("events", "received_at", func(e paygate.WebhookEvent) (time.Time, string) { return e.ReceivedAt, e.ID }),
			func(r scanner) (paygate.WebhookEvent, error) {
				e, err := scanEvent(r, false)
				if err != nil {
					return paygate.WebhookEvent{}, err
				}
				return *e, nil
			})
		return err
	})
	return page, err
}

// GetWebhookEvent implements paygate.Store.
func (s *Store) GetWebhookEvent(ctx context.Context, id string) (*paygate.WebhookEvent, error) {
	ev, err := scanEvent(s.r.QueryRowContext(ctx, `SELECT `+eventColumns+`, payload FROM paygate_webhook_events WHERE id = ?`, id), true)
	return ev, unavailable(err)
}

// RematchWebhookEvent implements paygate.EventRematcher: in one write
// transaction, if the event is still unmatched and refs now find a
// payment, it applies the event to the payment and stores the changes,
// history and callbacks with the event's new outcome.
func (s *Store) RematchWebhookEvent(ctx context.Context, id string, refs paygate.PaymentRefs, now time.Time,
	apply func(p *paygate.Payment) (paygate.EventOutcome, error)) (*paygate.WebhookEvent, bool, error) {
	var out *paygate.WebhookEvent
	matched, queued := false, false
	err := s.write(ctx, func(ctx context.Context, tx *wtx) error {
		matched, queued = false, false
		ev, err := scanEvent(tx.QueryRowContext(ctx, `SELECT `+eventColumns+` FROM paygate_webhook_events WHERE id = ?`, id), false)
		if err != nil {
			return err
		}
		out = ev
		if ev.Status != paygate.EventUnmatched {
			return nil
		}
		p, err := lockPayment(ctx, tx, refs)
		if errors.Is(err, paygate.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		before, beforeIDs := refundsByID(p), p.StripeIDs()
		res, err := apply(p)
		if err != nil {
			return err
		}
		if res.Status == paygate.EventUnmatched {
			return nil
		}
		if queued, err = save(ctx, tx, p, before, beforeIDs, res.History); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE paygate_webhook_events SET status = ?, error = ?, payment_id = ?, processed_at = ? WHERE id = ?`,
			string(res.Status), res.Error, p.ID, ts(now), id); err != nil {
			return err
		}
		o := *ev
		o.Status, o.Error, o.PaymentID, o.ProcessedAt = res.Status, res.Error, p.ID, &now
		out, matched = &o, true
		return nil
	})
	if err != nil {
		if errors.Is(err, paygate.ErrStripeIDTaken) || errors.Is(err, paygate.ErrNotFound) {
			return nil, false, err
		}
		return nil, false, fmt.Errorf("store: rematch event: %w", err)
	}
	if queued {
		s.notifyCallbacks()
	}
	return out, matched, nil
}
