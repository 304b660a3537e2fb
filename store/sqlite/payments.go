package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	sq "github.com/Masterminds/squirrel"

	"github.com/numedapp/paygate"
)

const paymentColumns = `id, method, status, amount, amount_refunded, stripe_amount_refunded, currency,
	description, product_name, quantity, customer_email, metadata, payment_url, price_id, payment_link_id,
	checkout_session_id, payment_intent_id, charge_id, livemode, created_at, updated_at, callback_seq,
	attempts, disputes, stripe_refunded_at`

type scanner interface{ Scan(dst ...any) error }

// queryer is a *sql.Tx or *sql.DB.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func scanPayment(row scanner) (*paygate.Payment, error) {
	var p paygate.Payment
	err := row.Scan(&p.ID, &p.Method, &p.Status, &p.Amount, &p.AmountRefunded, &p.StripeAmountRefunded, &p.Currency,
		&p.Description, &p.ProductName, &p.Quantity, &p.CustomerEmail, jsonScan{&p.Metadata}, &p.PaymentURL, &p.PriceID, &p.PaymentLinkID,
		&p.CheckoutSessionID, &p.PaymentIntentID, &p.ChargeID, &p.Livemode, tsScan{&p.CreatedAt}, tsScan{&p.UpdatedAt}, &p.CallbackSeq,
		jsonScan{&p.Attempts}, jsonScan{&p.Disputes}, tsScan{&p.StripeRefundedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("payment: %w", paygate.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if p.Metadata == nil {
		p.Metadata = map[string]string{}
	}
	if len(p.Attempts) == 0 {
		p.Attempts = nil
	}
	if len(p.Disputes) == 0 {
		p.Disputes = nil
	}
	p.Refunds = []paygate.Refund{}
	return &p, nil
}

// InsertPayment implements paygate.Store.
func (s *Store) InsertPayment(ctx context.Context, p *paygate.Payment) error {
	err := s.write(ctx, func(ctx context.Context, tx *wtx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO paygate_payments (`+paymentColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.ID, string(p.Method), string(p.Status), p.Amount, p.AmountRefunded, p.StripeAmountRefunded, p.Currency,
			p.Description, p.ProductName, p.Quantity, p.CustomerEmail, jsonText(p.Metadata, "{}"), p.PaymentURL, p.PriceID, p.PaymentLinkID,
			p.CheckoutSessionID, p.PaymentIntentID, p.ChargeID, b2i(p.Livemode), ts(p.CreatedAt), ts(p.UpdatedAt), p.CallbackSeq,
			jsonText(p.Attempts, "[]"), jsonText(p.Disputes, "[]"), ts(p.StripeRefundedAt))
		if _, ok := isConstraint(err); ok {
			return fmt.Errorf("store: payment %s exists: %w", p.ID, paygate.ErrConflict)
		}
		if err != nil {
			return err
		}
		return insertRefs(ctx, tx, p.ID, p.StripeIDs())
	})
	if err != nil && !errors.Is(err, paygate.ErrConflict) && !errors.Is(err, paygate.ErrStripeIDTaken) {
		return fmt.Errorf("store: insert payment: %w", err)
	}
	return err
}

// insertRefs indexes Stripe ids of a payment; an id that names another
// payment is ErrStripeIDTaken.
func insertRefs(ctx context.Context, tx queryer, paymentID string, ids []string) error {
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, `INSERT INTO paygate_payment_refs (stripe_id, payment_id) VALUES (?, ?)`, id, paymentID); err != nil {
			if _, ok := isConstraint(err); ok {
				return fmt.Errorf("store: Stripe id %s already names another payment: %w", id, paygate.ErrStripeIDTaken)
			}
			return err
		}
	}
	return nil
}

// newRefs are the ids in after that are not in before.
func newRefs(before, after []string) []string {
	var out []string
	for _, id := range after {
		if !slices.Contains(before, id) {
			out = append(out, id)
		}
	}
	return out
}

// DeletePayment implements paygate.Store.
func (s *Store) DeletePayment(ctx context.Context, id string) error {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx *wtx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM paygate_payments WHERE id = ?
			AND payment_link_id = '' AND checkout_session_id = '' AND payment_intent_id = ''
			AND NOT EXISTS (SELECT 1 FROM paygate_payment_refs r WHERE r.payment_id = paygate_payments.id)
			AND NOT EXISTS (SELECT 1 FROM paygate_payment_history h WHERE h.payment_id = paygate_payments.id)
			AND NOT EXISTS (SELECT 1 FROM paygate_refunds r WHERE r.payment_id = paygate_payments.id)`, id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("store: delete payment: %w", err)
	}
	if n == 0 {
		if _, err := s.GetPayment(ctx, id); err != nil {
			return err
		}
		return fmt.Errorf("store: payment %s has Stripe objects or history: %w", id, paygate.ErrConflict)
	}
	return nil
}

// GetPayment implements paygate.Store.
func (s *Store) GetPayment(ctx context.Context, id string) (*paygate.Payment, error) {
	var p *paygate.Payment
	err := s.read(ctx, func(tx *sql.Tx) (err error) {
		p, err = loadPayment(ctx, tx, `id = ?`, id)
		return err
	})
	return p, err
}

// GetPaymentByStripeID implements paygate.Store.
func (s *Store) GetPaymentByStripeID(ctx context.Context, stripeID string) (*paygate.Payment, error) {
	if stripeID == "" {
		return nil, fmt.Errorf("payment: %w", paygate.ErrNotFound)
	}
	var p *paygate.Payment
	err := s.read(ctx, func(tx *sql.Tx) (err error) {
		p, err = loadPayment(ctx, tx, `id = (SELECT payment_id FROM paygate_payment_refs WHERE stripe_id = ?)`, stripeID)
		return err
	})
	return p, err
}

// loadPayment reads one payment and its refunds. In a write transaction
// this is the locked read of PostgreSQL's SELECT … FOR UPDATE: no other
// write can run until the transaction ends.
func loadPayment(ctx context.Context, q queryer, where string, arg any) (*paygate.Payment, error) {
	p, err := scanPayment(q.QueryRowContext(ctx, `SELECT `+paymentColumns+` FROM paygate_payments WHERE `+where, arg))
	if err != nil {
		if errors.Is(err, paygate.ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("store: payment: %w", err)
	}
	if err := loadRefunds(ctx, q, []*paygate.Payment{p}); err != nil {
		return nil, err
	}
	return p, nil
}

// loadRefunds fills the refunds of ps with one query.
func loadRefunds(ctx context.Context, q queryer, ps []*paygate.Payment) error {
	if len(ps) == 0 {
		return nil
	}
	byID := make(map[string]*paygate.Payment, len(ps))
	args := make([]any, len(ps))
	for i, p := range ps {
		byID[p.ID] = p
		args[i] = p.ID
	}
	rows, err := q.QueryContext(ctx, `SELECT id, payment_id, stripe_refund_id, amount, status, reason, created_at, updated_at
		FROM paygate_refunds WHERE payment_id IN (`+placeholders(len(ps))+`) ORDER BY created_at, id`, args...)
	if err != nil {
		return fmt.Errorf("store: refunds: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r paygate.Refund
		var pid string
		if err := rows.Scan(&r.ID, &pid, &r.StripeRefundID, &r.Amount, &r.Status, &r.Reason, tsScan{&r.CreatedAt}, tsScan{&r.UpdatedAt}); err != nil {
			return fmt.Errorf("store: refunds: %w", err)
		}
		if p := byID[pid]; p != nil {
			p.Refunds = append(p.Refunds, r)
		}
	}
	return rows.Err()
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// UpdatePayment implements paygate.Store. The write transaction is the
// lock: the single writer connection runs one at a time, so fn sees the
// payment as committed and nothing changes it until the commit.
func (s *Store) UpdatePayment(ctx context.Context, id string, fn func(p *paygate.Payment) ([]paygate.HistoryEntry, error)) (*paygate.Payment, error) {
	var out *paygate.Payment
	queued := false
	err := s.write(ctx, func(ctx context.Context, tx *wtx) error {
		p, err := loadPayment(ctx, tx, `id = ?`, id)
		if err != nil {
			return err
		}
		before, beforeIDs := refundsByID(p), p.StripeIDs()
		hist, err := fn(p)
		if err != nil {
			return err
		}
		queued, err = save(ctx, tx, p, before, beforeIDs, hist)
		if err != nil {
			return err
		}
		out = p
		return nil
	})
	if err != nil {
		if errors.Is(err, paygate.ErrNotFound) || errors.Is(err, paygate.ErrStripeIDTaken) {
			return nil, err
		}
		return nil, fmt.Errorf("store: update payment: %w", err)
	}
	if queued {
		s.notifyCallbacks()
	}
	return out, nil
}

func refundsByID(p *paygate.Payment) map[string]paygate.Refund {
	m := make(map[string]paygate.Refund, len(p.Refunds))
	for _, r := range p.Refunds {
		m[r.ID] = r
	}
	return m
}

// save writes a loaded payment's mutable fields, its new Stripe ids, its
// new or changed refunds, and the history entries with their callbacks. It
// reports whether it queued a callback.
func save(ctx context.Context, tx queryer, p *paygate.Payment, before map[string]paygate.Refund, beforeIDs []string, hist []paygate.HistoryEntry) (bool, error) {
	if _, err := tx.ExecContext(ctx, `UPDATE paygate_payments SET status = ?, amount_refunded = ?, stripe_amount_refunded = ?,
		payment_url = ?, price_id = ?, payment_link_id = ?, checkout_session_id = ?, payment_intent_id = ?,
		charge_id = ?, livemode = ?, updated_at = ?, customer_email = ?, callback_seq = ?,
		attempts = ?, disputes = ?, stripe_refunded_at = ? WHERE id = ?`,
		string(p.Status), p.AmountRefunded, p.StripeAmountRefunded, p.PaymentURL, p.PriceID, p.PaymentLinkID,
		p.CheckoutSessionID, p.PaymentIntentID, p.ChargeID, b2i(p.Livemode), ts(p.UpdatedAt), p.CustomerEmail, p.CallbackSeq,
		jsonText(p.Attempts, "[]"), jsonText(p.Disputes, "[]"), ts(p.StripeRefundedAt), p.ID); err != nil {
		return false, err
	}
	if err := insertRefs(ctx, tx, p.ID, newRefs(beforeIDs, p.StripeIDs())); err != nil {
		return false, err
	}
	for _, r := range p.Refunds {
		if old, ok := before[r.ID]; ok && old == r {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO paygate_refunds (id, payment_id, stripe_refund_id, amount, status, reason, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET stripe_refund_id = excluded.stripe_refund_id, amount = excluded.amount,
				status = excluded.status, reason = excluded.reason, created_at = excluded.created_at, updated_at = excluded.updated_at`,
			r.ID, p.ID, r.StripeRefundID, r.Amount, string(r.Status), r.Reason, ts(r.CreatedAt), ts(r.UpdatedAt)); err != nil {
			return false, fmt.Errorf("refund %s: %w", r.ID, err)
		}
	}
	queued := false
	for _, h := range hist {
		data := string(h.Data)
		if data == "" {
			data = "{}"
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO paygate_payment_history (payment_id, payment_intent_id, event_type, from_status,
			to_status, amount, currency, stripe_event_id, source, data, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			h.PaymentID, h.PaymentIntentID, string(h.EventType), string(h.FromStatus), string(h.ToStatus), h.Amount, h.Currency,
			h.StripeEventID, h.Source, data, ts(h.CreatedAt)); err != nil {
			return false, fmt.Errorf("history: %w", err)
		}
		if c := h.Callback; c != nil {
			if _, err := tx.ExecContext(ctx, `INSERT INTO paygate_callbacks (id, payment_id, webhook_event_id, sequence, event_type, action,
				url, payload, status, next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				c.ID, c.PaymentID, c.WebhookEventID, c.Sequence, c.EventType, c.Action, c.URL, string(c.Payload),
				string(c.Status), ts(c.NextAttemptAt), ts(c.CreatedAt), ts(c.UpdatedAt)); err != nil {
				return false, fmt.Errorf("callback: %w", err)
			}
			queued = true
		}
	}
	return queued, nil
}

// ListPayments implements paygate.Store.
func (s *Store) ListPayments(ctx context.Context, f paygate.PaymentFilter) (*paygate.Page[paygate.Payment], error) {
	where := sq.And{}
	if f.Status != "" {
		where = append(where, sq.Eq{"status": string(f.Status)})
	}
	if f.Method != "" {
		where = append(where, sq.Eq{"method": string(f.Method)})
	}
	if f.CustomerEmail != "" {
		where = append(where, sq.Eq{"customer_email": f.CustomerEmail})
	}
	if !f.CreatedFrom.IsZero() {
		where = append(where, sq.GtOrEq{"created_at": ts(f.CreatedFrom)})
	}
	if !f.CreatedTo.IsZero() {
		where = append(where, sq.Lt{"created_at": ts(f.CreatedTo)})
	}
	var page *paygate.Page[paygate.Payment]
	err := s.read(ctx, func(tx *sql.Tx) (err error) {
		page, err = listPage(ctx, tx, "paygate_payments", paymentColumns, where, f.PageParams,
			byTime("payments", "created_at", func(p paygate.Payment) (time.Time, string) { return p.CreatedAt, p.ID }),
			func(r scanner) (paygate.Payment, error) {
				p, err := scanPayment(r)
				if err != nil {
					return paygate.Payment{}, err
				}
				return *p, nil
			})
		if err != nil {
			return err
		}
		ptrs := make([]*paygate.Payment, len(page.Items))
		for i := range page.Items {
			ptrs[i] = &page.Items[i]
		}
		return loadRefunds(ctx, tx, ptrs)
	})
	if err != nil {
		return nil, err
	}
	return page, nil
}

const historyColumns = `id, payment_id, payment_intent_id, event_type, from_status, to_status, amount, currency,
	stripe_event_id, source, data, created_at`

func scanHistory(r scanner) (paygate.HistoryEntry, error) {
	var h paygate.HistoryEntry
	var id int64
	err := r.Scan(&id, &h.PaymentID, &h.PaymentIntentID, &h.EventType, &h.FromStatus, &h.ToStatus, &h.Amount,
		&h.Currency, &h.StripeEventID, &h.Source, rawScan{&h.Data}, tsScan{&h.CreatedAt})
	h.ID = strconv.FormatInt(id, 10)
	return h, err
}

// ListHistory implements paygate.Store.
func (s *Store) ListHistory(ctx context.Context, f paygate.HistoryFilter) (*paygate.Page[paygate.HistoryEntry], error) {
	where := sq.And{}
	if f.PaymentID != "" {
		where = append(where, sq.Eq{"payment_id": f.PaymentID})
	}
	if f.PaymentIntentID != "" {
		where = append(where, sq.Eq{"payment_intent_id": f.PaymentIntentID})
	}
	if f.EventType != "" {
		where = append(where, sq.Eq{"event_type": string(f.EventType)})
	}
	var page *paygate.Page[paygate.HistoryEntry]
	err := s.read(ctx, func(tx *sql.Tx) (err error) {
		page, err = listPage(ctx, tx, "paygate_payment_history", historyColumns, where, f.PageParams,
			byID("history", func(h paygate.HistoryEntry) string { return h.ID }), scanHistory)
		return err
	})
	return page, err
}

// PaymentHistory implements paygate.Store.
func (s *Store) PaymentHistory(ctx context.Context, paymentID string) ([]paygate.HistoryEntry, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+historyColumns+` FROM paygate_payment_history WHERE payment_id = ? ORDER BY id`, paymentID)
	if err != nil {
		return nil, fmt.Errorf("store: history: %w", unavailable(err))
	}
	items, err := collect(rows, scanHistory)
	if err != nil {
		return nil, fmt.Errorf("store: history: %w", unavailable(err))
	}
	return items, nil
}

// PaymentsToReconcile implements paygate.Store: oldest first, after the
// payment after names (from the first when it names none).
func (s *Store) PaymentsToReconcile(ctx context.Context, createdSince, refundsBefore time.Time, after string, limit int) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM (
			SELECT id, created_at FROM paygate_payments
			WHERE status IN ('pending', 'processing', 'failed') AND created_at >= ?1
			UNION
			SELECT p.id, p.created_at FROM paygate_refunds r JOIN paygate_payments p ON p.id = r.payment_id
			WHERE r.status = 'pending' AND r.stripe_refund_id = '' AND r.created_at < ?2
		)
		WHERE NOT EXISTS (SELECT 1 FROM paygate_payments a WHERE a.id = ?4)
			OR (created_at, id) > (SELECT a.created_at, a.id FROM paygate_payments a WHERE a.id = ?4)
		ORDER BY created_at, id LIMIT ?3`, ts(createdSince), ts(refundsBefore), limit, after)
	if err != nil {
		return nil, fmt.Errorf("store: payments to reconcile: %w", unavailable(err))
	}
	ids, err := collect(rows, func(r scanner) (string, error) {
		var id string
		return id, r.Scan(&id)
	})
	if err != nil {
		return nil, fmt.Errorf("store: payments to reconcile: %w", unavailable(err))
	}
	return ids, nil
}

// collect scans every row; never nil.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// rawJSON returns b, or "{}" when empty.
func rawJSON(b json.RawMessage) string {
	if len(b) == 0 {
		return "{}"
	}
	return string(b)
}
