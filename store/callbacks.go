package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	sq "github.com/Masterminds/squirrel"
	"github.com/jackc/pgx/v5"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/callback"
)

const callbackColumns = `id, payment_id, webhook_event_id, sequence, event_type, action, url, payload, status, attempts,
	next_attempt_at, coalesce(lease_token, ''), last_error, created_at, updated_at, delivered_at`

func scanCallback(row pgx.Row) (*paygate.Callback, error) {
	var c paygate.Callback
	var payload []byte
	err := row.Scan(&c.ID, &c.PaymentID, &c.WebhookEventID, &c.Sequence, &c.EventType, &c.Action, &c.URL, &payload, &c.Status,
		&c.Attempts, &c.NextAttemptAt, &c.LeaseToken, &c.LastError, &c.CreatedAt, &c.UpdatedAt, &c.DeliveredAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("callback: %w", paygate.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	c.Payload = payload
	c.NextAttemptAt, c.CreatedAt, c.UpdatedAt = c.NextAttemptAt.UTC(), c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	if c.DeliveredAt != nil {
		t := c.DeliveredAt.UTC()
		c.DeliveredAt = &t
	}
	return &c, nil
}

// ReleaseCallbacks gives back claimed callbacks that were not sent: each
// still leased to its LeaseToken loses the lease and the attempt its claim
// counted, and is due again (callback.ReleasingQueue).
func (s *Store) ReleaseCallbacks(ctx context.Context, cbs []paygate.Callback) error {
	if len(cbs) == 0 {
		return nil
	}
	ids, tokens := make([]string, len(cbs)), make([]string, len(cbs))
	for i, c := range cbs {
		ids[i], tokens[i] = c.ID, c.LeaseToken
	}
	if _, err := s.pool.Exec(ctx, `UPDATE paygate_callbacks c SET lease_token = NULL, lease_expires_at = NULL,
			attempts = greatest(c.attempts - 1, 0)
		FROM unnest($1::text[], $2::text[]) AS u(id, token)
		WHERE c.id = u.id AND c.lease_token = u.token AND c.status = 'pending'`, ids, tokens); err != nil {
		return fmt.Errorf("store: release callbacks: %w", err)
	}
	return nil
}

// ClaimCallbacks leases up to limit due callbacks (pending, next attempt at
// or before now, no live lease) to the caller until now+lease, counting the
// attempt it is about to make. Concurrent claimers skip each other's rows
// (FOR UPDATE SKIP LOCKED); a lease that expires makes its callback due again.
func (s *Store) ClaimCallbacks(ctx context.Context, limit int, lease time.Duration, now time.Time) ([]paygate.Callback, error) {
	if limit <= 0 {
		return nil, nil
	}
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	token := hex.EncodeToString(tok[:])
	var out []paygate.Callback
	err := s.hotTx(ctx, func(b *pgx.Batch) {
		b.Queue(`UPDATE paygate_callbacks c SET lease_token = $1, lease_expires_at = $2,
			attempts = c.attempts + 1, updated_at = $3
		FROM (SELECT id FROM paygate_callbacks p
			WHERE status = 'pending' AND next_attempt_at <= $3 AND (lease_expires_at IS NULL OR lease_expires_at <= $3)
				AND NOT EXISTS (SELECT 1 FROM paygate_callbacks e
					WHERE e.payment_id = p.payment_id AND e.sequence < p.sequence AND e.status = 'pending')
			ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) due
		WHERE c.id = due.id
		RETURNING c.id, c.payment_id, c.webhook_event_id, c.sequence, c.event_type, c.action, c.url, c.payload, c.status,
			c.attempts, c.next_attempt_at, coalesce(c.lease_token, ''), c.last_error, c.created_at, c.updated_at, c.delivered_at`,
			token, now.Add(lease), now, limit).Query(func(rows pgx.Rows) error {
			var err error
			out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (paygate.Callback, error) {
				c, err := scanCallback(r)
				if err != nil {
					return paygate.Callback{}, err
				}
				return *c, nil
			})
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim callbacks: %w", err)
	}
	return out, nil
}

// RecordCallbackAttempt logs an attempt and, if c's lease token still holds
// the callback, stores c's new state (status, next attempt, last error,
// delivery time) and releases the lease. It reports whether the state was
// stored: false means another worker holds the callback now, and this late
// result changed nothing but the log.
func (s *Store) RecordCallbackAttempt(ctx context.Context, c *paygate.Callback, a paygate.CallbackAttempt) (bool, error) {
	applied, err := s.RecordCallbackAttempts(ctx, []callback.Result{{Callback: c, Attempt: a}})
	if err != nil {
		return false, err
	}
	return applied[0], nil
}

// RecordCallbackAttempts implements callback.BatchQueue: the attempts of a
// claimed batch in one transaction, each callback's new state fenced by its
// lease token as in RecordCallbackAttempt. The transaction is one round
// trip: BEGIN, one UPDATE and one INSERT for the whole batch (rows as
// arrays), COMMIT.
func (s *Store) RecordCallbackAttempts(ctx context.Context, results []callback.Result) ([]bool, error) {
	var rows resultRows
	seen := make(map[string]bool, len(results))
	for _, r := range results {
		if seen[r.Callback.ID] {
			return s.recordAttemptsOneByOne(ctx, results) // one row per callback in the UPDATE below
		}
		seen[r.Callback.ID] = true
		rows.add(r.Callback, r.Attempt)
	}
	done := make(map[string]bool, len(results))
	if len(results) > 0 {
		if err := s.hotTx(ctx, func(b *pgx.Batch) { rows.queue(b, done) }); err != nil {
			return nil, fmt.Errorf("store: record callback attempts: %w", err)
		}
	}
	applied := make([]bool, len(results))
	for i, r := range results {
		applied[i] = done[r.Callback.ID]
	}
	return applied, nil
}

// resultRows collects a group of attempts as arrays, one per column.
type resultRows struct {
	id, token, status, lastErr, event, payment, url, errMsg, errClass, body []string
	next, created                                                           []time.Time
	delivered                                                               []*time.Time
	attempt, code                                                           []int32
	success                                                                 []bool
	duration                                                                []int64
}

func (r *resultRows) add(c *paygate.Callback, a paygate.CallbackAttempt) {
	r.id, r.token, r.status = append(r.id, c.ID), append(r.token, c.LeaseToken), append(r.status, string(c.Status))
	r.next, r.lastErr, r.delivered = append(r.next, c.NextAttemptAt), append(r.lastErr, storable(c.LastError)), append(r.delivered, c.DeliveredAt)
	r.event, r.payment, r.url = append(r.event, c.WebhookEventID), append(r.payment, c.PaymentID), append(r.url, a.URL)
	r.attempt, r.success, r.code = append(r.attempt, int32(a.Attempt)), append(r.success, a.Success), append(r.code, int32(a.StatusCode))
	r.errMsg, r.errClass, r.duration = append(r.errMsg, storable(a.Error)), append(r.errClass, a.ErrorClass), append(r.duration, a.DurationMs)
	r.body, r.created = append(r.body, storable(a.ResponseBody)), append(r.created, a.CreatedAt)
}

// queue queues the group's two writes: each callback's new state, fenced
// by its lease token (done gets the ids it was stored for), and the
// attempts' log rows in the group's order.
func (r *resultRows) queue(b *pgx.Batch, done map[string]bool) {
	b.Queue(`UPDATE paygate_callbacks c SET status = u.status, next_attempt_at = u.next_attempt_at, last_error = u.last_error,
		delivered_at = u.delivered_at, lease_token = NULL, lease_expires_at = NULL, updated_at = u.created_at
		FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::timestamptz[], $7::timestamptz[])
			AS u(id, token, status, next_attempt_at, last_error, delivered_at, created_at)
		WHERE c.id = u.id AND c.lease_token = u.token
		RETURNING c.id`, r.id, r.token, r.status, r.next, r.lastErr, r.delivered, r.created).Query(func(rows pgx.Rows) error {
		var id string
		_, err := pgx.ForEachRow(rows, []any{&id}, func() error { done[id] = true; return nil })
		return err
	})
	b.Queue(`INSERT INTO paygate_callback_attempts (callback_id, webhook_event_id, payment_id, url, attempt, success,
		status_code, error, error_class, duration_ms, response_body, created_at)
		SELECT callback_id, webhook_event_id, payment_id, url, attempt, success, status_code, error, error_class,
			duration_ms, response_body, created_at
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int4[], $6::bool[], $7::int4[], $8::text[],
			$9::text[], $10::int8[], $11::text[], $12::timestamptz[]) WITH ORDINALITY
			AS u(callback_id, webhook_event_id, payment_id, url, attempt, success, status_code, error, error_class,
				duration_ms, response_body, created_at, ord)
		ORDER BY ord`, r.id, r.event, r.payment, r.url, r.attempt, r.success, r.code, r.errMsg, r.errClass, r.duration, r.body, r.created)
}

// recordAttemptsOneByOne is RecordCallbackAttempts a statement per row, for
// a batch that names a callback twice.
func (s *Store) recordAttemptsOneByOne(ctx context.Context, results []callback.Result) ([]bool, error) {
	applied := make([]bool, len(results))
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, r := range results {
			queueAttempt(b, r.Callback, r.Attempt)
		}
		br := tx.SendBatch(ctx, b)
		for i := range results {
			tag, err := br.Exec()
			if err == nil {
				_, err = br.Exec()
			}
			if err != nil {
				br.Close()
				return err
			}
			applied[i] = tag.RowsAffected() == 1
		}
		return br.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("store: record callback attempts: %w", err)
	}
	return applied, nil
}

// queueAttempt queues an attempt's two writes: the callback's new state
// (only under its lease token) and the attempt's log row.
func queueAttempt(b *pgx.Batch, c *paygate.Callback, a paygate.CallbackAttempt) {
	b.Queue(`UPDATE paygate_callbacks SET status = $3, next_attempt_at = $4, last_error = $5, delivered_at = $6,
		lease_token = NULL, lease_expires_at = NULL, updated_at = $7 WHERE id = $1 AND lease_token = $2`,
		c.ID, c.LeaseToken, c.Status, c.NextAttemptAt, c.LastError, c.DeliveredAt, a.CreatedAt)
	b.Queue(`INSERT INTO paygate_callback_attempts (callback_id, webhook_event_id, payment_id, url, attempt, success,
		status_code, error, error_class, duration_ms, response_body, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		c.ID, c.WebhookEventID, c.PaymentID, a.URL, a.Attempt, a.Success, a.StatusCode, a.Error, a.ErrorClass,
		a.DurationMs, a.ResponseBody, a.CreatedAt)
}

// GetCallback returns one callback.
func (s *Store) GetCallback(ctx context.Context, id string) (*paygate.Callback, error) {
	return scanCallback(s.pool.QueryRow(ctx, `SELECT `+callbackColumns+` FROM paygate_callbacks WHERE id = $1`, id))
}

// RetryCallback implements paygate.Store.
func (s *Store) RetryCallback(ctx context.Context, id string, now time.Time) (*paygate.Callback, error) {
	return scanCallback(s.pool.QueryRow(ctx, `UPDATE paygate_callbacks SET status = 'pending', next_attempt_at = $2,
		lease_token = NULL, lease_expires_at = NULL, updated_at = $2 WHERE id = $1 RETURNING `+callbackColumns, id, now))
}

// CallbackQueueDepth implements paygate.Store.
func (s *Store) CallbackQueueDepth(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM paygate_callbacks WHERE status = 'pending'`).Scan(&n)
	return n, err
}

// ListCallbackAttempts implements paygate.Store.
func (s *Store) ListCallbackAttempts(ctx context.Context, f paygate.CallbackFilter) (*paygate.Page[paygate.CallbackAttempt], error) {
	where := sq.And{}
	if f.Success != nil {
		where = append(where, sq.Eq{"success": *f.Success})
	}
	if f.WebhookEventID != "" {
		where = append(where, sq.Eq{"webhook_event_id": f.WebhookEventID})
	}
	if f.PaymentID != "" {
		where = append(where, sq.Eq{"payment_id": f.PaymentID})
	}
	return listPage(ctx, s.pool, "paygate_callback_attempts", `id, callback_id, webhook_event_id, payment_id, url, attempt, success,
		status_code, error, error_class, duration_ms, response_body, created_at`, where, f.PageParams,
		byID("callbacks", func(a paygate.CallbackAttempt) string { return a.ID }),
		func(r pgx.CollectableRow) (paygate.CallbackAttempt, error) {
			var a paygate.CallbackAttempt
			var id int64
			err := r.Scan(&id, &a.CallbackID, &a.WebhookEventID, &a.PaymentID, &a.URL, &a.Attempt, &a.Success, &a.StatusCode,
				&a.Error, &a.ErrorClass, &a.DurationMs, &a.ResponseBody, &a.CreatedAt)
			a.ID, a.CreatedAt = strconv.FormatInt(id, 10), a.CreatedAt.UTC()
			return a, err
		})
}

// callbackChannel is the LISTEN/NOTIFY channel that announces new callbacks.
const callbackChannel = "paygate_callbacks"

// ListenCallbacks calls wake whenever a transaction that queued callbacks
// commits, on any replica, until ctx is done (then it returns nil). It holds
// one connection of the pool for LISTEN and reconnects after errors. It is a
// hint that shortens the wait for a callback engine's next poll (give it
// callback.Engine.Wake); polling remains the guarantee.
func (s *Store) ListenCallbacks(ctx context.Context, wake func()) error {
	for ctx.Err() == nil {
		err := s.listen(ctx, wake)
		if ctx.Err() != nil {
			return nil
		}
		_ = err
		wake() // something may have been queued while we were not listening
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

func (s *Store) listen(ctx context.Context, wake func()) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+callbackChannel); err != nil {
		return err
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), "UNLISTEN "+callbackChannel)
	}()
	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			return err
		}
		wake()
	}
}

// storable is text PostgreSQL accepts: valid UTF-8 without NUL. A text it
// refused would fail the whole group of results with it (the delivered
// callbacks of the group would be sent again when their leases end). The
// engine already cleans what it records; this guards any other writer.
func storable(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, ""), "\x00", "")
}
