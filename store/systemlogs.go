package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	sq "github.com/Masterminds/squirrel"
	"github.com/jackc/pgx/v5"

	"github.com/numedapp/paygate"
)

// InsertSystemLogs implements paygate.Store with one COPY.
func (s *Store) InsertSystemLogs(ctx context.Context, rows []paygate.SystemLog) error {
	_, err := s.pool.CopyFrom(ctx, pgx.Identifier{"paygate_system_logs"},
		[]string{"level", "source", "message", "request_id", "method", "path", "status_code", "duration_ms", "fields", "created_at"},
		pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
			r := rows[i]
			fields := string(r.Fields)
			if fields == "" {
				fields = "{}"
			}
			return []any{r.Level, r.Source, storable(r.Message), storable(r.RequestID), storable(r.Method), storable(r.Path), r.StatusCode, r.DurationMs, fields, r.CreatedAt}, nil
		}))
	if err != nil {
		return fmt.Errorf("store: insert system logs: %w", err)
	}
	return nil
}

// ListSystemLogs implements paygate.Store.
func (s *Store) ListSystemLogs(ctx context.Context, f paygate.SystemLogFilter) (*paygate.Page[paygate.SystemLog], error) {
	where := sq.And{}
	if f.Level != "" {
		where = append(where, sq.Eq{"level": f.Level})
	}
	if f.Source != "" {
		where = append(where, sq.Eq{"source": f.Source})
	}
	if f.RequestID != "" {
		where = append(where, sq.Eq{"request_id": f.RequestID})
	}
	if !f.From.IsZero() {
		where = append(where, sq.GtOrEq{"created_at": f.From})
	}
	if !f.To.IsZero() {
		where = append(where, sq.Lt{"created_at": f.To})
	}
	return listPage(ctx, s.pool, "paygate_system_logs", "id, level, source, message, request_id, method, path, status_code, duration_ms, fields, created_at",
		where, f.PageParams, byTimeSeq("logs", "created_at", func(l paygate.SystemLog) (time.Time, string) { return l.CreatedAt, l.ID }),
		func(r pgx.CollectableRow) (paygate.SystemLog, error) {
			var l paygate.SystemLog
			var id int64
			var fields []byte
			err := r.Scan(&id, &l.Level, &l.Source, &l.Message, &l.RequestID, &l.Method, &l.Path, &l.StatusCode, &l.DurationMs, &fields, &l.CreatedAt)
			l.ID, l.Fields, l.CreatedAt = strconv.FormatInt(id, 10), fields, l.CreatedAt.UTC()
			return l, err
		})
}

// PurgeSystemLogs implements paygate.Store, deleting in batches so a large
// backlog never holds long locks.
func (s *Store) PurgeSystemLogs(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, `DELETE FROM paygate_system_logs WHERE id IN
			(SELECT id FROM paygate_system_logs WHERE created_at < $1 LIMIT 10000)`, before)
		if err != nil {
			return total, fmt.Errorf("store: purge system logs: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < 10000 {
			return total, nil
		}
	}
}
