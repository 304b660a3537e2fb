package store_test

import (
	"context"
	"testing"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/internal/testenv"
	"github.com/numedapp/paygate/store"
)

// Group commit must record a batch as RecordWebhookEvent would, one event
// after the other. An event whose payment is named only by a Stripe id that
// an earlier event of the same batch gave the payment (a Dashboard refund or
// a dispute, which carry no paygate metadata, right after the
// payment_intent.succeeded that taught the payment its PaymentIntent and
// charge) is found when the two events are recorded one by one, but is
// stored "unmatched" — and so lost for good, Stripe got its 200 — when they
// share a batch.
func TestReviewBatchEventFindsPaymentByIDLearnedEarlierInBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.NewPool(t))
	for _, id := range []string{"pay_seq", "pay_bat"} {
		if err := s.InsertPayment(ctx, newPayment(id, t0, func(p *paygate.Payment) { p.Method = paygate.MethodCheckout })); err != nil {
			t.Fatal(err)
		}
	}
	ev := func(id, typ string) *paygate.WebhookEvent {
		return &paygate.WebhookEvent{ID: id, Type: typ, CreatedAt: t0, ReceivedAt: t0, Payload: []byte(`{}`)}
	}
	// payment_intent.succeeded (metadata names the payment) records the
	// PaymentIntent and its charge on the payment.
	succeeded := func(pi, ch string) func(p *paygate.Payment) (paygate.EventOutcome, error) {
		return func(p *paygate.Payment) (paygate.EventOutcome, error) {
			if p == nil {
				return paygate.EventOutcome{Status: paygate.EventUnmatched}, nil
			}
			p.PaymentIntentID, p.ChargeID, p.Status = pi, ch, paygate.StatusSucceeded
			return paygate.EventOutcome{Status: paygate.EventProcessed, History: []paygate.HistoryEntry{{PaymentID: p.ID,
				EventType: paygate.HistoryPaymentSucceeded, FromStatus: paygate.StatusPending, ToStatus: paygate.StatusSucceeded,
				Source: paygate.SourceWebhook, CreatedAt: t0}}}, nil
		}
	}
	// refund.created of a Dashboard refund: named by its charge and PaymentIntent only.
	refunded := func(p *paygate.Payment) (paygate.EventOutcome, error) {
		if p == nil {
			return paygate.EventOutcome{Status: paygate.EventUnmatched}, nil
		}
		p.Refunds = append(p.Refunds, paygate.Refund{ID: "rf_" + p.ID, StripeRefundID: "re_" + p.ID, Amount: 500,
			Status: paygate.RefundSucceeded, CreatedAt: t0, UpdatedAt: t0})
		p.AmountRefunded = 500
		return paygate.EventOutcome{Status: paygate.EventProcessed}, nil
	}

	// One by one: the refund finds its payment.
	if _, _, err := s.RecordWebhookEvent(ctx, ev("evt_seq1", "payment_intent.succeeded"), paygate.PaymentRefs{PaymentID: "pay_seq", PaymentIntentID: "pi_seq", ChargeID: "ch_seq"}, succeeded("pi_seq", "ch_seq")); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.RecordWebhookEvent(ctx, ev("evt_seq2", "refund.created"), paygate.PaymentRefs{PaymentIntentID: "pi_seq", ChargeID: "ch_seq"}, refunded)
	if err != nil || got.Status != paygate.EventProcessed {
		t.Fatalf("one by one: %+v %v", got, err)
	}

	// The same two events in one batch, in the same order.
	recs := []*paygate.WebhookRecord{
		{Event: ev("evt_bat1", "payment_intent.succeeded"), Refs: paygate.PaymentRefs{PaymentID: "pay_bat", PaymentIntentID: "pi_bat", ChargeID: "ch_bat"}, Apply: succeeded("pi_bat", "ch_bat")},
		{Event: ev("evt_bat2", "refund.created"), Refs: paygate.PaymentRefs{PaymentIntentID: "pi_bat", ChargeID: "ch_bat"}, Apply: refunded},
	}
	if err := s.RecordWebhookEvents(ctx, recs); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if r := recs[1].Stored; r.Status != paygate.EventProcessed || r.PaymentID != "pay_bat" {
		t.Errorf("in a batch the refund event is %s (payment %q), one by one it is processed", r.Status, r.PaymentID)
	}
	if p, _ := s.GetPayment(ctx, "pay_bat"); p.AmountRefunded != 500 {
		t.Errorf("pay_bat: refunded %d, want 500 (the refund is lost)", p.AmountRefunded)
	}
}
