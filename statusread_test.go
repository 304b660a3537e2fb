package paygate_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/numedapp/paygate"
)

// TestStatusReadSeesAFailedBankDebit: a Checkout payment by bank debit;
// only checkout.session.completed (unpaid) reached paygate, and the debit
// then failed. GET /api/payments/payment-intent/:id has Stripe's current
// state: a completed unpaid session whose PaymentIntent is back to
// requires_payment_method with a last_payment_error is a failed debit, as
// the reconciliation sweep infers. The read applied the PaymentIntent
// alone, which cannot tell that charge from a card declined before the
// debit, and left the payment processing.
func TestStatusReadSeesAFailedBankDebit(t *testing.T) {
	h := holdWebhooks("payment_intent.processing", "payment_intent.payment_failed", "checkout.session.async_payment_failed")
	e := newSBEnv(t, sbOpts{lose: h.lose})
	c := e.createCheckout(t, `{"amount":"120.00","successUrl":"https://shop.example/ok","cancelUrl":"https://shop.example/no"}`)
	if err := e.sb.PaySession(c.SessionID, debitFail); err != nil {
		t.Fatal(err)
	}
	e.flush()
	e.advance(73 * time.Hour) // the debit fails at Stripe
	pi := e.sb.SessionIntent(c.SessionID)
	var st paygate.IntentStatus
	e.call(t, "GET", "/api/payments/payment-intent/"+pi, "").into(t, 200, &st)
	if st.Status != "requires_payment_method" {
		t.Fatalf("setup: Stripe's PaymentIntent is %s", st.Status)
	}
	if st.PaymentStatus != paygate.StatusFailed {
		t.Errorf("GET payment-intent: Stripe status %s (the debit failed) but paymentStatus %s", st.Status, st.PaymentStatus)
	}
	if p := e.payment(t, c.PaymentID); p.Status != paygate.StatusFailed {
		t.Errorf("stored status after the status read: %s\n%s", p.Status, historyText(p.History))
	}
}

// TestStatusReadTakesTheLatestCharge: of several declined tries the charge
// shown is the PaymentIntent's latest_charge as of what is newest. A
// status read (and the sweep) has no event time; it counted as the oldest,
// so a second decline whose webhooks were lost never became the chargeId,
// though the read showed it as Stripe's latest_charge. A read is as of now.
func TestStatusReadTakesTheLatestCharge(t *testing.T) {
	var lose bool
	e := newSBEnv(t, sbOpts{lose: func(string) bool { return lose }})
	in := e.createIntent(t, `{"amount":"12.00"}`)
	if err := e.sb.PayIntent(in.PaymentIntentID, cardDecline); err == nil {
		t.Fatal("setup: the decline card paid")
	}
	e.flush()
	first := e.payment(t, in.PaymentID).ChargeID
	lose = true // the second try's webhooks are lost
	if err := e.sb.PayIntent(in.PaymentIntentID, "4000000000009995"); err == nil {
		t.Fatal("setup: the insufficient-funds card paid")
	}
	e.flush()
	latest := fmt.Sprint(e.sb.Object(in.PaymentIntentID)["latest_charge"])
	if latest == first || latest == "" {
		t.Fatalf("setup: latest_charge %q, first decline %q", latest, first)
	}
	e.advance(2 * time.Second) // a read of a later second (of one second, an event may be the newer)
	var st paygate.IntentStatus
	e.call(t, "GET", "/api/payments/payment-intent/"+in.PaymentIntentID, "").into(t, 200, &st)
	if p := e.payment(t, in.PaymentID); p.ChargeID != latest {
		t.Errorf("after the status read: chargeId %s (the first decline); Stripe's latest_charge is %s", p.ChargeID, latest)
	}
}
