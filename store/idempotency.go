package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/numedapp/paygate"
)

// BeginIdempotent implements paygate.Store. The insert takes over an
// expired record (as a new generation), and, keeping its generation, a
// released record or one left in flight since before staleBefore (its
// process died) of the same request.
func (s *Store) BeginIdempotent(ctx context.Context, scope, key string, hash []byte, now, expires, staleBefore time.Time) (*paygate.IdempotencyRecord, bool, error) {
	var gen time.Time
	err := s.pool.QueryRow(ctx, `INSERT INTO paygate_idempotency_keys AS t (scope, key, request_hash, status, locked_at, created_at, expires_at)
		VALUES ($1, $2, $3, 'in_flight', $4, $4, $5)
		ON CONFLICT (scope, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, status = 'in_flight',
			locked_at = EXCLUDED.locked_at, response_status = NULL, response_body = NULL,
			created_at = CASE WHEN t.expires_at <= $4 THEN EXCLUDED.created_at ELSE t.created_at END,
			expires_at = CASE WHEN t.expires_at <= $4 THEN EXCLUDED.expires_at ELSE t.expires_at END
		WHERE t.expires_at <= $4 OR (t.request_hash = EXCLUDED.request_hash
			AND (t.status = 'released' OR (t.status = 'in_flight' AND t.locked_at <= $6)))
		RETURNING created_at`, scope, key, hash, now, expires, staleBefore).Scan(&gen)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, false, fmt.Errorf("store: begin idempotent: %w", err)
	}
	if err == nil {
		return &paygate.IdempotencyRecord{RequestHash: hash, InFlight: true, Generation: gen.UTC()}, true, nil
	}
	var rec paygate.IdempotencyRecord
	var status string
	var code *int
	err = s.pool.QueryRow(ctx, `SELECT request_hash, status, response_status, response_body, created_at FROM paygate_idempotency_keys
		WHERE scope = $1 AND key = $2`, scope, key).Scan(&rec.RequestHash, &status, &code, &rec.ResponseBody, &rec.Generation)
	if errors.Is(err, pgx.ErrNoRows) { // released between the two statements: try once more
		return s.BeginIdempotent(ctx, scope, key, hash, now, expires, staleBefore)
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: read idempotent: %w", err)
	}
	rec.InFlight = status != "done"
	if code != nil {
		rec.ResponseStatus = *code
	}
	return &rec, false, nil
}

// FinishIdempotent implements paygate.Store.
func (s *Store) FinishIdempotent(ctx context.Context, scope, key string, status int, body []byte) error {
	_, err := s.pool.Exec(ctx, `UPDATE paygate_idempotency_keys SET status = 'done', response_status = $3, response_body = $4
		WHERE scope = $1 AND key = $2`, scope, key, status, body)
	if err != nil {
		return fmt.Errorf("store: finish idempotent: %w", err)
	}
	return nil
}

// ReleaseIdempotent implements paygate.Store.
func (s *Store) ReleaseIdempotent(ctx context.Context, scope, key string) error {
	_, err := s.pool.Exec(ctx, `UPDATE paygate_idempotency_keys SET status = 'released' WHERE scope = $1 AND key = $2 AND status = 'in_flight'`, scope, key)
	if err != nil {
		return fmt.Errorf("store: release idempotent: %w", err)
	}
	return nil
}

// PurgeIdempotent implements paygate.Store.
func (s *Store) PurgeIdempotent(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM paygate_idempotency_keys WHERE expires_at <= $1`, now)
	if err != nil {
		return 0, fmt.Errorf("store: purge idempotent: %w", err)
	}
	return tag.RowsAffected(), nil
}
