package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/numedapp/paygate"
)

// BeginIdempotent implements paygate.Store. The insert takes over an
// expired record (as a new generation), and, keeping its generation, a
// released record or one left in flight since before staleBefore (its
// process died) of the same request.
func (s *Store) BeginIdempotent(ctx context.Context, scope, key string, hash []byte, now, expires, staleBefore time.Time) (*paygate.IdempotencyRecord, bool, error) {
	var rec *paygate.IdempotencyRecord
	started := false
	err := s.write(ctx, func(ctx context.Context, tx *wtx) error {
		var gen time.Time
		err := tx.QueryRowContext(ctx, `INSERT INTO paygate_idempotency_keys AS t (scope, key, request_hash, status, locked_at, created_at, expires_at)
			VALUES (?1, ?2, ?3, 'in_flight', ?4, ?4, ?5)
			ON CONFLICT (scope, key) DO UPDATE SET request_hash = excluded.request_hash, status = 'in_flight',
				locked_at = excluded.locked_at, response_status = NULL, response_body = NULL,
				created_at = CASE WHEN t.expires_at <= ?4 THEN excluded.created_at ELSE t.created_at END,
				expires_at = CASE WHEN t.expires_at <= ?4 THEN excluded.expires_at ELSE t.expires_at END
			WHERE t.expires_at <= ?4 OR (t.request_hash = excluded.request_hash
				AND (t.status = 'released' OR (t.status = 'in_flight' AND t.locked_at <= ?6)))
			RETURNING created_at`, scope, key, hash, ts(now), ts(expires), ts(staleBefore)).Scan(tsScan{&gen})
		if err == nil {
			rec, started = &paygate.IdempotencyRecord{RequestHash: hash, InFlight: true, Generation: gen}, true
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var r paygate.IdempotencyRecord
		var status string
		var code sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT request_hash, status, response_status, response_body, created_at
			FROM paygate_idempotency_keys WHERE scope = ? AND key = ?`, scope, key).
			Scan(&r.RequestHash, &status, &code, &r.ResponseBody, tsScan{&r.Generation}); err != nil {
			return err
		}
		r.InFlight = status != "done"
		r.ResponseStatus = int(code.Int64)
		rec = &r
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("store: begin idempotent: %w", err)
	}
	return rec, started, nil
}

// FinishIdempotent implements paygate.Store.
func (s *Store) FinishIdempotent(ctx context.Context, scope, key string, status int, body []byte) error {
	if body == nil {
		body = []byte{}
	}
	return s.exec(ctx, "finish idempotent", `UPDATE paygate_idempotency_keys SET status = 'done', response_status = ?, response_body = ?
		WHERE scope = ? AND key = ?`, status, body, scope, key)
}

// ReleaseIdempotent implements paygate.Store.
func (s *Store) ReleaseIdempotent(ctx context.Context, scope, key string) error {
	return s.exec(ctx, "release idempotent", `UPDATE paygate_idempotency_keys SET status = 'released'
		WHERE scope = ? AND key = ? AND status = 'in_flight'`, scope, key)
}

// PurgeIdempotent implements paygate.Store.
func (s *Store) PurgeIdempotent(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx *wtx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM paygate_idempotency_keys WHERE expires_at <= ?`, ts(now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: purge idempotent: %w", err)
	}
	return n, nil
}

// exec runs one statement in a write transaction.
func (s *Store) exec(ctx context.Context, what, query string, args ...any) error {
	err := s.write(ctx, func(ctx context.Context, tx *wtx) error {
		_, err := tx.ExecContext(ctx, query, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	return nil
}
