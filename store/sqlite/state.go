package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// GetState implements paygate.Store.
func (s *Store) GetState(ctx context.Context, key string) (string, error) {
	var v string
	err := s.r.QueryRowContext(ctx, `SELECT value FROM paygate_state WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("store: get state %s: %w", key, unavailable(err))
	}
	return v, nil
}

// SetState implements paygate.Store.
func (s *Store) SetState(ctx context.Context, key, value string) error {
	return s.exec(ctx, "set state "+key, `INSERT INTO paygate_state (key, value, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, key, value, ts(time.Now()))
}

// TryLease implements paygate.Store with one upsert that takes the row over
// only when its lease expired or the holder is the same; writes run one at a
// time, so of concurrent callers exactly one changes a row.
func (s *Store) TryLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	var ok bool
	err := s.write(ctx, func(ctx context.Context, tx *wtx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO paygate_leases AS l (name, holder, expires_at) VALUES (?1, ?2, ?4)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE l.expires_at <= ?3 OR l.holder = excluded.holder`, name, holder, ts(now), ts(now.Add(ttl)))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		ok = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: lease %s: %w", name, err)
	}
	return ok, nil
}

// ReleaseLease implements paygate.Store.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	return s.exec(ctx, "release lease "+name, `DELETE FROM paygate_leases WHERE name = ? AND holder = ?`, name, holder)
}
