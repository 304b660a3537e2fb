// Package storetest is the conformance suite of paygate.Store: every Store
// implementation (the PostgreSQL store, the embedded SQLite store, or one
// of your own) runs it from a test:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Store { return newEmptyMigratedStore(t) })
//	}
//
// It checks each method's contract, the concurrency guarantees money
// depends on (concurrent refunds never over-refund, concurrent deliveries
// of one webhook event are stored once, two callback engines deliver each
// callback once), pagination with cursors, filters, and retention.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/callback"
)

// Store is what the suite tests: a paygate.Store that is also the callback
// outbox of callback.Engine.
type Store interface {
	paygate.Store
	paygate.EventRematcher
	callback.Queue
	callback.ReleasingQueue
	// GetCallback returns one callback, or an error wrapping ErrNotFound.
	GetCallback(ctx context.Context, id string) (*paygate.Callback, error)
}

// Run runs the suite. newStore returns an empty, migrated store of the test's
// own (and cleans it up with t.Cleanup); the subtests run in parallel.
func Run(t *testing.T, newStore func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"InsertGetUpdate", testInsertGetUpdate},
		{"NotFound", testNotFound},
		{"InsertConflict", testInsertConflict},
		{"DeleteOnlyUnattached", testDeleteOnlyUnattached},
		{"StripeIDs", testStripeIDs},
		{"ListPaymentsFiltersAndPaging", testListPayments},
		{"ListHistoryPaging", testListHistory},
		{"ListDefaultPaging", testListDefaultPaging},
		{"ConcurrentRefundsNeverOverRefund", testConcurrentRefunds},
		{"TimestampsMicroseconds", testTimestamps},
		{"PaymentsToReconcile", testPaymentsToReconcile},
		{"PaymentsToReconcileKeyset", testPaymentsToReconcileKeyset},
		{"StateAndLeases", testStateAndLeases},
		{"WebhookEventOnce", testWebhookEventOnce},
		{"WebhookEventOutcomes", testWebhookOutcomes},
		{"RematchUnmatchedEvent", testRematch},
		{"WebhookEventStripeIDTaken", testWebhookStripeIDTaken},
		{"ConcurrentDuplicateEvents", testConcurrentDuplicateEvents},
		{"WebhookBatches", testWebhookBatches},
		{"ListWebhookEvents", testListWebhookEvents},
		{"CallbackLeaseAndFence", testCallbackLease},
		{"CallbackRelease", testCallbackRelease},
		{"CallbackRetryAndLog", testCallbackRetryAndLog},
		{"TwoEnginesDeliverOnce", testTwoEngines},
		{"ListenCallbacksWakes", testListenCallbacks},
		{"Idempotency", testIdempotency},
		{"SystemLogs", testSystemLogs},
		{"TotalsCapped", testTotalsCapped},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

// T0 is the suite's clock origin: microsecond precision, as stores keep it.
var T0 = time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)

// NewPayment returns a pending intent payment created at at.
func NewPayment(id string, at time.Time, mut ...func(*paygate.Payment)) *paygate.Payment {
	p := &paygate.Payment{
		ID: id, Method: paygate.MethodIntent, Status: paygate.StatusPending, Amount: 1999, Currency: "usd",
		ProductName: "Thing", Quantity: 1, Metadata: map[string]string{"orderId": "42"}, Refunds: []paygate.Refund{},
		CreatedAt: at, UpdatedAt: at,
	}
	for _, f := range mut {
		f(p)
	}
	return p
}

func mustInsert(t *testing.T, s Store, p *paygate.Payment) {
	t.Helper()
	if err := s.InsertPayment(context.Background(), p); err != nil {
		t.Fatalf("InsertPayment(%s): %v", p.ID, err)
	}
}

func mustGet(t *testing.T, s Store, id string) *paygate.Payment {
	t.Helper()
	p, err := s.GetPayment(context.Background(), id)
	if err != nil {
		t.Fatalf("GetPayment(%s): %v", id, err)
	}
	return p
}

// jsonEqual compares two JSON texts by value (PostgreSQL's jsonb rewrites
// whitespace and key order).
func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// diff compares by value; an empty slice or map equals a nil one (stores
// may return either for "none").
func diff(want, got any) string {
	return cmp.Diff(want, got, cmpopts.EquateEmpty())
}

// callbackFor returns a pending callback, due at at, to queue with a
// history entry of p.
func callbackFor(p *paygate.Payment, id, url string, at time.Time) *paygate.Callback {
	p.CallbackSeq++
	return &paygate.Callback{ID: id, PaymentID: p.ID, WebhookEventID: "evt_" + id, Sequence: p.CallbackSeq,
		EventType: "payment_intent.succeeded", Action: "payment_succeeded", URL: url,
		Payload: json.RawMessage(fmt.Sprintf(`{"callback":%q}`, id)), Status: paygate.CallbackPending,
		NextAttemptAt: at, CreatedAt: at, UpdatedAt: at}
}

// seedCallbacks queues n callbacks to url, due at at, on a new payment, through
// UpdatePayment, and returns their ids in order.
func seedCallbacks(t *testing.T, s Store, pid, url string, n int, at time.Time) []string {
	t.Helper()
	ctx := context.Background()
	mustInsert(t, s, NewPayment(pid, at))
	var ids []string
	name := func(i int) string { return fmt.Sprintf("cb_%s%05d", pid[4:], i) }
	for start := 0; start < n; start += 100 {
		end := min(n, start+100)
		_, err := s.UpdatePayment(ctx, pid, func(p *paygate.Payment) ([]paygate.HistoryEntry, error) {
			var hist []paygate.HistoryEntry
			for i := start; i < end; i++ {
				hist = append(hist, paygate.HistoryEntry{PaymentID: p.ID, EventType: paygate.HistoryPaymentSucceeded,
					Source: paygate.SourceWebhook, CreatedAt: at, Callback: callbackFor(p, name(i), url, at)})
			}
			return hist, nil
		})
		if err != nil {
			t.Fatalf("seed callbacks: %v", err)
		}
		for i := start; i < end; i++ {
			ids = append(ids, name(i))
		}
	}
	return ids[:n]
}

var errBoom = errors.New("boom")
