// Package store is paygate's PostgreSQL storage: it implements
// paygate.Store on a pgx/v5 pool, with embedded migrations applied by
// Migrate (never implicitly).
//
//	pool, _ := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
//	if _, err := store.Migrate(ctx, pool); err != nil { ... }
//	gw, err := paygate.New(paygate.Config{Store: store.New(pool), ...})
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	sq "github.com/Masterminds/squirrel"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/store/internal/cursor"
)

// Store implements paygate.Store on PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
}

var (
	_ paygate.Store          = (*Store)(nil)
	_ paygate.EventRematcher = (*Store)(nil)
)

// New returns a Store using pool. The schema must have been migrated (Migrate).
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

var psql = sq.StatementBuilder.PlaceholderFormat(sq.Dollar)

const paymentColumns = `id, method, status, amount, amount_refunded, stripe_amount_refunded, currency,
	description, product_name, quantity, customer_email, metadata, payment_url, price_id, payment_link_id,
	checkout_session_id, payment_intent_id, charge_id, livemode, created_at, updated_at, callback_seq,
	attempts, disputes, stripe_refunded_at`

// scanPayment scans paymentColumns, and then extra destinations if given.
func scanPayment(row pgx.Row, extra ...any) (*paygate.Payment, error) {
	var p paygate.Payment
	dst := append([]any{&p.ID, &p.Method, &p.Status, &p.Amount, &p.AmountRefunded, &p.StripeAmountRefunded, &p.Currency,
		&p.Description, &p.ProductName, &p.Quantity, &p.CustomerEmail, &p.Metadata, &p.PaymentURL, &p.PriceID, &p.PaymentLinkID,
		&p.CheckoutSessionID, &p.PaymentIntentID, &p.ChargeID, &p.Livemode, &p.CreatedAt, &p.UpdatedAt, &p.CallbackSeq,
		&p.Attempts, &p.Disputes, &p.StripeRefundedAt}, extra...)
	err := row.Scan(dst...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("payment: %w", paygate.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if p.Metadata == nil {
		p.Metadata = map[string]string{}
	}
	p.Refunds = []paygate.Refund{}
	if len(p.Attempts) == 0 {
		p.Attempts = nil
	}
	if len(p.Disputes) == 0 {
		p.Disputes = nil
	}
	p.CreatedAt, p.UpdatedAt, p.StripeRefundedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC(), p.StripeRefundedAt.UTC()
	return &p, nil
}

// InsertPayment implements paygate.Store.
func (s *Store) InsertPayment(ctx context.Context, p *paygate.Payment) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO paygate_payments (`+paymentColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)`,
			p.ID, p.Method, p.Status, p.Amount, p.AmountRefunded, p.StripeAmountRefunded, p.Currency,
			p.Description, p.ProductName, p.Quantity, p.CustomerEmail, metadata(p.Metadata), p.PaymentURL, p.PriceID, p.PaymentLinkID,
			p.CheckoutSessionID, p.PaymentIntentID, p.ChargeID, p.Livemode, p.CreatedAt, p.UpdatedAt, p.CallbackSeq,
			jsonText(p.Attempts), jsonText(p.Disputes), p.StripeRefundedAt)
		queueRefs(b, p.ID, p.StripeIDs())
		return tx.SendBatch(ctx, b).Close()
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		if pgErr.ConstraintName == refsKey {
			return fmt.Errorf("store: payment %s: %w", p.ID, paygate.ErrStripeIDTaken)
		}
		return fmt.Errorf("store: payment %s exists: %w", p.ID, paygate.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store: insert payment: %w", err)
	}
	return nil
}

// refsKey is the primary key of paygate_payment_refs: violating it means a
// Stripe id already names another payment.
const refsKey = "paygate_payment_refs_pkey"

// queueRefs indexes Stripe ids of a payment.
func queueRefs(b *pgx.Batch, paymentID string, ids []string) {
	if len(ids) > 0 {
		b.Queue(`INSERT INTO paygate_payment_refs (stripe_id, payment_id) SELECT unnest($1::text[]), $2`, ids, paymentID)
	}
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

// jsonText encodes a slice as JSON text for a jsonb column ("[]" for nil).
func jsonText[T any](v []T) string {
	if v == nil {
		return "[]"
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("store: encode %T: %v", v, err)) // plain structs of strings and numbers
	}
	return string(b)
}

// stripeIDTaken maps a violation of the refs key to ErrStripeIDTaken.
func stripeIDTaken(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == refsKey {
		return fmt.Errorf("store: %s: %w", pgErr.Detail, paygate.ErrStripeIDTaken)
	}
	return err
}

func metadata(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// DeletePayment implements paygate.Store.
func (s *Store) DeletePayment(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM paygate_payments p WHERE id = $1
		AND payment_link_id = '' AND checkout_session_id = '' AND payment_intent_id = ''
		AND NOT EXISTS (SELECT 1 FROM paygate_payment_history h WHERE h.payment_id = p.id)
		AND NOT EXISTS (SELECT 1 FROM paygate_refunds r WHERE r.payment_id = p.id)`, id)
	if err != nil {
		return fmt.Errorf("store: delete payment: %w", err)
	}
	if tag.RowsAffected() == 0 {
		if _, err := s.GetPayment(ctx, id); err != nil {
			return err
		}
		return fmt.Errorf("store: payment %s has Stripe objects or history: %w", id, paygate.ErrConflict)
	}
	return nil
}

// GetPayment implements paygate.Store.
func (s *Store) GetPayment(ctx context.Context, id string) (*paygate.Payment, error) {
	return s.getPayment(ctx, `id = $1`, id)
}

// snapshot runs fn's reads in one read-only REPEATABLE READ transaction:
// a payment and its refunds (and a page and its total) as of one moment,
// never a refund committed between two of the reads beside a row that does
// not count it yet.
func (s *Store) snapshot(ctx context.Context, fn func(q querier) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
		func(tx pgx.Tx) error { return fn(tx) })
}

// GetPaymentByStripeID implements paygate.Store.
func (s *Store) GetPaymentByStripeID(ctx context.Context, stripeID string) (*paygate.Payment, error) {
	if stripeID == "" {
		return nil, fmt.Errorf("payment: %w", paygate.ErrNotFound)
	}
	return s.getPayment(ctx, `id = (SELECT payment_id FROM paygate_payment_refs WHERE stripe_id = $1)`, stripeID)
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// getPayment reads the payment where (of paygate_payments, with arg $1)
// and its refunds in one read-only REPEATABLE READ transaction (see
// snapshot), in one round trip.
func (s *Store) getPayment(ctx context.Context, where string, arg any) (*paygate.Payment, error) {
	b := &pgx.Batch{}
	b.Queue(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`)
	b.Queue(`SELECT `+paymentColumns+` FROM paygate_payments WHERE `+where, arg)
	b.Queue(`SELECT id, payment_id, stripe_refund_id, amount, status, reason, created_at, updated_at
		FROM paygate_refunds WHERE payment_id = (SELECT id FROM paygate_payments WHERE `+where+`) ORDER BY created_at, id`, arg)
	b.Queue(`COMMIT`)
	var p *paygate.Payment
	err := s.onConn(ctx, func(c *pgx.Conn) error {
		br := c.SendBatch(ctx, b)
		defer br.Close()
		if _, err := br.Exec(); err != nil {
			return err
		}
		var err error
		if p, err = scanPayment(br.QueryRow()); err != nil {
			return err
		}
		rows, err := br.Query()
		if err != nil {
			return fmt.Errorf("store: refunds: %w", err)
		}
		if err := scanRefunds(rows, map[string]*paygate.Payment{p.ID: p}); err != nil {
			return err
		}
		if _, err := br.Exec(); err != nil {
			return err
		}
		return br.Close()
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// loadRefunds fills the refunds of ps with one query.
func loadRefunds(ctx context.Context, q querier, ps []*paygate.Payment) error {
	if len(ps) == 0 {
		return nil
	}
	ids := make([]string, len(ps))
	byID := make(map[string]*paygate.Payment, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
		byID[p.ID] = p
	}
	rows, err := q.Query(ctx, `SELECT id, payment_id, stripe_refund_id, amount, status, reason, created_at, updated_at
		FROM paygate_refunds WHERE payment_id = ANY($1) ORDER BY created_at, id`, ids)
	if err != nil {
		return fmt.Errorf("store: refunds: %w", err)
	}
	return scanRefunds(rows, byID)
}

// scanRefunds appends each refund row to its payment.
func scanRefunds(rows pgx.Rows, byID map[string]*paygate.Payment) error {
	defer rows.Close()
	for rows.Next() {
		var r paygate.Refund
		var pid string
		if err := rows.Scan(&r.ID, &pid, &r.StripeRefundID, &r.Amount, &r.Status, &r.Reason, &r.CreatedAt, &r.UpdatedAt); err != nil {
			return fmt.Errorf("store: refunds: %w", err)
		}
		r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
		if p := byID[pid]; p != nil {
			p.Refunds = append(p.Refunds, r)
		}
	}
	return rows.Err()
}

// lockPaymentWhere locks one payment's row and then loads its refunds, in
// one round trip: the two statements go as one pipelined batch.
//
// The refunds must be read by a statement that starts after the lock is
// held. Under READ COMMITTED each statement of the batch takes its own
// snapshot when it starts, so the second sees every refund committed before
// the lock was granted. (A subquery of the locking SELECT would not: it keeps
// the statement's older snapshot and would miss refunds committed meanwhile,
// letting two concurrent refunds pass the over-refund guard.)
func lockPaymentWhere(ctx context.Context, tx pgx.Tx, where string, arg any) (*paygate.Payment, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT `+paymentColumns+` FROM paygate_payments p WHERE `+where+` LIMIT 1 FOR UPDATE`, arg)
	b.Queue(`SELECT id, payment_id, stripe_refund_id, amount, status, reason, created_at, updated_at FROM paygate_refunds
		WHERE payment_id = (SELECT p.id FROM paygate_payments p WHERE `+where+` LIMIT 1) ORDER BY created_at, id`, arg)
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	p, err := scanPayment(br.QueryRow())
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("store: refunds: %w", err)
	}
	if err := scanRefunds(rows, map[string]*paygate.Payment{p.ID: p}); err != nil {
		return nil, err
	}
	return p, br.Close()
}

// UpdatePayment implements paygate.Store.
func (s *Store) UpdatePayment(ctx context.Context, id string, fn func(p *paygate.Payment) ([]paygate.HistoryEntry, error)) (*paygate.Payment, error) {
	var out *paygate.Payment
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		p, err := lockPaymentWhere(ctx, tx, "p.id = $1", id)
		if err != nil {
			return err
		}
		before, beforeIDs := refundsByID(p), p.StripeIDs()
		hist, err := fn(p)
		if err != nil {
			return err
		}
		b := &pgx.Batch{}
		if queueSave(b, p, before, beforeIDs, hist) {
			queueNotify(b)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("store: update payment: %w", stripeIDTaken(err))
		}
		out = p
		return nil
	})
	if err != nil {
		return nil, err
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

// queueSave queues, for one round trip, the writes of a locked payment: its
// mutable fields, its new or changed refunds, and the history entries with
// their callbacks. It reports whether it queued a callback (the caller then
// queues one queueNotify for its transaction).
func queueSave(b *pgx.Batch, p *paygate.Payment, before map[string]paygate.Refund, beforeIDs []string, hist []paygate.HistoryEntry) bool {
	queued := false
	b.Queue(`UPDATE paygate_payments SET status = $2, amount_refunded = $3, stripe_amount_refunded = $4,
		payment_url = $5, price_id = $6, payment_link_id = $7, checkout_session_id = $8, payment_intent_id = $9,
		charge_id = $10, livemode = $11, updated_at = $12, customer_email = $13, callback_seq = $14,
		attempts = $15, disputes = $16, stripe_refunded_at = $17 WHERE id = $1`,
		p.ID, p.Status, p.AmountRefunded, p.StripeAmountRefunded, p.PaymentURL, p.PriceID, p.PaymentLinkID,
		p.CheckoutSessionID, p.PaymentIntentID, p.ChargeID, p.Livemode, p.UpdatedAt, p.CustomerEmail, p.CallbackSeq,
		jsonText(p.Attempts), jsonText(p.Disputes), p.StripeRefundedAt)
	queueRefs(b, p.ID, newRefs(beforeIDs, p.StripeIDs()))
	queueRefunds(b, p, before)
	for _, h := range hist {
		data := h.Data
		if len(data) == 0 {
			data = json.RawMessage("{}")
		}
		b.Queue(`INSERT INTO paygate_payment_history (payment_id, payment_intent_id, event_type, from_status,
			to_status, amount, currency, stripe_event_id, source, data, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			h.PaymentID, h.PaymentIntentID, h.EventType, h.FromStatus, h.ToStatus, h.Amount, h.Currency,
			h.StripeEventID, h.Source, string(data), h.CreatedAt)
		if c := h.Callback; c != nil {
			b.Queue(`INSERT INTO paygate_callbacks (id, payment_id, webhook_event_id, sequence, event_type, action, url, payload,
				status, next_attempt_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
				c.ID, c.PaymentID, c.WebhookEventID, c.Sequence, c.EventType, c.Action, c.URL, string(c.Payload),
				c.Status, c.NextAttemptAt, c.CreatedAt, c.UpdatedAt)
			queued = true
		}
	}
	return queued
}

// queueRefunds queues the upsert of each refund of p that is new or changed
// since before.
func queueRefunds(b *pgx.Batch, p *paygate.Payment, before map[string]paygate.Refund) {
	for _, r := range p.Refunds {
		if old, ok := before[r.ID]; ok && old == r {
			continue
		}
		b.Queue(`INSERT INTO paygate_refunds (id, payment_id, stripe_refund_id, amount, status, reason, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (id) DO UPDATE SET stripe_refund_id = EXCLUDED.stripe_refund_id, amount = EXCLUDED.amount,
				status = EXCLUDED.status, reason = EXCLUDED.reason, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at`,
			r.ID, p.ID, r.StripeRefundID, r.Amount, r.Status, r.Reason, r.CreatedAt, r.UpdatedAt)
	}
}

// queueNotify queues the announcement of new callbacks, once per
// transaction that queued any: delivered at commit, to every replica's
// ListenCallbacks, as a hint.
func queueNotify(b *pgx.Batch) {
	b.Queue(`SELECT pg_notify('` + callbackChannel + `', '')`)
}

// ListPayments implements paygate.Store.
func (s *Store) ListPayments(ctx context.Context, f paygate.PaymentFilter) (*paygate.Page[paygate.Payment], error) {
	where := sq.And{}
	if f.Status != "" {
		where = append(where, sq.Eq{"status": f.Status})
	}
	if f.Method != "" {
		where = append(where, sq.Eq{"method": f.Method})
	}
	if f.CustomerEmail != "" {
		where = append(where, sq.Eq{"customer_email": f.CustomerEmail})
	}
	if !f.CreatedFrom.IsZero() {
		where = append(where, sq.GtOrEq{"created_at": f.CreatedFrom})
	}
	if !f.CreatedTo.IsZero() {
		where = append(where, sq.Lt{"created_at": f.CreatedTo})
	}
	var page *paygate.Page[paygate.Payment]
	err := s.snapshot(ctx, func(q querier) (err error) {
		page, err = s.listPayments(ctx, q, where, f.PageParams)
		return err
	})
	return page, err
}

func (s *Store) listPayments(ctx context.Context, q querier, where sq.And, pp paygate.PageParams) (*paygate.Page[paygate.Payment], error) {
	page, err := listPage(ctx, q, "paygate_payments", paymentColumns, where, pp,
		byTime("payments", "created_at", func(p paygate.Payment) (time.Time, string) { return p.CreatedAt, p.ID }),
		func(r pgx.CollectableRow) (paygate.Payment, error) {
			p, err := scanPayment(r)
			if err != nil {
				return paygate.Payment{}, err
			}
			return *p, nil
		})
	if err != nil {
		return nil, err
	}
	ptrs := make([]*paygate.Payment, len(page.Items))
	for i := range page.Items {
		ptrs[i] = &page.Items[i]
	}
	return page, loadRefunds(ctx, q, ptrs)
}

const historyColumns = `id, payment_id, payment_intent_id, event_type, from_status, to_status, amount, currency,
	stripe_event_id, source, data, created_at`

func scanHistory(rows pgx.CollectableRow) (paygate.HistoryEntry, error) {
	var h paygate.HistoryEntry
	var id int64
	var data []byte
	err := rows.Scan(&id, &h.PaymentID, &h.PaymentIntentID, &h.EventType, &h.FromStatus, &h.ToStatus, &h.Amount,
		&h.Currency, &h.StripeEventID, &h.Source, &data, &h.CreatedAt)
	h.ID = strconv.FormatInt(id, 10)
	h.Data = json.RawMessage(data)
	h.CreatedAt = h.CreatedAt.UTC()
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
		where = append(where, sq.Eq{"event_type": f.EventType})
	}
	return listPage(ctx, s.pool, "paygate_payment_history", historyColumns, where, f.PageParams,
		byID("history", func(h paygate.HistoryEntry) string { return h.ID }), scanHistory)
}

// PaymentHistory implements paygate.Store.
func (s *Store) PaymentHistory(ctx context.Context, paymentID string) ([]paygate.HistoryEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+historyColumns+` FROM paygate_payment_history WHERE payment_id = $1 ORDER BY id`, paymentID)
	if err != nil {
		return nil, fmt.Errorf("store: history: %w", err)
	}
	items, err := pgx.CollectRows(rows, scanHistory)
	if err != nil {
		return nil, fmt.Errorf("store: history: %w", err)
	}
	if items == nil {
		items = []paygate.HistoryEntry{}
	}
	return items, nil
}

// Ping implements paygate.Store with a real round trip.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `SELECT 1`)
	return err
}

// Cursors are opaque to clients (store/internal/cursor, shared by both stores).
var (
	encodeTimeCursor = cursor.EncodeTime
	decodeTimeCursor = cursor.DecodeTime
	encodeIDCursor   = cursor.EncodeID
	decodeIDCursor   = cursor.DecodeID
	errCursor        = cursor.Malformed
)

// PaymentsToReconcile implements paygate.Store.
func (s *Store) PaymentsToReconcile(ctx context.Context, createdSince, refundsBefore time.Time, after string, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM (
			SELECT id, created_at FROM paygate_payments
			WHERE status IN ('pending', 'processing', 'failed') AND created_at >= $1
			UNION
			SELECT p.id, p.created_at FROM paygate_refunds r JOIN paygate_payments p ON p.id = r.payment_id
			WHERE r.status = 'pending' AND r.stripe_refund_id = '' AND r.created_at < $2
		) due
		WHERE NOT EXISTS (SELECT 1 FROM paygate_payments a WHERE a.id = $4)
			OR (created_at, id) > (SELECT a.created_at, a.id FROM paygate_payments a WHERE a.id = $4)
		ORDER BY created_at, id LIMIT $3`, createdSince, refundsBefore, limit, after)
	if err != nil {
		return nil, fmt.Errorf("store: payments to reconcile: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: payments to reconcile: %w", err)
	}
	return ids, nil
}
