package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/callback"
	"github.com/numedapp/paygate/internal/testenv"
	"github.com/numedapp/paygate/store"
)

// Group commit: several events in one transaction, each rolled back alone
// when it fails.
func TestRecordWebhookEventsBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.NewPool(t))
	for _, id := range []string{"pay_b1", "pay_b2"} {
		if err := s.InsertPayment(ctx, newPayment(id, t0)); err != nil {
			t.Fatal(err)
		}
	}
	ev := func(id string) *paygate.WebhookEvent {
		return &paygate.WebhookEvent{ID: id, Type: "payment_intent.succeeded", CreatedAt: t0, ReceivedAt: t0, Payload: []byte(`{}`)}
	}
	// pay_b1 gets a PaymentIntent id; a second event tries to give the same id to pay_b2.
	setIntent := func(pi string) func(p *paygate.Payment) (paygate.EventOutcome, error) {
		return func(p *paygate.Payment) (paygate.EventOutcome, error) {
			if p == nil {
				return paygate.EventOutcome{Status: paygate.EventUnmatched}, nil
			}
			p.PaymentIntentID, p.Status = pi, paygate.StatusSucceeded
			return paygate.EventOutcome{Status: paygate.EventProcessed, History: []paygate.HistoryEntry{{PaymentID: p.ID,
				EventType: paygate.HistoryPaymentSucceeded, FromStatus: paygate.StatusPending, ToStatus: paygate.StatusSucceeded,
				Source: paygate.SourceWebhook, CreatedAt: t0}}}, nil
		}
	}
	boom := errors.New("boom")
	recs := []*paygate.WebhookRecord{
		{Event: ev("evt_b1"), Refs: paygate.PaymentRefs{PaymentID: "pay_b1"}, Apply: setIntent("pi_b1")},
		{Event: ev("evt_b2"), Refs: paygate.PaymentRefs{PaymentID: "pay_b2"}, Apply: setIntent("pi_b1")}, // clash
		{Event: ev("evt_b3"), Refs: paygate.PaymentRefs{PaymentID: "pay_nope"}, Apply: setIntent("pi_x")},
		{Event: ev("evt_b4"), Refs: paygate.PaymentRefs{PaymentID: "pay_b2"}, Apply: func(*paygate.Payment) (paygate.EventOutcome, error) {
			return paygate.EventOutcome{}, boom
		}},
		{Event: ev("evt_b1"), Refs: paygate.PaymentRefs{PaymentID: "pay_b1"}, Apply: setIntent("pi_b1")}, // a resend in the same batch
	}
	if err := s.RecordWebhookEvents(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if r := recs[0]; r.Err != nil || r.Duplicate || r.Stored.Status != paygate.EventProcessed {
		t.Errorf("first: %+v", r)
	}
	if r := recs[1]; !errors.Is(r.Err, paygate.ErrStripeIDTaken) {
		t.Errorf("clash: %+v", r)
	}
	if r := recs[2]; r.Err != nil || r.Stored.Status != paygate.EventUnmatched {
		t.Errorf("unmatched: %+v", r)
	}
	if r := recs[3]; !errors.Is(r.Err, boom) {
		t.Errorf("apply error: %+v", r)
	}
	if r := recs[4]; r.Err != nil || !r.Duplicate || r.Stored.ReceivedCount != 2 {
		t.Errorf("resend: %+v", r.Stored)
	}
	// What committed: the first and the unmatched event, the first's change; nothing of the failed ones.
	for id, want := range map[string]bool{"evt_b1": true, "evt_b2": false, "evt_b3": true, "evt_b4": false} {
		_, err := s.GetWebhookEvent(ctx, id)
		if got := err == nil; got != want {
			t.Errorf("%s stored = %v, want %v (%v)", id, got, want, err)
		}
	}
	if p, _ := s.GetPayment(ctx, "pay_b1"); p.Status != paygate.StatusSucceeded || p.PaymentIntentID != "pi_b1" {
		t.Errorf("pay_b1 = %+v", p)
	}
	if p, _ := s.GetPayment(ctx, "pay_b2"); p.Status != paygate.StatusPending || p.PaymentIntentID != "" {
		t.Errorf("pay_b2 = %+v", p)
	}
	if h, _ := s.PaymentHistory(ctx, "pay_b2"); len(h) != 0 {
		t.Errorf("pay_b2 history = %+v", h)
	}
}

// Two batches locking the same payments in opposite orders do not deadlock
// each other into an error: records are applied in payment order, and a
// deadlock would retry the batch.
func TestRecordWebhookEventsConcurrentBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.NewPool(t))
	const payments = 20
	for i := range payments {
		if err := s.InsertPayment(ctx, newPayment(fmt.Sprintf("pay_c%02d", i), t0)); err != nil {
			t.Fatal(err)
		}
	}
	touch := func(p *paygate.Payment) (paygate.EventOutcome, error) {
		p.CallbackSeq++ // a change to write
		return paygate.EventOutcome{Status: paygate.EventProcessed}, nil
	}
	errs := make(chan error, 4)
	for w := range 4 {
		go func() {
			var recs []*paygate.WebhookRecord
			for i := range payments {
				k := i
				if w%2 == 1 {
					k = payments - 1 - i
				}
				recs = append(recs, &paygate.WebhookRecord{
					Event: &paygate.WebhookEvent{ID: fmt.Sprintf("evt_c%d_%d", w, k), Type: "charge.refunded", CreatedAt: t0, ReceivedAt: t0, Payload: []byte(`{}`)},
					Refs:  paygate.PaymentRefs{PaymentID: fmt.Sprintf("pay_c%02d", k)}, Apply: touch,
				})
			}
			err := s.RecordWebhookEvents(ctx, recs)
			for _, r := range recs {
				if err == nil && r.Err != nil {
					err = r.Err
				}
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i := range payments {
		if p, _ := s.GetPayment(ctx, fmt.Sprintf("pay_c%02d", i)); p.CallbackSeq != 4 {
			t.Fatalf("payment %d: %d changes, want 4", i, p.CallbackSeq)
		}
	}
}

// The attempts of a claimed batch are recorded in one transaction, each
// fenced by its own lease token.
func TestRecordCallbackAttemptsBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.NewPool(t)
	s := store.New(pool)
	if err := s.InsertPayment(ctx, newPayment("pay_cb1", t0)); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO paygate_callbacks (id, payment_id, webhook_event_id, sequence, event_type, action, url, payload,
			status, next_attempt_at, created_at, updated_at)
		SELECT 'cb_b' || g, 'pay_cb1', 'evt_b', g, 'x', 'payment_succeeded', 'https://m.example/h', '{}', 'pending', $1, $1, $1
		FROM generate_series(1, 3) g`, t0); err != nil {
		t.Fatal(err)
	}
	var claimed []paygate.Callback
	for range 3 { // one at a time: a payment's callbacks go in sequence
		c, err := s.ClaimCallbacks(ctx, 10, time.Minute, t0)
		if err != nil || len(c) != 1 {
			t.Fatalf("claim: %v %v", c, err)
		}
		c[0].Status = paygate.CallbackFailed // let the next one be claimed
		if _, err := pool.Exec(ctx, `UPDATE paygate_callbacks SET status = 'failed' WHERE id = $1`, c[0].ID); err != nil {
			t.Fatal(err)
		}
		claimed = append(claimed, c[0])
	}
	claimed[1].LeaseToken = "stale" // its lease went to another worker
	var results []callback.Result
	for i := range claimed {
		claimed[i].Status = paygate.CallbackSucceeded
		results = append(results, callback.Result{Callback: &claimed[i], Attempt: paygate.CallbackAttempt{URL: "https://m.example/h", Attempt: 1,
			Success: true, StatusCode: 200, CreatedAt: t0}})
	}
	applied, err := s.RecordCallbackAttempts(ctx, results)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]bool{true, false, true}, applied); diff != "" {
		t.Fatalf("applied (-want +got):\n%s", diff)
	}
	// Every attempt logged, in the batch's order; the new state stored only
	// under the right token.
	rows, err := pool.Query(ctx, `SELECT callback_id FROM paygate_callback_attempts ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	order, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{claimed[0].ID, claimed[1].ID, claimed[2].ID}, order); diff != "" {
		t.Fatalf("attempt rows (-want +got):\n%s", diff)
	}
	for i, want := range []string{"succeeded", "failed", "succeeded"} {
		var status string
		var leased bool
		if err := pool.QueryRow(ctx, `SELECT status, lease_token IS NOT NULL FROM paygate_callbacks WHERE id = $1`, claimed[i].ID).Scan(&status, &leased); err != nil {
			t.Fatal(err)
		}
		if status != want || leased != (i == 1) {
			t.Errorf("%s: status %s, leased %v; want %s, leased %v", claimed[i].ID, status, leased, want, i == 1)
		}
	}

	// The same callback twice in one batch (a late result and a new one):
	// only the first holds the lease.
	c, err := s.ClaimCallbacks(ctx, 10, time.Minute, t0.Add(time.Hour))
	if err == nil && len(c) == 0 {
		if _, err = pool.Exec(ctx, `UPDATE paygate_callbacks SET status = 'pending' WHERE id = $1`, claimed[2].ID); err == nil {
			c, err = s.ClaimCallbacks(ctx, 10, time.Minute, t0.Add(time.Hour))
		}
	}
	if err != nil || len(c) != 1 {
		t.Fatalf("claim: %v %v", c, err)
	}
	twice := []callback.Result{{Callback: &c[0], Attempt: paygate.CallbackAttempt{URL: "u", Attempt: 2, CreatedAt: t0}},
		{Callback: &c[0], Attempt: paygate.CallbackAttempt{URL: "u", Attempt: 2, CreatedAt: t0}}}
	if applied, err = s.RecordCallbackAttempts(ctx, twice); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]bool{true, false}, applied); diff != "" {
		t.Fatalf("applied (-want +got):\n%s", diff)
	}
}

// A record with a ClaimToken gets its callbacks inserted already claimed,
// where ClaimCallbacks would have claimed them: the payment's first in the
// batch, with no earlier callback pending. The others stay for the claim.
func TestRecordWebhookEventsClaimsCallbacks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.NewPool(t)
	s := store.New(pool)
	for _, id := range []string{"pay_c1", "pay_c2", "pay_c3"} {
		if err := s.InsertPayment(ctx, newPayment(id, t0)); err != nil {
			t.Fatal(err)
		}
	}
	// pay_c3 has a callback still pending from before.
	if _, err := pool.Exec(ctx, `INSERT INTO paygate_callbacks (id, payment_id, webhook_event_id, sequence, event_type, action, url, payload,
			status, next_attempt_at, created_at, updated_at) VALUES ('cb_old', 'pay_c3', 'evt_old', 1, 'x', 'payment_succeeded',
			'https://m.example/h', '{}', 'pending', $1, $1, $1)`, t0); err != nil {
		t.Fatal(err)
	}
	withCallback := func(id string) func(p *paygate.Payment) (paygate.EventOutcome, error) {
		return func(p *paygate.Payment) (paygate.EventOutcome, error) {
			p.CallbackSeq++
			p.Status = paygate.StatusSucceeded
			return paygate.EventOutcome{Status: paygate.EventProcessed, History: []paygate.HistoryEntry{{PaymentID: p.ID,
				EventType: paygate.HistoryPaymentSucceeded, ToStatus: paygate.StatusSucceeded, Source: paygate.SourceWebhook, CreatedAt: t0,
				Callback: &paygate.Callback{ID: id, PaymentID: p.ID, Sequence: p.CallbackSeq + 1, Action: "payment_succeeded",
					URL: "https://m.example/h", Payload: []byte(`{}`), Status: paygate.CallbackPending, NextAttemptAt: t0,
					CreatedAt: t0, UpdatedAt: t0}}}}, nil
		}
	}
	until := t0.Add(time.Minute)
	rec := func(evt, pay, cb, token string) *paygate.WebhookRecord {
		return &paygate.WebhookRecord{Event: &paygate.WebhookEvent{ID: evt, Type: "payment_intent.succeeded", CreatedAt: t0, ReceivedAt: t0,
			Payload: []byte(`{}`)}, Refs: paygate.PaymentRefs{PaymentID: pay}, Apply: withCallback(cb), ClaimToken: token, ClaimUntil: until}
	}
	recs := []*paygate.WebhookRecord{
		rec("evt_c1", "pay_c1", "cb_c1", "tok1"), // claimed
		rec("evt_c2", "pay_c1", "cb_c2", "tok2"), // the payment's second in the batch: left for the claim
		rec("evt_c3", "pay_c2", "cb_c3", ""),     // no token: left for the claim
		rec("evt_c4", "pay_c3", "cb_c4", "tok4"), // an earlier callback is pending: left for the claim
	}
	if err := s.RecordWebhookEvents(ctx, recs); err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]string{{"cb_c1"}, nil, nil, nil} {
		var got []string
		for _, c := range recs[i].Claimed {
			got = append(got, c.ID)
			if c.LeaseToken != recs[i].ClaimToken || c.Attempts != 1 || len(c.Payload) == 0 || c.URL == "" {
				t.Errorf("claimed %s: %+v", c.ID, c)
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("record %d claimed (-want +got):\n%s", i, diff)
		}
	}
	type row struct {
		ID, Token string
		Attempts  int
		Leased    bool
	}
	rows, err := pool.Query(ctx, `SELECT id, coalesce(lease_token, ''), attempts, lease_expires_at = $1 FROM paygate_callbacks
		WHERE id LIKE 'cb_c%' ORDER BY id`, until)
	if err != nil {
		t.Fatal(err)
	}
	var got []row
	for rows.Next() {
		var r row
		var leased *bool
		if err := rows.Scan(&r.ID, &r.Token, &r.Attempts, &leased); err != nil {
			t.Fatal(err)
		}
		r.Leased = leased != nil && *leased
		got = append(got, r)
	}
	want := []row{{"cb_c1", "tok1", 1, true}, {"cb_c2", "", 0, false}, {"cb_c3", "", 0, false}, {"cb_c4", "", 0, false}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("callback rows (-want +got):\n%s", diff)
	}
	// The claim does not take the claimed one again while its lease holds,
	// and fences a result under another token.
	due, err := s.ClaimCallbacks(ctx, 10, time.Minute, t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range due {
		if c.ID == "cb_c1" {
			t.Errorf("a callback claimed at birth was claimed again: %+v", c)
		}
	}
	c := recs[0].Claimed[0]
	c.Status = paygate.CallbackSucceeded
	if ok, err := s.RecordCallbackAttempt(ctx, &c, paygate.CallbackAttempt{URL: c.URL, Attempt: 1, Success: true, StatusCode: 200, CreatedAt: t0}); err != nil || !ok {
		t.Errorf("recording under the birth lease: applied %v, %v", ok, err)
	}
}
