package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	sq "github.com/Masterminds/squirrel"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/store/internal/cursor"
)

// keyset is how a list pages by cursor: its order (newest first), the
// condition for the rows after a cursor, and the cursor of an item. The
// cursors are the PostgreSQL store's.
type keyset[T any] struct {
	order  []string
	after  func(cursor string) (sq.Sqlizer, error)
	cursor func(T) string
}

// byID pages by an integer id.
func byID[T any](list string, id func(T) string) keyset[T] {
	return keyset[T]{
		order: []string{"id DESC"},
		after: func(c string) (sq.Sqlizer, error) {
			id, err := decodeIDCursor(list, c)
			if err != nil {
				return nil, err
			}
			return sq.Lt{"id": id}, nil
		},
		cursor: func(t T) string { return encodeIDCursor(list, id(t)) },
	}
}

// byTime pages by a timestamp column, with the text id as tie breaker.
func byTime[T any](list, col string, key func(T) (time.Time, string)) keyset[T] {
	return keyset[T]{
		order: []string{col + " DESC", "id DESC"},
		after: func(c string) (sq.Sqlizer, error) {
			at, id, err := decodeTimeCursor(list, c)
			if err != nil {
				return nil, err
			}
			return sq.Expr("("+col+", id) < (?, ?)", ts(at), id), nil
		},
		cursor: func(t T) string { at, id := key(t); return encodeTimeCursor(list, at, id) },
	}
}

// byTimeSeq pages by a timestamp column, with an integer id as tie breaker.
func byTimeSeq[T any](list, col string, key func(T) (time.Time, string)) keyset[T] {
	return keyset[T]{
		order: []string{col + " DESC", "id DESC"},
		after: func(c string) (sq.Sqlizer, error) {
			at, id, err := decodeTimeCursor(list, c)
			if err != nil {
				return nil, err
			}
			n, err := strconv.ParseInt(id, 10, 64)
			if err != nil || n < 1 {
				return nil, errCursor()
			}
			return sq.Expr("("+col+", id) < (?, ?)", ts(at), n), nil
		},
		cursor: func(t T) string { at, id := key(t); return encodeTimeCursor(list, at, id) },
	}
}

// listPage returns the total of table's rows matching where and one page of
// them, newest first: after pp.Cursor when given, else from pp.Offset. Run
// it in a read transaction so that the count and the page agree.
func listPage[T any](ctx context.Context, q queryer, table, columns string, where sq.And, pp paygate.PageParams,
	ks keyset[T], scan func(scanner) (T, error)) (*paygate.Page[T], error) {
	pp = pp.Normalized()
	// Exact; or, when the caller asked for an estimate, exact up to
	// paygate.ExactTotalLimit, and past it SQLite has no estimate to offer
	// but "more than the limit".
	counted := qb.Select("count(*)").From(table).Where(where)
	if pp.EstimateTotal {
		counted = qb.Select("count(*)").FromSelect(qb.Select("1").From(table).Where(where).Limit(paygate.ExactTotalLimit+1), "capped")
	}
	csql, cargs, err := counted.ToSql()
	if err != nil {
		return nil, err
	}
	var total int
	if err := q.QueryRowContext(ctx, csql, cargs...).Scan(&total); err != nil {
		return nil, fmt.Errorf("store: count %s: %w", table, err)
	}
	estimated := pp.EstimateTotal && total > paygate.ExactTotalLimit
	sel := qb.Select(columns).From(table).Where(where).OrderBy(ks.order...).Limit(uint64(pp.Limit + 1))
	if pp.Cursor != "" {
		cond, err := ks.after(pp.Cursor)
		if err != nil {
			return nil, err
		}
		sel = sel.Where(cond)
	} else if pp.Offset > 0 {
		sel = sel.Offset(uint64(pp.Offset))
	}
	query, args, err := sel.ToSql()
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list %s: %w", table, err)
	}
	items, err := collect(rows, scan)
	if err != nil {
		return nil, fmt.Errorf("store: list %s: %w", table, err)
	}
	page := &paygate.Page[T]{Items: items, Total: total, TotalEstimated: estimated, Limit: pp.Limit, Offset: pp.Offset}
	if len(items) > pp.Limit {
		page.Items = items[:pp.Limit]
		c := ks.cursor(page.Items[pp.Limit-1])
		page.NextCursor = &c
	}
	return page, nil
}

var _ queryer = (*sql.Tx)(nil)

// Cursors are opaque to clients (store/internal/cursor, shared by both stores).
var (
	encodeTimeCursor = cursor.EncodeTime
	decodeTimeCursor = cursor.DecodeTime
	encodeIDCursor   = cursor.EncodeID
	decodeIDCursor   = cursor.DecodeID
	errCursor        = cursor.Malformed
)
