package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/numedapp/paygate"
)

// NewEvent returns a webhook event received at at.
func NewEvent(id, typ string, at time.Time) *paygate.WebhookEvent {
	return &paygate.WebhookEvent{ID: id, Type: typ, APIVersion: "2023-10-16", CreatedAt: at.Add(-time.Second), ReceivedAt: at,
		Payload: json.RawMessage(fmt.Sprintf(`{"id": %q,  "type":%q, "data":{"object":{}}}`, id, typ))}
}

// succeed is an apply that marks the payment succeeded and queues one
// history entry with a callback.
func succeed(eventID string, at time.Time) func(p *paygate.Payment) (paygate.EventOutcome, error) {
	return func(p *paygate.Payment) (paygate.EventOutcome, error) {
		if p == nil {
			return paygate.EventOutcome{Status: paygate.EventUnmatched}, nil
		}
		from := p.Status
		p.Status, p.UpdatedAt = paygate.StatusSucceeded, at
		p.Attempts = []paygate.Attempt{{PaymentIntentID: "pi_" + p.ID[4:], Charges: []paygate.ChargeState{{ID: "ch_" + p.ID[4:], Status: paygate.ChargeSucceeded}}}}
		return paygate.EventOutcome{Status: paygate.EventProcessed, History: []paygate.HistoryEntry{{
			PaymentID: p.ID, EventType: paygate.HistoryPaymentSucceeded, FromStatus: from, ToStatus: paygate.StatusSucceeded,
			StripeEventID: eventID, Source: paygate.SourceWebhook, CreatedAt: at,
			Callback: callbackFor(p, "cb_"+eventID[4:], "http://127.0.0.1:1/cb", at)}}}, nil
	}
}

func testWebhookEventOnce(t *testing.T, s Store) {
	ctx := context.Background()
	mustInsert(t, s, NewPayment("pay_w1", T0, func(p *paygate.Payment) { p.PaymentIntentID = "pi_w1" }))
	ev := NewEvent("evt_w1", "payment_intent.succeeded", T0.Add(time.Minute))
	stored, dup, err := s.RecordWebhookEvent(ctx, ev, paygate.PaymentRefs{PaymentIntentID: "pi_w1"}, succeed("evt_w1", T0.Add(time.Minute)))
	if err != nil || dup {
		t.Fatalf("first delivery: dup %v, %v", dup, err)
	}
	if stored.Status != paygate.EventProcessed || stored.PaymentID != "pay_w1" || stored.ReceivedCount != 1 || stored.ProcessedAt == nil {
		t.Fatalf("stored = %+v", stored)
	}
	p := mustGet(t, s, "pay_w1")
	if p.Status != paygate.StatusSucceeded || p.CallbackSeq != 1 {
		t.Fatalf("payment after event: %s, seq %d", p.Status, p.CallbackSeq)
	}
	if q, err := s.GetPaymentByStripeID(ctx, "ch_w1"); err != nil || q.ID != "pay_w1" {
		t.Fatalf("charge id of the event's change not indexed: %v", err)
	}
	if c, err := s.GetCallback(ctx, "cb_w1"); err != nil || c.Status != paygate.CallbackPending || c.Sequence != 1 || !jsonEqual(c.Payload, []byte(`{"callback":"cb_w1"}`)) {
		t.Fatalf("callback = %+v, %v", c, err)
	}

	// A resend only counts; apply is not called, nothing else changes.
	for i := 2; i <= 3; i++ {
		again := NewEvent("evt_w1", "payment_intent.succeeded", T0.Add(time.Hour))
		stored, dup, err = s.RecordWebhookEvent(ctx, again, paygate.PaymentRefs{PaymentIntentID: "pi_w1"},
			func(p *paygate.Payment) (paygate.EventOutcome, error) {
				// A store may call apply before it finds the event stored;
				// whatever apply says, a resend is only counted.
				if p != nil {
					p.Status = paygate.StatusFailed
				}
				return paygate.EventOutcome{}, errBoom
			})
		if err != nil || !dup || stored.ReceivedCount != i || stored.Status != paygate.EventProcessed || !stored.ReceivedAt.Equal(T0.Add(time.Minute)) {
			t.Fatalf("resend %d: dup %v, %+v, %v", i, dup, stored, err)
		}
	}
	got, err := s.GetWebhookEvent(ctx, "evt_w1")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Payload) != string(ev.Payload) {
		t.Fatalf("payload not kept exactly:\n got %s\nwant %s", got.Payload, ev.Payload)
	}
	if got.ReceivedCount != 3 || got.APIVersion != "2023-10-16" || !got.CreatedAt.Equal(ev.CreatedAt) || got.PaymentID != "pay_w1" {
		t.Fatalf("GetWebhookEvent = %+v", got)
	}
	if h, _ := s.PaymentHistory(ctx, "pay_w1"); len(h) != 1 {
		t.Fatalf("%d history entries, want 1", len(h))
	}
	if n, _ := s.CallbackQueueDepth(ctx); n != 1 {
		t.Fatalf("queue depth %d, want 1", n)
	}
}

func testWebhookOutcomes(t *testing.T, s Store) {
	ctx := context.Background()
	at := T0.Add(time.Minute)
	mustInsert(t, s, NewPayment("pay_o1", T0))
	mustInsert(t, s, NewPayment("pay_o2", T0, func(p *paygate.Payment) { p.Method, p.CheckoutSessionID = paygate.MethodCheckout, "cs_o2" }))

	// Refs find the payment by our id first, else by the first indexed Stripe id.
	var seen []string
	rec := func(id string, refs paygate.PaymentRefs) *paygate.WebhookEvent {
		t.Helper()
		st, _, err := s.RecordWebhookEvent(ctx, NewEvent(id, "checkout.session.completed", at), refs, func(p *paygate.Payment) (paygate.EventOutcome, error) {
			if p == nil {
				seen = append(seen, "")
				return paygate.EventOutcome{Status: paygate.EventUnmatched}, nil
			}
			seen = append(seen, p.ID)
			return paygate.EventOutcome{Status: paygate.EventProcessed}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	rec("evt_o1", paygate.PaymentRefs{PaymentID: "pay_o1", CheckoutSessionID: "cs_o2"})
	rec("evt_o2", paygate.PaymentRefs{PaymentID: "pay_gone", CheckoutSessionID: "cs_o2"})
	rec("evt_o3", paygate.PaymentRefs{PaymentIntentID: "pi_unknown", CheckoutSessionID: "cs_o2"})
	if st := rec("evt_o4", paygate.PaymentRefs{PaymentIntentID: "pi_unknown"}); st.Status != paygate.EventUnmatched || st.PaymentID != "" {
		t.Fatalf("unmatched event: %+v", st)
	}
	if d := diff([]string{"pay_o1", "pay_o2", "pay_o2", ""}, seen); d != "" {
		t.Fatalf("payments found: %s", d)
	}

	// With a nil apply the event keeps its status (ignored when empty).
	ig, dup, err := s.RecordWebhookEvent(ctx, NewEvent("evt_ignored", "customer.created", at), paygate.PaymentRefs{}, nil)
	if err != nil || dup || ig.Status != paygate.EventIgnored {
		t.Fatalf("nil apply: %+v %v %v", ig, dup, err)
	}
	bad := NewEvent("evt_failed", "payment_intent.succeeded", at)
	bad.Status, bad.Error = paygate.EventFailed, "unreadable object"
	if st, _, err := s.RecordWebhookEvent(ctx, bad, paygate.PaymentRefs{}, nil); err != nil || st.Status != paygate.EventFailed || st.Error != "unreadable object" {
		t.Fatalf("failed event: %+v %v", st, err)
	}
	if got, _ := s.GetWebhookEvent(ctx, "evt_failed"); got == nil || got.Error != "unreadable object" {
		t.Fatalf("failed event stored as %+v", got)
	}

	// An error from apply stores nothing: a later delivery is new.
	_, _, err = s.RecordWebhookEvent(ctx, NewEvent("evt_err", "payment_intent.succeeded", at), paygate.PaymentRefs{PaymentID: "pay_o1"},
		func(p *paygate.Payment) (paygate.EventOutcome, error) {
			p.Status = paygate.StatusFailed
			return paygate.EventOutcome{}, errBoom
		})
	if !errors.Is(err, errBoom) {
		t.Fatalf("apply error: %v", err)
	}
	if _, err := s.GetWebhookEvent(ctx, "evt_err"); !errors.Is(err, paygate.ErrNotFound) {
		t.Fatalf("event of a failed apply stored: %v", err)
	}
	if p := mustGet(t, s, "pay_o1"); p.Status != paygate.StatusPending {
		t.Fatalf("failed apply changed the payment: %s", p.Status)
	}
	st, dup, err := s.RecordWebhookEvent(ctx, NewEvent("evt_err", "payment_intent.succeeded", at), paygate.PaymentRefs{PaymentID: "pay_o1"}, succeed("evt_err", at))
	if err != nil || dup || st.Status != paygate.EventProcessed {
		t.Fatalf("redelivery after a failed apply: %+v %v %v", st, dup, err)
	}
}

func testWebhookStripeIDTaken(t *testing.T, s Store) {
	ctx := context.Background()
	mustInsert(t, s, NewPayment("pay_t1", T0, func(p *paygate.Payment) { p.PaymentIntentID = "pi_t1" }))
	mustInsert(t, s, NewPayment("pay_t2", T0, func(p *paygate.Payment) { p.PaymentIntentID = "pi_t2" }))
	_, _, err := s.RecordWebhookEvent(ctx, NewEvent("evt_t", "payment_intent.succeeded", T0), paygate.PaymentRefs{PaymentIntentID: "pi_t1"},
		func(p *paygate.Payment) (paygate.EventOutcome, error) {
			p.Status = paygate.StatusSucceeded
			p.Attempts = append(p.Attempts, paygate.Attempt{PaymentIntentID: "pi_t2"})
			return paygate.EventOutcome{Status: paygate.EventProcessed, History: []paygate.HistoryEntry{{PaymentID: p.ID,
				EventType: paygate.HistoryPaymentSucceeded, Source: paygate.SourceWebhook, CreatedAt: T0}}}, nil
		})
	if !errors.Is(err, paygate.ErrStripeIDTaken) {
		t.Fatalf("err = %v, want ErrStripeIDTaken", err)
	}
	if _, err := s.GetWebhookEvent(ctx, "evt_t"); !errors.Is(err, paygate.ErrNotFound) {
		t.Fatalf("event stored: %v", err)
	}
	if p := mustGet(t, s, "pay_t1"); p.Status != paygate.StatusPending || len(p.Attempts) != 0 {
		t.Fatalf("payment changed: %+v", p)
	}
}

// Twenty concurrent deliveries of one event: one applies it, the others
// count; the payment changes once.
func testConcurrentDuplicateEvents(t *testing.T, s Store) {
	ctx := context.Background()
	mustInsert(t, s, NewPayment("pay_cd", T0, func(p *paygate.Payment) { p.PaymentIntentID = "pi_cd" }))
	var wg sync.WaitGroup
	var fresh, dups atomic.Int64
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, dup, err := s.RecordWebhookEvent(ctx, NewEvent("evt_cd", "payment_intent.succeeded", T0), paygate.PaymentRefs{PaymentIntentID: "pi_cd"},
				succeed("evt_cd", T0))
			if err != nil {
				t.Errorf("delivery %d: %v", i, err)
				return
			}
			if dup {
				dups.Add(1)
			} else {
				fresh.Add(1)
			}
		}()
	}
	wg.Wait()
	ev, err := s.GetWebhookEvent(ctx, "evt_cd")
	if err != nil {
		t.Fatal(err)
	}
	h, _ := s.PaymentHistory(ctx, "pay_cd")
	p := mustGet(t, s, "pay_cd")
	if fresh.Load() != 1 || dups.Load() != 19 || ev.ReceivedCount != 20 || len(h) != 1 || p.CallbackSeq != 1 {
		t.Fatalf("%d new, %d duplicates, receivedCount %d, %d history entries, callback seq %d", fresh.Load(), dups.Load(), ev.ReceivedCount, len(h), p.CallbackSeq)
	}
	if n, _ := s.CallbackQueueDepth(ctx); n != 1 {
		t.Fatalf("%d callbacks queued, want 1", n)
	}
}

func testListWebhookEvents(t *testing.T, s Store) {
	ctx := context.Background()
	for i := 0; i < 25; i++ {
		typ := "payment_intent.succeeded"
		if i%5 == 0 {
			typ = "charge.refunded"
		}
		ev := NewEvent(fmt.Sprintf("evt_l%02d", i), typ, T0.Add(time.Duration(i)*time.Second))
		if i%2 == 0 {
			ev.Status = paygate.EventIgnored
		} else {
			ev.Status = paygate.EventUnmatched
		}
		if _, _, err := s.RecordWebhookEvent(ctx, ev, paygate.PaymentRefs{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	f := paygate.WebhookEventFilter{PageParams: paygate.PageParams{Limit: 10}}
	for {
		pg, err := s.ListWebhookEvents(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if pg.Total != 25 {
			t.Fatalf("total %d", pg.Total)
		}
		for _, e := range pg.Items {
			if e.Payload != nil {
				t.Fatalf("list carries payloads")
			}
			seen = append(seen, e.ID)
		}
		if pg.NextCursor == nil {
			break
		}
		f.Cursor = *pg.NextCursor
	}
	if len(seen) != 25 || seen[0] != "evt_l24" || seen[24] != "evt_l00" {
		t.Fatalf("cursor walk: %v", seen)
	}
	pg, err := s.ListWebhookEvents(ctx, paygate.WebhookEventFilter{Type: "charge.refunded", Status: paygate.EventIgnored, PageParams: paygate.PageParams{Limit: 10}})
	if err != nil || pg.Total != 3 || pg.Items[0].ID != "evt_l20" {
		t.Fatalf("type+status filter: %+v %v", pg, err)
	}
	off, err := s.ListWebhookEvents(ctx, paygate.WebhookEventFilter{PageParams: paygate.PageParams{Limit: 2, Offset: 23}})
	if err != nil || len(off.Items) != 2 || off.Items[1].ID != "evt_l00" || off.NextCursor != nil {
		t.Fatalf("last offset page: %+v %v", off, err)
	}
}

// A store that records events in batches (paygate.WebhookBatchStore, the
// gateway's group commit) keeps RecordWebhookEvent's guarantees: concurrent
// batches holding the same event store it once, and a record that fails is
// rolled back alone.
func testWebhookBatches(t *testing.T, s Store) {
	bs, ok := s.(paygate.WebhookBatchStore)
	if !ok {
		t.Log("the store has no RecordWebhookEvents: the gateway records events one by one")
		return
	}
	ctx := context.Background()
	for i := range 4 {
		mustInsert(t, s, NewPayment(fmt.Sprintf("pay_wb%d", i), T0, func(p *paygate.Payment) { p.PaymentIntentID = fmt.Sprintf("pi_wb%d", i) }))
	}
	var wg sync.WaitGroup
	var fresh, dups atomic.Int64
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var recs []*paygate.WebhookRecord
			for i := range 4 {
				k := (i + w) % 4 // batches meet the payments in different orders
				id := fmt.Sprintf("evt_wb%d", k)
				recs = append(recs, &paygate.WebhookRecord{Event: NewEvent(id, "payment_intent.succeeded", T0),
					Refs: paygate.PaymentRefs{PaymentIntentID: fmt.Sprintf("pi_wb%d", k)}, Apply: succeed(id, T0)})
			}
			recs = append(recs, &paygate.WebhookRecord{Event: NewEvent(fmt.Sprintf("evt_wbfail%d", w), "payment_intent.succeeded", T0),
				Refs: paygate.PaymentRefs{PaymentIntentID: "pi_wb0"}, Apply: func(*paygate.Payment) (paygate.EventOutcome, error) { return paygate.EventOutcome{}, errBoom }})
			if err := bs.RecordWebhookEvents(ctx, recs); err != nil {
				t.Errorf("batch %d: %v", w, err)
				return
			}
			for _, r := range recs[:4] {
				switch {
				case r.Err != nil:
					t.Errorf("batch %d, %s: %v", w, r.Event.ID, r.Err)
				case r.Duplicate:
					dups.Add(1)
				default:
					fresh.Add(1)
				}
			}
			if !errors.Is(recs[4].Err, errBoom) {
				t.Errorf("batch %d: the failing record: %v", w, recs[4].Err)
			}
		}()
	}
	wg.Wait()
	if fresh.Load() != 4 || dups.Load() != 28 {
		t.Fatalf("%d new, %d duplicates; want 4 and 28", fresh.Load(), dups.Load())
	}
	for i := range 4 {
		ev, err := s.GetWebhookEvent(ctx, fmt.Sprintf("evt_wb%d", i))
		h, _ := s.PaymentHistory(ctx, fmt.Sprintf("pay_wb%d", i))
		if err != nil || ev.ReceivedCount != 8 || len(h) != 1 {
			t.Fatalf("evt_wb%d: %v, receivedCount %v, %d history entries", i, err, ev, len(h))
		}
	}
	if pg, _ := s.ListWebhookEvents(ctx, paygate.WebhookEventFilter{PageParams: paygate.PageParams{Limit: 50}}); pg.Total != 4 {
		t.Fatalf("%d events stored, want 4 (failed records store nothing)", pg.Total)
	}
}

// testRematch: an event stored unmatched (its refs named no payment yet) is
// applied once its payment can be found, atomically, and only once.
func testRematch(t *testing.T, s Store) {
	ctx := context.Background()
	at, later := T0.Add(time.Minute), T0.Add(time.Hour)
	mustInsert(t, s, NewPayment("pay_rm", T0))
	refs := paygate.PaymentRefs{ChargeID: "ch_rm"}
	applied := 0
	apply := func(p *paygate.Payment) (paygate.EventOutcome, error) {
		if p == nil {
			return paygate.EventOutcome{Status: paygate.EventUnmatched}, nil
		}
		applied++
		p.AmountRefunded = 300
		return paygate.EventOutcome{Status: paygate.EventProcessed, History: []paygate.HistoryEntry{{PaymentID: p.ID,
			EventType: paygate.HistoryRefundCreated, Amount: 300, Currency: "usd", StripeEventID: "evt_rm",
			Source: paygate.SourceReconcile, CreatedAt: later}}}, nil
	}
	if st, _, err := s.RecordWebhookEvent(ctx, NewEvent("evt_rm", "charge.refunded", at), refs, apply); err != nil || st.Status != paygate.EventUnmatched {
		t.Fatalf("first delivery: %+v, %v", st, err)
	}
	// Still no payment for ch_rm: left as it is.
	if st, matched, err := s.RematchWebhookEvent(ctx, "evt_rm", refs, later, apply); err != nil || matched || st.Status != paygate.EventUnmatched || applied != 0 {
		t.Fatalf("rematch before the charge is known: %+v, %v, %v (applied %d)", st, matched, err, applied)
	}
	// The payment learns its charge.
	if _, err := s.UpdatePayment(ctx, "pay_rm", func(p *paygate.Payment) ([]paygate.HistoryEntry, error) {
		p.ChargeID = "ch_rm"
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	st, matched, err := s.RematchWebhookEvent(ctx, "evt_rm", refs, later, apply)
	if err != nil || !matched || st.Status != paygate.EventProcessed || st.PaymentID != "pay_rm" || st.ProcessedAt == nil || !st.ProcessedAt.Equal(later) {
		t.Fatalf("rematch: %+v, %v, %v", st, matched, err)
	}
	got, err := s.GetWebhookEvent(ctx, "evt_rm")
	if err != nil || got.Status != paygate.EventProcessed || got.PaymentID != "pay_rm" || got.ReceivedCount != 1 || !got.ReceivedAt.Equal(at) {
		t.Fatalf("stored after rematch: %+v, %v", got, err)
	}
	if p, err := s.GetPayment(ctx, "pay_rm"); err != nil || p.AmountRefunded != 300 {
		t.Fatalf("payment after rematch: %+v, %v", p, err)
	}
	if h, err := s.PaymentHistory(ctx, "pay_rm"); err != nil || len(h) != 1 || h[0].StripeEventID != "evt_rm" {
		t.Fatalf("history after rematch: %+v, %v", h, err)
	}
	// Applied once: a second rematch, or a resend, changes nothing.
	if st, matched, err := s.RematchWebhookEvent(ctx, "evt_rm", refs, later, apply); err != nil || matched || st.Status != paygate.EventProcessed || applied != 1 {
		t.Fatalf("second rematch: %+v, %v, %v (applied %d)", st, matched, err, applied)
	}
	if _, dup, err := s.RecordWebhookEvent(ctx, NewEvent("evt_rm", "charge.refunded", later), refs, apply); err != nil || !dup {
		t.Fatalf("resend after rematch: dup %v, %v", dup, err)
	}
	if h, err := s.PaymentHistory(ctx, "pay_rm"); err != nil || len(h) != 1 {
		t.Fatalf("history after the resend: %+v, %v", h, err)
	}
	if _, _, err := s.RematchWebhookEvent(ctx, "evt_nope", refs, later, apply); !errors.Is(err, paygate.ErrNotFound) {
		t.Fatalf("rematch of no event: %v, want ErrNotFound", err)
	}
}
