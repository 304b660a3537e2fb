package store_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

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
