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

// keyset is how a list pages by cursor: its order (newest first), the
// condition for the rows after a cursor, and the cursor of an item.
type keyset[T any] struct {
	order  []string
	after  func(cursor string) (sq.Sqlizer, error)
	cursor func(T) string
}

// byID pages by a bigint identity id.
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
			return sq.Expr("("+col+", id) < (?, ?)", at, id), nil
		},
		cursor: func(t T) string { at, id := key(t); return encodeTimeCursor(list, at, id) },
	}
}

// byTimeSeq pages by a timestamp column, with a bigint identity id as tie
// breaker.
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
			return sq.Expr("("+col+", id) < (?, ?)", at, n), nil
		},
		cursor: func(t T) string { at, id := key(t); return encodeTimeCursor(list, at, id) },
	}
}

// listPage returns the total of table's rows matching where and one page of
// them, newest first: after pp.Cursor when given, else from pp.Offset.
func listPage[T any](ctx context.Context, q querier, table, columns string, where sq.And, pp paygate.PageParams,
	ks keyset[T], scan pgx.RowToFunc[T]) (*paygate.Page[T], error) {
	pp = pp.Normalized()
	total, estimated, err := count(ctx, q, table, where, pp.EstimateTotal)
	if err != nil {
		return nil, err
	}
	sel := psql.Select(columns).From(table).Where(where).OrderBy(ks.order...).Limit(uint64(pp.Limit + 1))
	if pp.Cursor != "" {
		cond, err := ks.after(pp.Cursor)
		if err != nil {
			return nil, err
		}
		sel = sel.Where(cond)
	} else {
		sel = sel.Offset(uint64(pp.Offset))
	}
	sql, args, err := sel.ToSql()
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list %s: %w", table, err)
	}
	items, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return nil, fmt.Errorf("store: list %s: %w", table, err)
	}
	page := &paygate.Page[T]{Items: items, Total: total, TotalEstimated: estimated, Limit: pp.Limit, Offset: pp.Offset}
	if page.Items == nil {
		page.Items = []T{}
	}
	if len(items) > pp.Limit {
		page.Items = items[:pp.Limit]
		c := ks.cursor(page.Items[pp.Limit-1])
		page.NextCursor = &c
	}
	return page, nil
}

// count counts table's rows matching where: exactly, or with estimate
// exactly up to paygate.ExactTotalLimit and else the planner's estimate
// (estimated true).
func count(ctx context.Context, q querier, table string, where sq.And, estimate bool) (n int, estimated bool, err error) {
	if !estimate {
		sql, args, err := psql.Select("count(*)").From(table).Where(where).ToSql()
		if err != nil {
			return 0, false, err
		}
		if err := q.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			return 0, false, fmt.Errorf("store: count %s: %w", table, err)
		}
		return n, false, nil
	}
	inner := psql.Select("1").From(table).Where(where)
	sql, args, err := psql.Select("count(*)").FromSelect(inner.Limit(paygate.ExactTotalLimit+1), "capped").ToSql()
	if err != nil {
		return 0, false, err
	}
	if err := q.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		return 0, false, fmt.Errorf("store: count %s: %w", table, err)
	}
	if n <= paygate.ExactTotalLimit {
		return n, false, nil
	}
	sql, args, err = inner.ToSql()
	if err != nil {
		return 0, false, err
	}
	var plan []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		} `json:"Plan"`
	}
	if err := q.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+sql, args...).Scan(&plan); err != nil || len(plan) == 0 {
		return n, true, nil // more than the limit, by how much unknown
	}
	return max(n, int(plan[0].Plan.Rows)), true, nil
}
