package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	sq "github.com/Masterminds/squirrel"

	"github.com/numedapp/paygate"
)

const callbackColumns = `id, payment_id, webhook_event_id, sequence, event_type, action, url, payload, status, attempts,
	next_attempt_at, coalesce(lease_token, ''), last_error, created_at, updated_at, delivered_at`

func scanCallback(row scanner) (*paygate.Callback, error) {
	var c paygate.Callback
	err := row.Scan(&c.ID, &c.PaymentID, &c.WebhookEventID, &c.Sequence, &c.EventType, &c.Action, &c.URL, rawScan{&c.Payload}, &c.Status,
		&c.Attempts, tsScan{&c.NextAttemptAt}, &c.LeaseToken, &c.LastError, tsScan{&c.CreatedAt}, tsScan{&c.UpdatedAt}, tsNullScan{&c.DeliveredAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("callback: %w", paygate.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// ClaimCallbacks leases up to limit due callbacks (pending, next attempt at
// or before now, no live lease, no earlier callback of the same payment
// still pending: a payment's callbacks go out one at a time, in sequence)
// to the caller until now+lease, counting the attempt it is about to make. The write transaction makes concurrent
// claimers take turns, so no callback is leased twice; a lease that expires
// makes its callback due again.
func (s *Store) ClaimCallbacks(ctx context.Context, limit int, lease time.Duration, now time.Time) ([]paygate.Callback, error) {
	if limit <= 0 {
		return nil, nil
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	var out []paygate.Callback
	err := s.write(ctx, func(ctx context.Context, tx *wtx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE paygate_callbacks SET lease_token = ?, lease_expires_at = ?,
				attempts = attempts + 1, updated_at = ?
			WHERE id IN (SELECT id FROM paygate_callbacks p
				WHERE status = 'pending' AND next_attempt_at <= ? AND (lease_expires_at IS NULL OR lease_expires_at <= ?)
					AND NOT EXISTS (SELECT 1 FROM paygate_callbacks e
						WHERE e.payment_id = p.payment_id AND e.sequence < p.sequence AND e.status = 'pending')
				ORDER BY next_attempt_at, id LIMIT ?)
			RETURNING `+callbackColumns, token, ts(now.Add(lease)), ts(now), ts(now), ts(now), limit)
		if err != nil {
			return err
		}
		out, err = collect(rows, func(r scanner) (paygate.Callback, error) {
			c, err := scanCallback(r)
			if err != nil {
				return paygate.Callback{}, err
			}
			return *c, nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim callbacks: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].NextAttemptAt.Equal(out[j].NextAttemptAt) {
			return out[i].NextAttemptAt.Before(out[j].NextAttemptAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// ReleaseCallbacks gives back claimed callbacks that were not sent: each
// still leased to its LeaseToken loses the lease and the attempt its claim
// counted, and is due again (callback.ReleasingQueue).
func (s *Store) ReleaseCallbacks(ctx context.Context, cbs []paygate.Callback) error {
	if len(cbs) == 0 {
		return nil
	}
	err := s.write(ctx, func(ctx context.Context, tx *wtx) error {
		for _, c := range cbs {
			if _, err := tx.ExecContext(ctx, `UPDATE paygate_callbacks SET lease_token = NULL, lease_expires_at = NULL,
				attempts = max(attempts - 1, 0) WHERE id = ? AND lease_token = ? AND status = 'pending'`, c.ID, c.LeaseToken); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: release callbacks: %w", err)
	}
	return nil
}

// RecordCallbackAttempt logs an attempt and, if c's lease token still holds
// the callback, stores c's new state (status, next attempt, last error,
// delivery time) and releases the lease. It reports whether the state was
// stored: false means another worker holds the callback now, and this late
// result changed nothing but the log.
func (s *Store) RecordCallbackAttempt(ctx context.Context, c *paygate.Callback, a paygate.CallbackAttempt) (bool, error) {
	var applied bool
	err := s.write(ctx, func(ctx context.Context, tx *wtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE paygate_callbacks SET status = ?, next_attempt_at = ?, last_error = ?, delivered_at = ?,
			lease_token = NULL, lease_expires_at = NULL, updated_at = ? WHERE id = ? AND lease_token = ?`,
			string(c.Status), ts(c.NextAttemptAt), c.LastError, tsPtr(c.DeliveredAt), ts(a.CreatedAt), c.ID, c.LeaseToken)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		applied = n == 1
		_, err = tx.ExecContext(ctx, `INSERT INTO paygate_callback_attempts (callback_id, webhook_event_id, payment_id, url, attempt, success,
			status_code, error, error_class, duration_ms, response_body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.WebhookEventID, c.PaymentID, a.URL, a.Attempt, b2i(a.Success), a.StatusCode, a.Error, a.ErrorClass,
			a.DurationMs, a.ResponseBody, ts(a.CreatedAt))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: record callback attempt: %w", err)
	}
	return applied, nil
}

// GetCallback returns one callback.
func (s *Store) GetCallback(ctx context.Context, id string) (*paygate.Callback, error) {
	c, err := scanCallback(s.r.QueryRowContext(ctx, `SELECT `+callbackColumns+` FROM paygate_callbacks WHERE id = ?`, id))
	return c, unavailable(err)
}

// RetryCallback implements paygate.Store.
func (s *Store) RetryCallback(ctx context.Context, id string, now time.Time) (*paygate.Callback, error) {
	var c *paygate.Callback
	err := s.write(ctx, func(ctx context.Context, tx *wtx) (err error) {
		c, err = scanCallback(tx.QueryRowContext(ctx, `UPDATE paygate_callbacks SET status = 'pending', next_attempt_at = ?,
			lease_token = NULL, lease_expires_at = NULL, updated_at = ? WHERE id = ? RETURNING `+callbackColumns, ts(now), ts(now), id))
		return err
	})
	if err != nil {
		if errors.Is(err, paygate.ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("store: retry callback: %w", err)
	}
	s.notifyCallbacks()
	return c, nil
}

// CallbackQueueDepth implements paygate.Store.
func (s *Store) CallbackQueueDepth(ctx context.Context) (int64, error) {
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM paygate_callbacks WHERE status = 'pending'`).Scan(&n)
	return n, unavailable(err)
}

// ListCallbackAttempts implements paygate.Store.
func (s *Store) ListCallbackAttempts(ctx context.Context, f paygate.CallbackFilter) (*paygate.Page[paygate.CallbackAttempt], error) {
	where := sq.And{}
	if f.Success != nil {
		where = append(where, sq.Eq{"success": b2i(*f.Success)})
	}
	if f.WebhookEventID != "" {
		where = append(where, sq.Eq{"webhook_event_id": f.WebhookEventID})
	}
	if f.PaymentID != "" {
		where = append(where, sq.Eq{"payment_id": f.PaymentID})
	}
	var page *paygate.Page[paygate.CallbackAttempt]
	err := s.read(ctx, func(tx *sql.Tx) (err error) {
		page, err = listPage(ctx, tx, "paygate_callback_attempts", `id, callback_id, webhook_event_id, payment_id, url, attempt, success,
		status_code, error, error_class, duration_ms, response_body, created_at`, where, f.PageParams,
			byID("callbacks", func(a paygate.CallbackAttempt) string { return a.ID }),
			func(r scanner) (paygate.CallbackAttempt, error) {
				var a paygate.CallbackAttempt
				var id int64
				err := r.Scan(&id, &a.CallbackID, &a.WebhookEventID, &a.PaymentID, &a.URL, &a.Attempt, &a.Success, &a.StatusCode,
					&a.Error, &a.ErrorClass, &a.DurationMs, &a.ResponseBody, tsScan{&a.CreatedAt})
				a.ID = strconv.FormatInt(id, 10)
				return a, err
			})
		return err
	})
	return page, err
}
