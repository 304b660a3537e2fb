package storetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/callback"
)

// testCallbackRelease: a claim given back (not sent) is due again at once,
// its attempt uncounted; a release under a lost lease changes nothing.
func testCallbackRelease(t *testing.T, s Store) {
	ctx := context.Background()
	ids := seedCallbacks(t, s, "pay_release", "http://127.0.0.1:1/cb", 1, T0)
	claimed, err := s.ClaimCallbacks(ctx, 10, time.Minute, T0)
	if err != nil || len(claimed) != 1 || claimed[0].Attempts != 1 {
		t.Fatalf("claim: %+v, %v", claimed, err)
	}
	stale := claimed[0]
	stale.LeaseToken = "not-the-token"
	if err := s.ReleaseCallbacks(ctx, []paygate.Callback{stale}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ClaimCallbacks(ctx, 10, time.Minute, T0); len(got) != 0 {
		t.Fatalf("a release under another token freed the lease: %+v", got)
	}
	if err := s.ReleaseCallbacks(ctx, claimed); err != nil {
		t.Fatal(err)
	}
	again, err := s.ClaimCallbacks(ctx, 10, time.Minute, T0)
	if err != nil || len(again) != 1 || again[0].ID != ids[0] || again[0].Attempts != 1 {
		t.Fatalf("after the release: %+v, %v (want it due again, attempts 1)", again, err)
	}
}

func testCallbackLease(t *testing.T, s Store) {
	ctx := context.Background()
	var ids []string // three payments, one callback each
	for i := range 3 {
		ids = append(ids, seedCallbacks(t, s, fmt.Sprintf("pay_lease%d", i), "http://127.0.0.1:1/cb", 1, T0)...)
	}
	if n, _ := s.CallbackQueueDepth(ctx); n != 3 {
		t.Fatalf("depth %d", n)
	}
	// Not due before its time.
	if got, err := s.ClaimCallbacks(ctx, 10, time.Minute, T0.Add(-time.Second)); err != nil || len(got) != 0 {
		t.Fatalf("claimed before due: %v %v", got, err)
	}
	// A limit below one claims nothing (SQLite's LIMIT -1 would claim all).
	for _, limit := range []int{0, -1} {
		if got, err := s.ClaimCallbacks(ctx, limit, time.Minute, T0); err != nil || len(got) != 0 {
			t.Fatalf("limit %d claimed %d: %v", limit, len(got), err)
		}
	}
	first, err := s.ClaimCallbacks(ctx, 2, time.Minute, T0)
	if err != nil || len(first) != 2 || first[0].ID != ids[0] || first[1].ID != ids[1] {
		t.Fatalf("claim 2: %+v %v", first, err)
	}
	if first[0].Attempts != 1 || first[0].LeaseToken == "" || first[0].Status != paygate.CallbackPending || !jsonEqual(first[0].Payload, []byte(`{"callback":"`+ids[0]+`"}`)) {
		t.Fatalf("claimed callback: %+v", first[0])
	}
	// Leased callbacks are not claimed again while the lease lives.
	rest, err := s.ClaimCallbacks(ctx, 10, time.Minute, T0.Add(30*time.Second))
	if err != nil || len(rest) != 1 || rest[0].ID != ids[2] {
		t.Fatalf("claim rest: %+v %v", rest, err)
	}
	// The first worker delivers the first callback.
	c := first[0]
	delivered := T0.Add(time.Second)
	c.Status, c.DeliveredAt = paygate.CallbackSucceeded, &delivered
	ok, err := s.RecordCallbackAttempt(ctx, &c, paygate.CallbackAttempt{URL: c.URL, Attempt: 1, Success: true, StatusCode: 200, DurationMs: 12, ResponseBody: "ok", CreatedAt: delivered})
	if err != nil || !ok {
		t.Fatalf("record: %v %v", ok, err)
	}
	got, _ := s.GetCallback(ctx, c.ID)
	if got.Status != paygate.CallbackSucceeded || got.DeliveredAt == nil || !got.DeliveredAt.Equal(delivered) || got.LeaseToken != "" {
		t.Fatalf("after delivery: %+v", got)
	}
	// The second worker dies; its lease expires and another takes over.
	stale := first[1]
	again, err := s.ClaimCallbacks(ctx, 10, time.Minute, T0.Add(61*time.Second))
	if err != nil || len(again) != 1 || again[0].ID != stale.ID || again[0].Attempts != 2 || again[0].LeaseToken == stale.LeaseToken {
		t.Fatalf("re-claim after lease expiry: %+v %v", again, err)
	}
	retryAt := T0.Add(time.Hour)
	next := again[0]
	next.NextAttemptAt, next.LastError = retryAt, "HTTP 500"
	if ok, err := s.RecordCallbackAttempt(ctx, &next, paygate.CallbackAttempt{URL: next.URL, Attempt: 2, StatusCode: 500, Error: "HTTP 500", ErrorClass: "http", CreatedAt: T0.Add(62 * time.Second)}); err != nil || !ok {
		t.Fatalf("record retry: %v %v", ok, err)
	}
	// The dead worker's late result is logged but fenced off.
	stale.Status, stale.LastError = paygate.CallbackFailed, "late failure"
	if ok, err := s.RecordCallbackAttempt(ctx, &stale, paygate.CallbackAttempt{URL: stale.URL, Attempt: 1, Error: "late", ErrorClass: "timeout", CreatedAt: T0.Add(63 * time.Second)}); err != nil || ok {
		t.Fatalf("stale record: applied %v, %v", ok, err)
	}
	got, _ = s.GetCallback(ctx, stale.ID)
	if got.Status != paygate.CallbackPending || got.LastError != "HTTP 500" || !got.NextAttemptAt.Equal(retryAt) {
		t.Fatalf("fence let a stale result through: %+v", got)
	}
	// Due again at its next attempt.
	if got, _ := s.ClaimCallbacks(ctx, 10, time.Minute, retryAt.Add(-time.Second)); len(got) != 1 || got[0].ID != ids[2] {
		t.Fatalf("only the third (lease expired) is due before the retry time: %+v", got)
	}
	if got, _ := s.ClaimCallbacks(ctx, 10, time.Minute, retryAt); len(got) != 1 || got[0].ID != stale.ID || got[0].Attempts != 3 {
		t.Fatalf("due at its retry time: %+v", got)
	}
	if n, _ := s.CallbackQueueDepth(ctx); n != 2 {
		t.Fatalf("depth %d, want 2", n)
	}
}

func testCallbackRetryAndLog(t *testing.T, s Store) {
	ctx := context.Background()
	ids := seedCallbacks(t, s, "pay_log", "http://127.0.0.1:1/cb", 12, T0)
	seedCallbacks(t, s, "pay_log2", "http://127.0.0.1:1/cb", 1, T0)
	// A payment's callbacks go out one at a time, in sequence: each claim
	// offers only the first pending callback of each payment.
	var order []string
	for round := 0; ; round++ {
		claimed, err := s.ClaimCallbacks(ctx, 100, time.Minute, T0)
		if err != nil {
			t.Fatal(err)
		}
		if len(claimed) == 0 {
			break
		}
		if want := map[bool]int{true: 2, false: 1}[round == 0]; len(claimed) != want {
			t.Fatalf("round %d: %d claimed, want %d (one per payment)", round, len(claimed), want)
		}
		for _, c := range claimed {
			i := len(order)
			order = append(order, c.ID)
			c.Status = paygate.CallbackFailed
			a := paygate.CallbackAttempt{URL: c.URL, Attempt: 1, Success: i%3 == 0, StatusCode: 410, CreatedAt: T0.Add(time.Duration(i) * time.Second)}
			if _, err := s.RecordCallbackAttempt(ctx, &c, a); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(order) != 13 || order[1] != "cb_log200000" {
		t.Fatalf("claimed in this order: %v", order)
	}
	var seq []string
	for _, id := range order {
		if id != "cb_log200000" {
			seq = append(seq, id)
		}
	}
	if d := diff(ids, seq); d != "" {
		t.Fatalf("pay_log's callbacks out of sequence: %s", d)
	}
	if n, _ := s.CallbackQueueDepth(ctx); n != 0 {
		t.Fatalf("depth %d", n)
	}
	// Retry makes a failed callback due again, keeping its id.
	r, err := s.RetryCallback(ctx, ids[4], T0.Add(time.Hour))
	if err != nil || r.ID != ids[4] || r.Status != paygate.CallbackPending || !r.NextAttemptAt.Equal(T0.Add(time.Hour)) {
		t.Fatalf("retry: %+v %v", r, err)
	}
	if got, _ := s.ClaimCallbacks(ctx, 10, time.Minute, T0.Add(time.Hour)); len(got) != 1 || got[0].ID != ids[4] || got[0].Attempts != 2 {
		t.Fatalf("claim after retry: %+v", got)
	}

	var seen []string
	f := paygate.CallbackFilter{PaymentID: "pay_log", PageParams: paygate.PageParams{Limit: 5}}
	for {
		pg, err := s.ListCallbackAttempts(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if pg.Total != 12 {
			t.Fatalf("total %d", pg.Total)
		}
		for _, a := range pg.Items {
			seen = append(seen, a.CallbackID)
		}
		if pg.NextCursor == nil {
			break
		}
		f.Cursor = *pg.NextCursor
	}
	if len(seen) != 12 || seen[0] != ids[11] || seen[11] != ids[0] {
		t.Fatalf("attempts newest first: %v", seen)
	}
	yes := true
	succ, err := s.ListCallbackAttempts(ctx, paygate.CallbackFilter{Success: &yes, PageParams: paygate.PageParams{Limit: 50}})
	if err != nil || succ.Total != 5 || !succ.Items[0].Success || succ.Items[0].StatusCode != 410 {
		t.Fatalf("success filter: %+v %v", succ, err)
	}
	byEvent, err := s.ListCallbackAttempts(ctx, paygate.CallbackFilter{WebhookEventID: "evt_" + ids[3], PageParams: paygate.PageParams{Limit: 50}})
	if err != nil || byEvent.Total != 1 || byEvent.Items[0].CallbackID != ids[3] || byEvent.Items[0].ID == "" {
		t.Fatalf("event filter: %+v %v", byEvent, err)
	}
}

// Two callback engines on one store deliver 120 callbacks, each exactly
// once, and one payment's callbacks in sequence.
func testTwoEngines(t *testing.T, s Store) {
	var mu sync.Mutex
	got := map[string]int{}
	var arrived []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		id := r.Header.Get("webhook-id")
		got[id]++
		arrived = append(arrived, id)
		mu.Unlock()
	}))
	defer srv.Close()
	var ids []string // 100 payments with one callback each, and one with 20 in sequence
	for i := range 100 {
		ids = append(ids, seedCallbacks(t, s, fmt.Sprintf("pay_two%d", i), srv.URL, 1, time.Now().Add(-time.Second))...)
	}
	inSeq := seedCallbacks(t, s, "pay_twoseq", srv.URL, 20, time.Now().Add(-time.Second))
	ids = append(ids, inSeq...)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	engines := make([]*callback.Engine, 2)
	for i := range engines {
		e, err := callback.New(callback.Config{Queue: s, Secrets: []string{"whsec_c2VjcmV0LWtleS1mb3ItcGF5Z2F0ZS10ZXN0cy0xMjM0NTY="}, Timeout: 2 * time.Second,
			Workers: 4, PollInterval: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		engines[i] = e
		wg.Add(1)
		go func() { defer wg.Done(); _ = e.Run(ctx) }()
	}
	defer func() { cancel(); wg.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		n, err := s.CallbackQueueDepth(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d callbacks still pending", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(ids) {
		t.Fatalf("%d distinct callbacks delivered, want %d", len(got), len(ids))
	}
	for _, id := range ids {
		if got[id] != 1 {
			t.Fatalf("%s delivered %d times", id, got[id])
		}
	}
	var seq []string
	for _, id := range arrived {
		if strings.HasPrefix(id, "cb_twoseq") {
			seq = append(seq, id)
		}
	}
	if d := diff(inSeq, seq); d != "" {
		t.Fatalf("one payment's callbacks arrived out of sequence: %s", d)
	}
}

// A store that can announce new callbacks (ListenCallbacks: LISTEN/NOTIFY
// on PostgreSQL, in-process on SQLite) wakes its listener when a committed
// change queued one, and stops when ctx ends.
func testListenCallbacks(t *testing.T, s Store) {
	l, ok := s.(interface {
		ListenCallbacks(ctx context.Context, wake func()) error
	})
	if !ok {
		t.Log("the store has no ListenCallbacks: engines rely on polling and OnCallbacksQueued")
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	woken := make(chan struct{}, 100)
	done := make(chan error, 1)
	go func() { done <- l.ListenCallbacks(ctx, func() { woken <- struct{}{} }) }()
	deadline := time.After(10 * time.Second)
	// The listener may start after the first callback is queued: queue
	// until one wake arrives.
	for i := 0; ; i++ {
		seedCallbacks(t, s, fmt.Sprintf("pay_listen%d", i), "http://127.0.0.1:1/cb", 1, T0)
		select {
		case <-woken:
		case <-time.After(200 * time.Millisecond):
			select {
			case <-deadline:
				t.Fatal("no wake after queuing callbacks")
			default:
			}
			continue
		}
		break
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ListenCallbacks returned %v after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ListenCallbacks did not return after cancel")
	}
}

func testIdempotency(t *testing.T, s Store) {
	ctx := context.Background()
	h1, h2 := []byte("hash-one-0123456789abcdef0123456"), []byte("hash-two-0123456789abcdef0123456")
	now := T0
	exp := now.Add(24 * time.Hour)
	stale := now.Add(-time.Minute)

	rec, started, err := s.BeginIdempotent(ctx, "key_a", "k1", h1, now, exp, stale)
	if err != nil || !started || !rec.InFlight || !rec.Generation.Equal(now) {
		t.Fatalf("first begin: %+v %v %v", rec, started, err)
	}
	// The same key in another scope is another record.
	if _, started, err := s.BeginIdempotent(ctx, "key_b", "k1", h1, now, exp, stale); err != nil || !started {
		t.Fatalf("other scope: %v %v", started, err)
	}
	// While in flight: the record, not started.
	rec, started, err = s.BeginIdempotent(ctx, "key_a", "k1", h1, now.Add(time.Second), exp, stale)
	if err != nil || started || !rec.InFlight || !bytes.Equal(rec.RequestHash, h1) {
		t.Fatalf("in flight: %+v %v %v", rec, started, err)
	}
	// Released: the same request takes over, keeping the generation; another request does not.
	if err := s.ReleaseIdempotent(ctx, "key_a", "k1"); err != nil {
		t.Fatal(err)
	}
	if rec, started, _ := s.BeginIdempotent(ctx, "key_a", "k1", h2, now.Add(2*time.Second), exp, stale); started || !bytes.Equal(rec.RequestHash, h1) {
		t.Fatalf("another request took a released key: %+v", rec)
	}
	rec, started, err = s.BeginIdempotent(ctx, "key_a", "k1", h1, now.Add(3*time.Second), exp.Add(time.Hour), stale)
	if err != nil || !started || !rec.Generation.Equal(now) {
		t.Fatalf("resume released: %+v %v %v", rec, started, err)
	}
	// Done: the response replays.
	if err := s.FinishIdempotent(ctx, "key_a", "k1", 201, []byte(`{"id":"pay_1"}`)); err != nil {
		t.Fatal(err)
	}
	rec, started, err = s.BeginIdempotent(ctx, "key_a", "k1", h1, now.Add(4*time.Second), exp, now.Add(time.Hour))
	if err != nil || started || rec.InFlight || rec.ResponseStatus != 201 || string(rec.ResponseBody) != `{"id":"pay_1"}` || !rec.Generation.Equal(now) {
		t.Fatalf("done: %+v %v %v", rec, started, err)
	}
	// Release does not undo a finished record.
	_ = s.ReleaseIdempotent(ctx, "key_a", "k1")
	if rec, _, _ := s.BeginIdempotent(ctx, "key_a", "k1", h1, now.Add(5*time.Second), exp, now.Add(time.Hour)); rec.InFlight || rec.ResponseStatus != 201 {
		t.Fatalf("release undid done: %+v", rec)
	}
	// A stale in-flight record of the same request is taken over.
	_, _, _ = s.BeginIdempotent(ctx, "key_a", "k2", h1, now, exp, stale)
	if _, started, _ := s.BeginIdempotent(ctx, "key_a", "k2", h1, now.Add(time.Second), exp, now.Add(-time.Second)); started {
		t.Fatal("fresh in-flight record taken over")
	}
	if rec, started, _ := s.BeginIdempotent(ctx, "key_a", "k2", h1, now.Add(2*time.Minute), exp, now.Add(time.Minute)); !started || !rec.Generation.Equal(now) {
		t.Fatalf("stale in-flight not taken over: %+v %v", rec, started)
	}
	// An expired record is a new generation, for any request.
	later := exp.Add(time.Second)
	rec, started, err = s.BeginIdempotent(ctx, "key_b", "k1", h2, later, later.Add(24*time.Hour), later.Add(-time.Minute))
	if err != nil || !started || !rec.Generation.Equal(later) {
		t.Fatalf("expired: %+v %v %v", rec, started, err)
	}
	// Purge deletes what expired by now.
	n, err := s.PurgeIdempotent(ctx, exp.Add(2*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("purge: %d %v, want the two records of key_a", n, err)
	}
	if _, started, _ := s.BeginIdempotent(ctx, "key_a", "k1", h2, exp.Add(3*time.Hour), exp.Add(27*time.Hour), exp); !started {
		t.Fatal("purged key still there")
	}
	if rec, started, _ := s.BeginIdempotent(ctx, "key_b", "k1", h1, exp.Add(3*time.Hour), exp.Add(27*time.Hour), exp); started || !bytes.Equal(rec.RequestHash, h2) {
		t.Fatalf("a record not yet expired was purged: %+v %v", rec, started)
	}
}

func testSystemLogs(t *testing.T, s Store) {
	ctx := context.Background()
	var rows []paygate.SystemLog
	for i := 0; i < 30; i++ {
		l := paygate.SystemLog{Level: "info", Source: "http", Message: "request", Method: "GET", Path: "/api/payments",
			StatusCode: 200, DurationMs: int64(i), CreatedAt: T0.Add(time.Duration(i) * time.Minute)}
		if i%10 == 0 {
			l.Level, l.Source, l.RequestID, l.Fields = "error", "payment", "req_"+string(rune('a'+i/10)), []byte(`{"paymentId":"pay_1"}`)
		}
		rows = append(rows, l)
	}
	if err := s.InsertSystemLogs(ctx, rows[:20]); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertSystemLogs(ctx, rows[20:]); err != nil {
		t.Fatal(err)
	}
	var seen []int64
	f := paygate.SystemLogFilter{PageParams: paygate.PageParams{Limit: 8}}
	for {
		pg, err := s.ListSystemLogs(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range pg.Items {
			seen = append(seen, l.DurationMs)
		}
		if pg.NextCursor == nil {
			break
		}
		f.Cursor = *pg.NextCursor
	}
	if len(seen) != 30 || seen[0] != 29 || seen[29] != 0 {
		t.Fatalf("newest first: %v", seen)
	}
	errs, err := s.ListSystemLogs(ctx, paygate.SystemLogFilter{Level: "error", Source: "payment", PageParams: paygate.PageParams{Limit: 50}})
	if err != nil || errs.Total != 3 || !jsonEqual(errs.Items[0].Fields, []byte(`{"paymentId":"pay_1"}`)) || errs.Items[0].ID == "" {
		t.Fatalf("level+source filter: %+v %v", errs, err)
	}
	byReq, err := s.ListSystemLogs(ctx, paygate.SystemLogFilter{RequestID: "req_b", PageParams: paygate.PageParams{Limit: 50}})
	if err != nil || byReq.Total != 1 || byReq.Items[0].DurationMs != 10 {
		t.Fatalf("requestId filter: %+v %v", byReq, err)
	}
	rng, err := s.ListSystemLogs(ctx, paygate.SystemLogFilter{From: T0.Add(5 * time.Minute), To: T0.Add(10 * time.Minute), PageParams: paygate.PageParams{Limit: 50}})
	if err != nil || rng.Total != 5 || rng.Items[0].DurationMs != 9 {
		t.Fatalf("[from, to): %+v %v", rng, err)
	}
	// The list is in time order, whatever order the rows were written in.
	late := paygate.SystemLog{Level: "warn", Source: "http", Message: "written late", CreatedAt: T0.Add(90 * time.Second)}
	if err := s.InsertSystemLogs(ctx, []paygate.SystemLog{late}); err != nil {
		t.Fatal(err)
	}
	var order []string
	f = paygate.SystemLogFilter{From: T0, To: T0.Add(3 * time.Minute), PageParams: paygate.PageParams{Limit: 2}}
	for {
		pg, err := s.ListSystemLogs(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range pg.Items {
			order = append(order, fmt.Sprintf("%s@%s", l.Message, l.CreatedAt.Sub(T0)))
		}
		if pg.NextCursor == nil {
			break
		}
		f.Cursor = *pg.NextCursor
	}
	if d := diff([]string{"request@2m0s", "written late@1m30s", "request@1m0s", "request@0s"}, order); d != "" {
		t.Fatalf("time order across cursor pages: %s", d)
	}
	// Retention: rows before the cut go, the rest stay.
	n, err := s.PurgeSystemLogs(ctx, T0.Add(12*time.Minute))
	if err != nil || n != 13 {
		t.Fatalf("purge: %d %v", n, err)
	}
	left, _ := s.ListSystemLogs(ctx, paygate.SystemLogFilter{PageParams: paygate.PageParams{Limit: 50}})
	if left.Total != 18 || left.Items[len(left.Items)-1].DurationMs != 12 {
		t.Fatalf("after purge: %d left", left.Total)
	}
}

// Totals are exact; with PageParams.EstimateTotal they are exact up to
// paygate.ExactTotalLimit, and past it the store may estimate, says so,
// and never reports less than the limit.
func testTotalsCapped(t *testing.T, s Store) {
	ctx := context.Background()
	rows := make([]paygate.SystemLog, paygate.ExactTotalLimit+5)
	for i := range rows {
		rows[i] = paygate.SystemLog{Level: "info", Source: "http", Message: "r", CreatedAt: T0.Add(time.Duration(i) * time.Millisecond)}
	}
	rows[0].Level = "error"
	if err := s.InsertSystemLogs(ctx, rows); err != nil {
		t.Fatal(err)
	}
	exact, err := s.ListSystemLogs(ctx, paygate.SystemLogFilter{PageParams: paygate.PageParams{Limit: 3}})
	if err != nil || exact.TotalEstimated || exact.Total != len(rows) || len(exact.Items) != 3 {
		t.Fatalf("exact by default: total %d, estimated %v, %v", exact.Total, exact.TotalEstimated, err)
	}
	pg, err := s.ListSystemLogs(ctx, paygate.SystemLogFilter{PageParams: paygate.PageParams{Limit: 3, EstimateTotal: true}})
	if err != nil || !pg.TotalEstimated || pg.Total <= paygate.ExactTotalLimit || len(pg.Items) != 3 {
		t.Fatalf("estimate past the limit: total %d, estimated %v, %v", pg.Total, pg.TotalEstimated, err)
	}
	one, err := s.ListSystemLogs(ctx, paygate.SystemLogFilter{Level: "error", PageParams: paygate.PageParams{Limit: 3, EstimateTotal: true}})
	if err != nil || one.TotalEstimated || one.Total != 1 {
		t.Fatalf("estimate under the limit: total %d, estimated %v, %v", one.Total, one.TotalEstimated, err)
	}
}
