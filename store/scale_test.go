package store_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/callback"
	"github.com/numedapp/paygate/internal/testenv"
	"github.com/numedapp/paygate/store"
)

// Lists at scale: every documented list and filter, first page and a deep
// cursor page. TestListPlansUseIndexes asserts (at a size CI can afford)
// that each page query reads an index in order — no sequential scan, no
// sort; BenchmarkListsAtScale gives the times at 1 M payments and 5 M
// history rows (docs/benchmarks.md has the command).

// sqlRecorder keeps the SQL and arguments of every query a pool runs.
type sqlRecorder struct {
	mu   sync.Mutex
	seen []recordedQuery
	// roundTrips counts queries sent alone and batches (pipelines).
	roundTrips int
}

type recordedQuery struct {
	sql  string
	args []any
}

func (r *sqlRecorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.mu.Lock()
	r.seen = append(r.seen, recordedQuery{d.SQL, d.Args})
	r.roundTrips++
	r.mu.Unlock()
	return ctx
}

func (r *sqlRecorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r *sqlRecorder) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.mu.Lock()
	r.roundTrips++
	r.mu.Unlock()
	return ctx
}

func (r *sqlRecorder) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	r.mu.Lock()
	r.seen = append(r.seen, recordedQuery{d.SQL, d.Args})
	r.mu.Unlock()
}

func (r *sqlRecorder) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (r *sqlRecorder) reset() []recordedQuery {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.seen
	r.seen, r.roundTrips = nil, 0
	return out
}

// scaleStore is a migrated store in a fresh schema holding payments
// payments, history history rows, and as many webhook events, callback
// attempts and system log rows as payments.
func scaleStore(t testing.TB, payments, history int) (*store.Store, *pgxpool.Pool, *sqlRecorder) {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(testenv.SchemaURL(t))
	if err != nil {
		t.Fatal(err)
	}
	rec := &sqlRecorder{}
	cfg.ConnConfig.Tracer = rec
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := store.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	n, h := strconv.Itoa(payments), strconv.Itoa(history)
	for _, q := range []string{
		`INSERT INTO paygate_payments (id, method, status, amount, currency, customer_email, created_at, updated_at)
		 SELECT 'pay_s' || lpad(g::text, 9, '0'), (ARRAY['link','intent','checkout'])[1 + g % 3],
		        (ARRAY['pending','succeeded','failed','refunded','processing','canceled'])[1 + g % 6], 1000 + g % 5000, 'usd',
		        CASE WHEN g % 10 = 0 THEN 'c' || (g % 5000) || '@example.com' ELSE '' END,
		        timestamptz '2026-01-01' + g * interval '1 second', timestamptz '2026-01-01' + g * interval '1 second'
		 FROM generate_series(1, ` + n + `) g`,
		`INSERT INTO paygate_payment_history (payment_id, payment_intent_id, event_type, from_status, to_status, amount, currency, source, created_at)
		 SELECT 'pay_s' || lpad((1 + g % ` + n + `)::text, 9, '0'), 'pi_s' || (1 + g % ` + n + `),
		        (ARRAY['payment_created','payment_succeeded','refund_created','payment_failed','checkout_completed'])[1 + g % 5],
		        'pending', 'succeeded', 1000, 'usd', 'webhook', timestamptz '2026-01-01' + g * interval '200 ms'
		 FROM generate_series(1, ` + h + `) g`,
		`INSERT INTO paygate_webhook_events (id, type, status, payment_id, created_at, received_at, processed_at, payload)
		 SELECT 'evt_s' || lpad(g::text, 9, '0'), (ARRAY['payment_intent.succeeded','charge.refunded','checkout.session.completed','refund.created'])[1 + g % 4],
		        (ARRAY['processed','processed','processed','ignored','unmatched','failed'])[1 + g % 6], 'pay_s' || lpad(g::text, 9, '0'),
		        timestamptz '2026-01-01' + g * interval '1 second', timestamptz '2026-01-01' + g * interval '1 second',
		        timestamptz '2026-01-01' + g * interval '1 second', '{}'
		 FROM generate_series(1, ` + n + `) g`,
		`INSERT INTO paygate_callbacks (id, payment_id, webhook_event_id, sequence, event_type, action, url, payload, status, next_attempt_at, created_at, updated_at)
		 SELECT 'cb_s' || g, 'pay_s' || lpad(g::text, 9, '0'), 'evt_s' || lpad(g::text, 9, '0'), 1, 'payment_intent.succeeded', 'payment_succeeded',
		        'https://merchant.example.com/hook', '{}', 'succeeded', timestamptz '2026-01-01', timestamptz '2026-01-01', timestamptz '2026-01-01'
		 FROM generate_series(1, ` + n + `/ 10 + 1) g`,
		`INSERT INTO paygate_callback_attempts (callback_id, webhook_event_id, payment_id, url, attempt, success, status_code, created_at)
		 SELECT 'cb_s' || (1 + g % (` + n + `/ 10 + 1)), 'evt_s' || lpad((1 + g % (` + n + `/ 10 + 1))::text, 9, '0'),
		        'pay_s' || lpad((1 + g % (` + n + `/ 10 + 1))::text, 9, '0'), 'https://merchant.example.com/hook', 1, g % 7 <> 0,
		        CASE WHEN g % 7 = 0 THEN 503 ELSE 200 END, timestamptz '2026-01-01' + g * interval '1 second'
		 FROM generate_series(1, ` + n + `) g`,
		`INSERT INTO paygate_system_logs (level, source, message, request_id, created_at)
		 SELECT (ARRAY['info','info','info','info','warn','error'])[1 + g % 6], (ARRAY['http','http','webhook','payment','error'])[1 + g % 5],
		        'message', 'req_s' || g, timestamptz '2026-01-01' + g * interval '1 second'
		 FROM generate_series(1, ` + n + `) g`,
		`ANALYZE`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("seed: %v\n%s", err, q)
		}
	}
	return store.New(pool), pool, rec
}

// listCase is one documented list with one filter: list returns a page's
// total, its next cursor and its size.
type listCase struct {
	name string
	list func(ctx context.Context, s *store.Store, pp paygate.PageParams) (total int, next *string, err error)
}

func pageOf[T any](p *paygate.Page[T], err error) (int, *string, error) {
	if err != nil {
		return 0, nil, err
	}
	return p.Total, p.NextCursor, nil
}

func listCases() []listCase {
	day := time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)
	no := false
	return []listCase{
		{"payments", func(ctx context.Context, s *store.Store, pp paygate.PageParams) (int, *string, error) {
			return pageOf(s.ListPayments(ctx, paygate.PaymentFilter{PageParams: pp}))
		}},
		{"payments/status", func(ctx context.Context, s *store.Store, pp paygate.PageParams) (int, *string, error) {
			return pageOf(s.ListPayments(ctx, paygate.PaymentFilter{Status: paygate.StatusSucceeded, PageParams: pp}))
		}},
		{"payments/method", func(ctx context.Context, s *store.Store, pp paygate.PageParams) (int, *string, error) {
			return pageOf(s.ListPayments(ctx, paygate.PaymentFilter{Method: paygate.MethodLink, PageParams: pp}))
		}},
		{"payments/customerEmail", func(ctx context.Context, s *store.Store, pp paygate.PageParams) (int, *string, error) {
			return pageOf(s.ListPayments(ctx, paygate.PaymentFilter{CustomerEmail: "c40@example.com", PageParams: pp}))
		}},
		{"payments/created", func(ctx context.Context, s *store.Store, pp paygate.PageParams) (int, *string, error) {
			return pageOf(s.ListPayments(ctx, paygate.PaymentFilter{CreatedFrom: day, CreatedTo: day.Add(24 * time.Hour), PageParams: pp}))
		}},
		{"history", func(ctx context.Context, s *store.Store, pp paygate.PageParams) (int, *string, error) {
			return pageOf(s.ListHistory(ctx, paygate.HistoryFilter{PageParams: pp}))
		}},
		{"history/paymentId", func(ctx context.Context, s *store.Store, pp paygate.PageParams) (int, *string, error) {
			return pageOf(s.ListHistory(ctx, paygate.HistoryFilter{PaymentID: "pay_s000000042", PageParams: pp}))
		}},
		{"history/paymentIntentId", func(ctx context.Context, s *store.Store, pp paygate.PageParams) (int, *string, error) {
			return pageOf(s.ListHistory(ctx, paygate.HistoryFilter{PaymentIntentID: "pi_s42", PageParams: pp}))
		}},
		{"history/eventType", func(ctx context.Context, s *store.Store, pp paygate.PageParams) (int, *string, error) {
			return pageOf(s.ListHistory(ctx, paygate.HistoryFilter{EventType: paygate.HistoryRefundCreated, PageParams: pp}))
		}},
		{"events", func(ctx context.Context, s *store.Store, pp paygate.PageParams) (int, *string, error) {
			return pageOf(s.ListWebhookEvents(ctx, paygate.WebhookEventFilter{PageParams: pp}))
		}},
		{"events/type", func(ctx context.Context, s *store.Store, pp paygate.PageParams) (int, *string, error) {
			return pageOf(s.ListWebhookEvents(ctx, paygate.WebhookEventFilter{Type: "charge.refunded", PageParams: pp}))
		}},
		{"events/status", func(ctx context.Context, s *store.Store, pp paygate.PageParams) (int, *string, error) {
			return pageOf(s.ListWebhookEvents(ctx, paygate.WebhookEventFilter{Status: paygate.EventFailed, PageParams: pp}))
		}},
		{"events/status=processed", func(ctx context.Context, s *store.Store, pp paygate.PageParams) (int, *string, error) {
			return pageOf(s.ListWebhookEvents(ctx, paygate.WebhookEventFilter{Status: paygate.EventProcessed, PageParams: pp}))
		}},
		{"callbacks", func(ctx context.Context, s *store.Store, pp paygate.PageParams) (int, *string, error) {
			return pageOf(s.ListCallbackAttempts(ctx, paygate.CallbackFilter{PageParams: pp}))
		}},
		{"callbacks/success", func(ctx context.Context, s *store.Store, pp paygate.PageParams) (int, *string, error) {
			return pageOf(s.ListCallbackAttempts(ctx, paygate.CallbackFilter{Success: &no, PageParams: pp}))
		}},
		{"callbacks/success=true", func(ctx context.Context, s *store.Store, pp paygate.PageParams) (int, *string, error) {
			yes := true
			return pageOf(s.ListCallbackAttempts(ctx, paygate.CallbackFilter{Success: &yes, PageParams: pp}))
		}},
		{"callbacks/paymentId", func(ctx context.Context, s *store.Store, pp paygate.PageParams) (int, *string, error) {
			return pageOf(s.ListCallbackAttempts(ctx, paygate.CallbackFilter{PaymentID: "pay_s000000042", PageParams: pp}))
		}},
		{"callbacks/webhookEventId", func(ctx context.Context, s *store.Store, pp paygate.PageParams) (int, *string, error) {
			return pageOf(s.ListCallbackAttempts(ctx, paygate.CallbackFilter{WebhookEventID: "evt_s000000042", PageParams: pp}))
		}},
		{"logs", func(ctx context.Context, s *store.Store, pp paygate.PageParams) (int, *string, error) {
			return pageOf(s.ListSystemLogs(ctx, paygate.SystemLogFilter{PageParams: pp}))
		}},
		{"logs/level", func(ctx context.Context, s *store.Store, pp paygate.PageParams) (int, *string, error) {
			return pageOf(s.ListSystemLogs(ctx, paygate.SystemLogFilter{Level: "error", PageParams: pp}))
		}},
		{"logs/source", func(ctx context.Context, s *store.Store, pp paygate.PageParams) (int, *string, error) {
			return pageOf(s.ListSystemLogs(ctx, paygate.SystemLogFilter{Source: "webhook", PageParams: pp}))
		}},
		{"logs/requestId", func(ctx context.Context, s *store.Store, pp paygate.PageParams) (int, *string, error) {
			return pageOf(s.ListSystemLogs(ctx, paygate.SystemLogFilter{RequestID: "req_s42", PageParams: pp}))
		}},
		{"logs/from-to", func(ctx context.Context, s *store.Store, pp paygate.PageParams) (int, *string, error) {
			return pageOf(s.ListSystemLogs(ctx, paygate.SystemLogFilter{From: day, To: day.Add(24 * time.Hour), PageParams: pp}))
		}},
	}
}

// deepCursor returns a cursor about 90% into a list (reached once with an
// offset, outside any timing), or nil when the list is short.
func deepCursor(ctx context.Context, s *store.Store, c listCase) (*string, error) {
	total, _, err := c.list(ctx, s, paygate.PageParams{Limit: 50})
	if err != nil || total < 200 {
		return nil, err
	}
	_, next, err := c.list(ctx, s, paygate.PageParams{Limit: 50, Offset: min(total*9/10, 999_000)})
	return next, err
}

// planNodes flattens an EXPLAIN (FORMAT JSON) plan.
func planNodes(node map[string]any, out *[]map[string]any) {
	*out = append(*out, node)
	if kids, ok := node["Plans"].([]any); ok {
		for _, k := range kids {
			planNodes(k.(map[string]any), out)
		}
	}
}

func TestListPlansUseIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool, rec := scaleStore(t, 20_000, 100_000)
	for _, c := range listCases() {
		cursor, err := deepCursor(ctx, s, c)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		pages := []paygate.PageParams{{Limit: 50}}
		if cursor != nil {
			pages = append(pages, paygate.PageParams{Limit: 50, Cursor: *cursor})
		}
		for _, pp := range pages {
			rec.reset()
			if _, _, err := c.list(ctx, s, pp); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			for _, q := range rec.reset() {
				if !strings.Contains(q.sql, "ORDER BY") || strings.HasPrefix(q.sql, "EXPLAIN") || strings.Contains(q.sql, "paygate_refunds") {
					continue // counts and the refunds of a page's payments
				}
				var plan []map[string]any
				if err := pool.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+q.sql, q.args...).Scan(&plan); err != nil {
					t.Fatalf("%s: explain: %v", c.name, err)
				}
				var nodes []map[string]any
				planNodes(plan[0]["Plan"].(map[string]any), &nodes)
				// An index gives the order; a sort is only fine over the few
				// rows a selective index lookup found.
				var kinds []string
				bad := false
				for _, n := range nodes {
					kind := n["Node Type"].(string)
					kinds = append(kinds, kind)
					switch kind {
					case "Seq Scan":
						bad = true
					case "Sort", "Incremental Sort":
						bad = bad || n["Plan Rows"].(float64) > 1000
					}
				}
				if bad {
					t.Errorf("%s (cursor %v): plan %v\n%s", c.name, pp.Cursor != "", kinds, q.sql)
				}
			}
		}
	}
}

// BenchmarkListsAtScale times the first page and a deep cursor page of every
// documented list and filter; each sub-benchmark reports its p99.
// PAYGATE_SCALE_PAYMENTS (default 1,000,000) sets the size; history is five
// times as many rows. Pages ask for an estimated total (total=estimate);
// PAYGATE_SCALE_TOTAL=exact times them with exact counts.
func BenchmarkListsAtScale(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("PAYGATE_SCALE_PAYMENTS")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	s, _, _ := scaleStore(b, n, 5*n)
	for _, c := range listCases() {
		cursor, err := deepCursor(ctx, s, c)
		if err != nil {
			b.Fatal(err)
		}
		for _, deep := range []bool{false, true} {
			if deep && cursor == nil {
				continue
			}
			estimate := os.Getenv("PAYGATE_SCALE_TOTAL") != "exact"
			pp := paygate.PageParams{Limit: 50, EstimateTotal: estimate}
			name := c.name + "/first"
			if deep {
				pp.Cursor, name = *cursor, c.name+"/deep"
			}
			b.Run(name, func(b *testing.B) {
				times := make([]time.Duration, 0, b.N)
				for range b.N {
					start := time.Now()
					if _, _, err := c.list(ctx, s, pp); err != nil {
						b.Fatal(err)
					}
					times = append(times, time.Since(start))
				}
				slices.Sort(times)
				b.ReportMetric(float64(times[len(times)*99/100].Microseconds())/1000, "p99-ms")
			})
		}
	}
	fmt.Fprintf(os.Stderr, "lists at scale: %d payments, %d history rows\n", n, 5*n)
}

// The hot transactions — a group-commit batch, a callback claim, a group
// of callback results — find their rows by keys, never by a scan, on the
// generic plans they run with (store.IndexPlans): checked on a store that
// has just started (a few rows: a scan would look cheaper, and a generic
// plan made then is kept) and on a large one.
func TestBatchPlansUseIndexes(t *testing.T) {
	t.Parallel()
	for _, n := range []int{200, 20_000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			t.Parallel()
			checkHotPlans(t, n)
		})
	}
}

func checkHotPlans(t *testing.T, n int) {
	ctx := context.Background()
	s, pool, rec := scaleStore(t, n, 10)
	// Give the payments Stripe ids, as their first events would.
	if _, err := pool.Exec(ctx, `INSERT INTO paygate_payment_refs SELECT 'pi_s' || g, 'pay_s' || lpad(g::text, 9, '0') FROM generate_series(1, $1) g`, n); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	touch := func(p *paygate.Payment) (paygate.EventOutcome, error) {
		if p == nil {
			return paygate.EventOutcome{Status: paygate.EventUnmatched}, nil
		}
		p.CallbackSeq++
		p.Status = paygate.StatusSucceeded
		// A history entry and a callback, so their inserts are checked too.
		return paygate.EventOutcome{Status: paygate.EventProcessed, History: []paygate.HistoryEntry{{PaymentID: p.ID,
			EventType: paygate.HistoryPaymentSucceeded, ToStatus: paygate.StatusSucceeded, Source: paygate.SourceWebhook, CreatedAt: t0,
			Callback: &paygate.Callback{ID: "cb_" + p.ID, PaymentID: p.ID, Sequence: 1_000_000, Action: "payment_succeeded",
				URL: "https://m.example/h", Payload: []byte(`{}`), Status: paygate.CallbackPending, NextAttemptAt: t0,
				CreatedAt: t0, UpdatedAt: t0}}}}, nil
	}
	var recs []*paygate.WebhookRecord
	for i := range 8 {
		refs := paygate.PaymentRefs{PaymentID: fmt.Sprintf("pay_s%09d", 100+i)}
		if i%2 == 1 {
			refs = paygate.PaymentRefs{PaymentIntentID: fmt.Sprintf("pi_s%d", 100+i)} // a Dashboard refund: no metadata
		}
		recs = append(recs, &paygate.WebhookRecord{Event: &paygate.WebhookEvent{ID: fmt.Sprintf("evt_plan%d", i), Type: "charge.refunded",
			CreatedAt: t0, ReceivedAt: t0, Payload: []byte(`{}`)}, Refs: refs, Apply: touch, ClaimToken: "tok", ClaimUntil: t0.Add(time.Minute)})
	}
	rec.reset()
	if err := s.RecordWebhookEvents(ctx, recs); err != nil {
		t.Fatal(err)
	}
	var results []callback.Result
	for _, r := range recs {
		if r.Err != nil || r.Stored == nil || r.Stored.Status != paygate.EventProcessed || len(r.Claimed) != 1 {
			t.Fatalf("record: %+v", r)
		}
		c := r.Claimed[0]
		c.Status = paygate.CallbackSucceeded
		results = append(results, callback.Result{Callback: &c, Attempt: paygate.CallbackAttempt{URL: c.URL, Attempt: 1, Success: true, CreatedAt: t0}})
	}
	rec.mu.Lock()
	trips := rec.roundTrips
	rec.mu.Unlock()
	if trips != 2 {
		t.Errorf("a batch took %d round trips, want 2 (BEGIN+lock+reads, writes+COMMIT)", trips)
	}
	if applied, err := s.RecordCallbackAttempts(ctx, results); err != nil || slices.Contains(applied, false) {
		t.Fatalf("record results: %v %v", applied, err)
	}
	if _, err := s.ClaimCallbacks(ctx, 10, time.Minute, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, q := range rec.reset() {
		sql := strings.TrimSpace(q.sql)
		if !strings.HasPrefix(sql, "SELECT") && !strings.HasPrefix(sql, "INSERT") && !strings.HasPrefix(sql, "UPDATE") || sql == store.IndexPlans {
			continue
		}
		// The events table grows from empty: a read of it risks a generic
		// plan made while it was tiny. Resends are found by its primary key
		// on insert instead.
		if strings.HasPrefix(sql, "SELECT") && strings.Contains(sql, "paygate_webhook_events") {
			t.Errorf("the batch reads the events table:\n%s", sql)
		}
		// The plan made as the transaction makes it: generic, with its
		// settings (the arguments' values play no part).
		args := ""
		if len(q.args) > 0 {
			args = "(" + strings.TrimSuffix(strings.Repeat("NULL, ", len(q.args)), ", ") + ")"
		}
		var plan []map[string]any
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, store.IndexPlans); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `PREPARE plan_check AS `+sql); err != nil {
				return err
			}
			if err := tx.QueryRow(ctx, `EXPLAIN (FORMAT JSON) EXECUTE plan_check`+args).Scan(&plan); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `DEALLOCATE plan_check`)
			return err
		})
		if err != nil {
			t.Fatalf("explain: %v\n%s", err, sql)
		}
		var nodes []map[string]any
		planNodes(plan[0]["Plan"].(map[string]any), &nodes)
		for _, n := range nodes {
			if n["Node Type"] == "Seq Scan" {
				t.Errorf("sequential scan of %v:\n%s", n["Relation Name"], sql)
			}
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("%d statements checked", checked)
	}
}
