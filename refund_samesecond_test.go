package paygate_test

import (
	"testing"
	"time"

	"github.com/numedapp/paygate/sandbox"
)

// A Dashboard refund of 5.00 is known from its charge.refunded alone (its
// refund.created is late), then the API refunds 10.00 in the same second
// (the clock is stopped here so that it is the same second every run).
// Stripe has refunded 15.00. inSnapshot takes the API refund, created in
// the snapshot's second, to be part of the snapshot (amount_refunded 500)
// that was taken before it existed: the 5.00 is "explained" by the 10.00
// and stops counting. The API refund's callback says amountRefunded 1000,
// the next charge.refunded (1500) brings the 5.00 back as a second
// refund_created with no id: the Dashboard refund is announced twice.
func TestAPIRefundInTheSecondOfADashboardRefund(t *testing.T) {
	t.Parallel()
	frozen := time.Now().Truncate(time.Second).Add(100 * time.Millisecond)
	h := holdWebhooks("refund.created")
	e := newSBEnv(t, sbOpts{lose: h.lose, sandbox: sandbox.Config{Now: func() time.Time { return frozen }}})
	in := e.paidIntent(t, "30.00", cardOK)
	if _, err := e.sb.Refund(in.PaymentIntentID, 500, ""); err != nil {
		t.Fatal(err)
	}
	e.flush()
	if p := e.payment(t, in.PaymentID); p.AmountRefunded != 500 {
		t.Fatalf("after the Dashboard refund: amountRefunded %d", p.AmountRefunded)
	}
	r := e.refund(t, `{"paymentId":"`+in.PaymentID+`","amount":"10.00"}`)
	if r.Amount != 1000 {
		t.Fatalf("refund %+v", r)
	}
	if p := e.payment(t, in.PaymentID); p.AmountRefunded != 1500 {
		t.Errorf("after the API refund: amountRefunded %d, Stripe has refunded 1500", p.AmountRefunded)
	}
	e.flush()
	h.release()
	e.redeliver(t, "refund.created")
	got := e.checkTruth(t, in.PaymentID)
	if got.AmountRefunded != 1500 {
		t.Fatalf("amountRefunded %d", got.AmountRefunded)
	}
	// The Dashboard refund is announced once without its id (from
	// charge.refunded), then once with it (refund_updated); the API
	// refund once.
	wantSeq(t, "callbacks", []string{"payment_succeeded", "refund_created", "refund_created", "refund_updated"}, e.actions(in.PaymentID))
	cbs, _ := e.m.of(in.PaymentID)
	for _, c := range cbs {
		if c.Data.RefundID != r.RefundID {
			continue
		}
		if c.Data.AmountRefunded == nil || *c.Data.AmountRefunded != 1500 {
			got := int64(-1)
			if c.Data.AmountRefunded != nil {
				got = *c.Data.AmountRefunded
			}
			t.Errorf("the API refund's callback: amountRefunded %d, want 1500", got)
		}
	}
	e.checkMerchant(t)
}
