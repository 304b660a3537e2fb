package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/internal/testenv"
	"github.com/numedapp/paygate/store"
)

// TestBatchClaimsOnlyAPaymentsFirstCallback: two events of one payment in
// one batch (payment_intent.succeeded and checkout.session.completed come
// together), the first recorded while the callback engine could not take
// a claim (its queue half full, its breaker open), the second with a claim
// token. The second callback must not be committed claimed — sent at once —
// while the first is pending: it would overtake it, and a receiver that
// drops callbacks older than one it has seen (API.md §4) would drop the
// first. Only the payment's first callback of a batch may go claimed.
func TestBatchClaimsOnlyAPaymentsFirstCallback(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.NewPool(t)
	s := store.New(pool)
	if err := s.InsertPayment(ctx, newPayment("pay_d1", t0)); err != nil {
		t.Fatal(err)
	}
	withCallback := func(id string) func(p *paygate.Payment) (paygate.EventOutcome, error) {
		return func(p *paygate.Payment) (paygate.EventOutcome, error) {
			p.CallbackSeq++
			p.Status = paygate.StatusSucceeded
			return paygate.EventOutcome{Status: paygate.EventProcessed, History: []paygate.HistoryEntry{{PaymentID: p.ID,
				EventType: paygate.HistoryPaymentSucceeded, ToStatus: paygate.StatusSucceeded, Source: paygate.SourceWebhook, CreatedAt: t0,
				Callback: &paygate.Callback{ID: id, PaymentID: p.ID, Sequence: p.CallbackSeq, Action: "payment_succeeded",
					URL: "https://m.example/h", Payload: []byte(`{}`), Status: paygate.CallbackPending, NextAttemptAt: t0,
					CreatedAt: t0, UpdatedAt: t0}}}}, nil
		}
	}
	until := t0.Add(time.Minute)
	rec := func(evt, cb, token string) *paygate.WebhookRecord {
		return &paygate.WebhookRecord{Event: &paygate.WebhookEvent{ID: evt, Type: "payment_intent.succeeded", CreatedAt: t0, ReceivedAt: t0,
			Payload: []byte(`{}`)}, Refs: paygate.PaymentRefs{PaymentID: "pay_d1"}, Apply: withCallback(cb), ClaimToken: token, ClaimUntil: until}
	}
	recs := []*paygate.WebhookRecord{
		rec("evt_d1", "cb_d1", ""),     // sequence 1: no token (engine busy at that moment)
		rec("evt_d2", "cb_d2", "tok2"), // sequence 2: a token, but not the payment's first callback in the batch
	}
	if err := s.RecordWebhookEvents(ctx, recs); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Event.ID, r.Err)
		}
	}
	if len(recs[1].Claimed) != 0 {
		t.Errorf("callback sequence 2 (%s) was committed claimed, to be sent now, while sequence 1 is pending and unsent", recs[1].Claimed[0].ID)
	}
	// The poll now claims sequence 1 while sequence 2 is already leased
	// (being sent): both in flight at once, in no guaranteed order.
	due, err := s.ClaimCallbacks(ctx, 10, time.Minute, t0)
	if err != nil {
		t.Fatal(err)
	}
	var leased2 bool
	if err := pool.QueryRow(ctx, `SELECT lease_token IS NOT NULL FROM paygate_callbacks WHERE id = 'cb_d2'`).Scan(&leased2); err != nil {
		t.Fatal(err)
	}
	if len(due) == 1 && due[0].ID == "cb_d1" && leased2 {
		t.Errorf("sequence 1 (cb_d1) and sequence 2 (cb_d2) of one payment are leased at the same time")
	}
}
