package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	sq "github.com/Masterminds/squirrel"

	"github.com/numedapp/paygate"
)

// InsertSystemLogs implements paygate.Store in one transaction.
func (s *Store) InsertSystemLogs(ctx context.Context, rows []paygate.SystemLog) error {
	if len(rows) == 0 {
		return nil
	}
	err := s.write(ctx, func(ctx context.Context, tx *wtx) error {
		for _, r := range rows {
			if _, err := tx.ExecContext(ctx, `INSERT INTO paygate_system_logs (level, source, message, request_id, method, path,
				status_code, duration_ms, fields, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				r.Level, r.Source, r.Message, r.RequestID, r.Method, r.Path, r.StatusCode, r.DurationMs,
				rawJSON(r.Fields), ts(r.CreatedAt)); err != nil {
				return err
			}
		}
		return nil
	})
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
		where = append(where, sq.GtOrEq{"created_at": ts(f.From)})
	}
	if !f.To.IsZero() {
		where = append(where, sq.Lt{"created_at": ts(f.To)})
	}
	var page *paygate.Page[paygate.SystemLog]
	err := s.read(ctx, func(tx *sql.Tx) (err error) {
		page, err = listPage(ctx, tx, "paygate_system_logs", "id, level, source, message, request_id, method, path, status_code, duration_ms, fields, created_at",
			where, f.PageParams, byTimeSeq("logs", "created_at", func(l paygate.SystemLog) (time.Time, string) { return l.CreatedAt, l.ID }),
			func(r scanner) (paygate.SystemLog, error) {
				var l paygate.SystemLog
				var id int64
				err := r.Scan(&id, &l.Level, &l.Source, &l.Message, &l.RequestID, &l.Method, &l.Path, &l.StatusCode, &l.DurationMs,
					rawScan{&l.Fields}, tsScan{&l.CreatedAt})
				l.ID = strconv.FormatInt(id, 10)
				return l, err
			})
		return err
	})
	return page, err
}

// PurgeSystemLogs implements paygate.Store, deleting in batches so a large
// backlog never holds the writer long.
func (s *Store) PurgeSystemLogs(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		err := s.write(ctx, func(ctx context.Context, tx *wtx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM paygate_system_logs WHERE id IN
				(SELECT id FROM paygate_system_logs WHERE created_at < ? LIMIT 10000)`, ts(before))
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, fmt.Errorf("store: purge system logs: %w", err)
		}
		total += n
		if n < 10000 {
			return total, nil
		}
	}
}
