package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// GetState implements paygate.Store.
func (s *Store) GetState(ctx context.Context, key string) (string, error) {
	var v string
	err := s.pool.QueryRow(ctx, `SELECT value FROM paygate_state WHERE key = $1`, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("store: get state %s: %w", key, err)
	}
	return v, nil
}

// SetState implements paygate.Store.
func (s *Store) SetState(ctx context.Context, key, value string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO paygate_state (key, value, updated_at) VALUES ($1, $2, now())
		ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`, key, value)
	if err != nil {
		return fmt.Errorf("store: set state %s: %w", key, err)
	}
	return nil
}

// TryLease implements paygate.Store with one upsert: the row is taken over
// only when its lease expired or the holder is the same, so of concurrent
// callers exactly one gets a row back.
func (s *Store) TryLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO paygate_leases AS l (name, holder, expires_at) VALUES ($1, $2, $4)
		ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
		WHERE l.expires_at <= $3 OR l.holder = EXCLUDED.holder`, name, holder, now, now.Add(ttl))
	if err != nil {
		return false, fmt.Errorf("store: lease %s: %w", name, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ReleaseLease implements paygate.Store.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM paygate_leases WHERE name = $1 AND holder = $2`, name, holder); err != nil {
		return fmt.Errorf("store: release lease %s: %w", name, err)
	}
	return nil
}
