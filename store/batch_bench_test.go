package store_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/internal/testenv"
	"github.com/numedapp/paygate/store"
)

// stripeEvents are the Stripe events of ../testdata/events (2.6–4.9 KB
// each, as Stripe sends them), without their trailing newline.
func stripeEvents(tb testing.TB) [][]byte {
	tb.Helper()
	files, err := filepath.Glob("../testdata/events/*.json")
	if err != nil || len(files) == 0 {
		tb.Fatalf("no events in ../testdata/events (%v)", err)
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, bytes.TrimSpace(b))
	}
	return out
}

// batchOf returns a batch of n events, the i-th for payment pays[i], each
// changing it and queueing a callback, with Stripe's payloads.
func batchOf(prefix string, pays []string, payloads [][]byte) []*paygate.WebhookRecord {
	recs := make([]*paygate.WebhookRecord, len(pays))
	for i, pay := range pays {
		evt := fmt.Sprintf("evt_%s_%d", prefix, i)
		recs[i] = &paygate.WebhookRecord{
			Event: &paygate.WebhookEvent{ID: evt, Type: "payment_intent.succeeded", CreatedAt: t0, ReceivedAt: t0,
				Payload: payloads[i%len(payloads)]},
			Refs: paygate.PaymentRefs{PaymentID: pay},
			Apply: func(p *paygate.Payment) (paygate.EventOutcome, error) {
				from := p.Status
				p.Status = map[paygate.Status]paygate.Status{paygate.StatusSucceeded: paygate.StatusFailed}[from]
				if p.Status == "" {
					p.Status = paygate.StatusSucceeded
				}
				p.CallbackSeq++
				return paygate.EventOutcome{Status: paygate.EventProcessed, History: []paygate.HistoryEntry{{PaymentID: p.ID,
					EventType: paygate.HistoryPaymentSucceeded, FromStatus: from, ToStatus: p.Status, Source: paygate.SourceWebhook,
					StripeEventID: evt, CreatedAt: t0,
					Callback: &paygate.Callback{ID: "cb_" + evt, PaymentID: p.ID, WebhookEventID: evt, Sequence: p.CallbackSeq,
						Action: "payment_succeeded", URL: "https://merchant.example/hooks",
						Payload: []byte(`{"event":"payment.succeeded","paymentId":"` + p.ID + `","amount":"10.00","currency":"usd"}`),
						Status:  paygate.CallbackPending, NextAttemptAt: t0, CreatedAt: t0, UpdatedAt: t0}}}}, nil
			},
		}
	}
	return recs
}

// TestBatchStoresPayloadsAsSent: the payloads of a batch (passed to pgx
// without a copy, in buffers sized up front) are stored byte for byte, on
// a connection that served other statements before and after.
func TestBatchStoresPayloadsAsSent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.NewPool(t)
	s := store.New(pool)
	payloads := stripeEvents(t)
	var pays []string
	for i := range 24 {
		id := fmt.Sprintf("pay_sz%d", i)
		if err := s.InsertPayment(ctx, newPayment(id, t0)); err != nil {
			t.Fatal(err)
		}
		pays = append(pays, id)
	}
	for round, n := range []int{1, 24, 3} {
		recs := batchOf(fmt.Sprintf("sz%d", round), pays[:n], payloads)
		if err := s.RecordWebhookEvents(ctx, recs); err != nil {
			t.Fatal(err)
		}
		for i, r := range recs {
			if r.Err != nil || r.Duplicate {
				t.Fatalf("round %d event %d: %+v", round, i, r)
			}
			var got []byte
			if err := pool.QueryRow(ctx, `SELECT payload::text FROM paygate_webhook_events WHERE id = $1`, r.Event.ID).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, payloads[i%len(payloads)]) {
				t.Errorf("round %d event %d: payload stored as %.80q…, want %.80q…", round, i, got, payloads[i%len(payloads)])
			}
		}
		if _, err := s.ListPayments(ctx, paygate.PaymentFilter{}); err != nil { // other statements on the pool's connections
			t.Fatal(err)
		}
	}
}

// BenchmarkRecordWebhookEvents records batches of 16 Stripe events (2.6–4.9
// KB payloads), each changing its payment and queueing a callback, as a
// busy paymentd's batches are. B/op is what one batch allocates.
func BenchmarkRecordWebhookEvents(b *testing.B) {
	ctx := context.Background()
	s := store.New(testenv.NewPool(b))
	payloads := stripeEvents(b)
	const size = 16
	pays := make([]string, 256)
	for i := range pays {
		pays[i] = fmt.Sprintf("pay_bench%d", i)
		if err := s.InsertPayment(ctx, newPayment(pays[i], t0)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		from := (i * size) % len(pays)
		recs := batchOf(fmt.Sprintf("b%d", i), pays[from:from+size], payloads)
		if err := s.RecordWebhookEvents(ctx, recs); err != nil {
			b.Fatal(err)
		}
		if recs[0].Err != nil || recs[0].Duplicate {
			b.Fatalf("%+v", recs[0])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*size), "µs/event")
}

// TestConcurrentBatchesStorePayloadsAsSent: batches recorded at once on
// the pool's connections, each in buffers kept from earlier batches, store
// every event's payload byte for byte (each payload is unique).
func TestConcurrentBatchesStorePayloadsAsSent(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // mixed-up messages may leave a connection waiting
	defer cancel()
	pool := testenv.NewPool(t)
	s := store.New(pool)
	payloads := stripeEvents(t)
	const workers, batches, size = 4, 6, 8
	want := map[string][]byte{}
	recsOf := make([][][]*paygate.WebhookRecord, workers)
	for w := range workers {
		var pays []string
		for i := range size {
			id := fmt.Sprintf("pay_cc%d_%d", w, i)
			if err := s.InsertPayment(ctx, newPayment(id, t0)); err != nil {
				t.Fatal(err)
			}
			pays = append(pays, id)
		}
		for b := range batches {
			recs := batchOf(fmt.Sprintf("cc%d_%d", w, b), pays, payloads)
			for _, r := range recs {
				r.Event.Payload = bytes.Replace(r.Event.Payload, []byte("{"), []byte(`{"paygateTest": "`+r.Event.ID+`", `), 1)
				want[r.Event.ID] = r.Event.Payload
			}
			recsOf[w] = append(recsOf[w], recs)
		}
	}
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for _, recs := range recsOf[w] {
				if err := s.RecordWebhookEvents(ctx, recs); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	rows, err := pool.Query(ctx, `SELECT id, payload::text FROM paygate_webhook_events WHERE id LIKE 'evt_cc%'`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	var id string
	var payload []byte
	if _, err := pgx.ForEachRow(rows, []any{&id, &payload}, func() error { got[id] = bytes.Clone(payload); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d events stored, want %d", len(got), len(want))
	}
	for id, p := range want {
		if !bytes.Equal(got[id], p) {
			t.Errorf("%s: payload stored as %.100q…, want %.100q…", id, got[id], p)
		}
	}
}

// TestBatchBuffersKeptOnlyWhenPgxLetGo: a batch's write buffer is kept for
// the next batch only when pgx has let go of it (after a flush of more
// than 1 KB), never while pgx may still write into it.
func TestBatchBuffersKeptOnlyWhenPgxLetGo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, err := testenv.NewPool(t).Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, c := range []struct {
		query string
		kept  bool
	}{
		{"SELECT length('" + strings.Repeat("x", 2000) + "')", true}, // flushed, more than 1 KB
		{"", false},         // nothing sent: pgx writes its next messages into it
		{"SELECT 1", false}, // flushed, 1 KB or less: pgx keeps it
		{"SELECT length('" + strings.Repeat("y", 2000) + "')", true},
	} {
		kept, err := store.ReleaseKeepsWriteBuffer(ctx, conn.Conn(), c.query)
		if err != nil {
			t.Fatal(err)
		}
		if kept != c.kept {
			t.Errorf("after %.20q: write buffer kept = %v, want %v", c.query, kept, c.kept)
		}
		var n int
		if err := conn.QueryRow(ctx, "SELECT 41 + 1").Scan(&n); err != nil || n != 42 {
			t.Fatalf("the connection after it: %d, %v", n, err)
		}
	}
}
