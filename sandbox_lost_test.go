package paygate_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/sandbox"
)

// Webhooks lost on the way (answered, never applied), then one
// reconciliation pass: paygate must end where Stripe is, for payments that
// are not final when reconciliation runs (docs/decisions.md,
// "Reconciliation"). Each case loses a chosen set of event types for the
// whole flow, deterministically, and runs twice: a whole pass (Events API
// and sweep), and the sweep alone (Stripe's events list failing), which
// must repair them by reading Stripe's objects.
func TestReconcileAfterLostWebhooks(t *testing.T) {
	t.Parallel()
	all := func(string) bool { return true }
	only := func(types ...string) func(string) bool {
		return func(typ string) bool {
			for _, x := range types {
				if x == typ {
					return true
				}
			}
			return false
		}
	}
	checkoutBody := `{"amount":"31.00","successUrl":"https://shop.example/ok","cancelUrl":"https://shop.example/no"}`
	for _, tc := range []struct {
		name string
		lose func(string) bool
		flow func(t *testing.T, e *sbEnv) string
		want paygate.Status
	}{
		{"intent paid, every webhook lost", all, func(t *testing.T, e *sbEnv) string {
			in := e.createIntent(t, `{"amount":"31.00"}`)
			if err := e.sb.PayIntent(in.PaymentIntentID, cardOK); err != nil {
				t.Fatal(err)
			}
			return in.PaymentID
		}, paygate.StatusSucceeded},
		{"intent declined, every webhook lost", all, func(t *testing.T, e *sbEnv) string {
			in := e.createIntent(t, `{"amount":"31.00"}`)
			_ = e.sb.PayIntent(in.PaymentIntentID, cardDecline)
			return in.PaymentID
		}, paygate.StatusFailed},
		{"checkout debit settles, every webhook but the first lost", only("charge.succeeded", "payment_intent.succeeded", "checkout.session.async_payment_succeeded"),
			func(t *testing.T, e *sbEnv) string {
				c := e.createCheckout(t, checkoutBody)
				if err := e.sb.PaySession(c.SessionID, debitOK); err != nil {
					t.Fatal(err)
				}
				e.flush()
				e.advance(73 * time.Hour)
				return c.PaymentID
			}, paygate.StatusSucceeded},
		{"checkout expired, every webhook lost", all, func(t *testing.T, e *sbEnv) string {
			c := e.createCheckout(t, checkoutBody)
			e.advance(25 * time.Hour)
			return c.PaymentID
		}, paygate.StatusExpired},
		// Was a defect (fixed: reconcile reads the session's
		// PaymentIntent): reconciliation repaired the status from the
		// Checkout Session but never learned the charge (a session names no charge,
		// and the PaymentIntent is not read), so chargeId stays "".
		{"checkout paid by card, every webhook lost", all, func(t *testing.T, e *sbEnv) string {
			c := e.createCheckout(t, checkoutBody)
			if err := e.sb.PaySession(c.SessionID, cardOK); err != nil {
				t.Fatal(err)
			}
			return c.PaymentID
		}, paygate.StatusSucceeded},
		{"link paid, every webhook lost", all, func(t *testing.T, e *sbEnv) string {
			p := e.createLink(t, `{"amount":"31.00"}`)
			if _, err := e.sb.PayLink(p.PaymentLinkID, cardOK); err != nil {
				t.Fatal(err)
			}
			return p.ID
		}, paygate.StatusSucceeded},
		// Was a defect (fixed: reconcile reads a complete, unpaid session
		// whose PaymentIntent is back at requires_payment_method as
		// async_payment_failed): with the async failure's session event lost, the
		// attempt's session stays "unpaid" (processing), which outranks
		// its failed charge; reconciliation reads the PaymentIntent
		// (requires_payment_method, the charge failed) and learns nothing
		// new. The payment stayed processing for good.
		{"checkout debit fails, async_payment_failed lost", only("checkout.session.async_payment_failed"), func(t *testing.T, e *sbEnv) string {
			c := e.createCheckout(t, checkoutBody)
			if err := e.sb.PaySession(c.SessionID, debitFail); err != nil {
				t.Fatal(err)
			}
			e.flush()
			e.advance(73 * time.Hour)
			return c.PaymentID
		}, paygate.StatusFailed},
		// Was a defect (fixed in state.go): reconciliation read the expired session and the
		// canceled PaymentIntent, but a canceled PaymentIntent's charge
		// (the declined one) was not recorded, so chargeId stayed "".
		{"checkout declined then expired, every webhook lost", all, func(t *testing.T, e *sbEnv) string {
			c := e.createCheckout(t, checkoutBody)
			_ = e.sb.PaySession(c.SessionID, cardDecline)
			e.advance(25 * time.Hour)
			return c.PaymentID
		}, paygate.StatusExpired},
		// Was a defect (fixed: reconcile reads a checkout payment's
		// session first): reconciliation of a checkout payment with a
		// PaymentIntent read the PaymentIntent (canceled), not the
		// Session (expired): the payment ended canceled, not expired.
		{"checkout declined then expired, expiry webhooks lost", only("checkout.session.expired", "payment_intent.canceled"), func(t *testing.T, e *sbEnv) string {
			c := e.createCheckout(t, checkoutBody)
			_ = e.sb.PaySession(c.SessionID, cardDecline)
			e.flush()
			e.advance(25 * time.Hour)
			return c.PaymentID
		}, paygate.StatusExpired},
	} {
		for _, sweepOnly := range []bool{false, true} {
			name := tc.name
			if sweepOnly {
				name += " (sweep only)"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				e := newSBEnv(t, sbOpts{lose: tc.lose})
				id := tc.flow(t, e)
				e.flush()
				if sweepOnly {
					// Stripe's events list fails: the pass goes on with
					// the sweep of non-final payments alone, which must
					// repair these by reading objects.
					e.sb.FailNext(sandbox.Fault{Path: "/v1/events", Method: "GET", Status: 500, Count: 1000})
				}
				res, err := e.gw.Reconcile(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if sweepOnly && res.EventsError == "" {
					t.Fatalf("the events list did not fail: %+v", res)
				}
				e.flush()
				got := e.checkTruth(t, id)
				if got.Status != tc.want {
					t.Errorf("status %s, want %s", got.Status, tc.want)
				}
				e.checkMerchant(t)
			})
		}
	}
}

// Was a defect (fixed in state.go, derive): a link declined in a first visit and paid in a second, whose
// success is known only from checkout.session.completed (the
// PaymentIntent's and charge's webhooks lost), shows the second attempt's
// paymentIntentId with the FIRST attempt's declined chargeId: derive keeps
// the old ChargeID when the owning attempt has no charge yet. The payment
// is succeeded, so reconciliation does not read it again, and the record
// names a charge of another PaymentIntent for good (refunds and disputes
// keyed by it go wrong).
func TestLinkChargeIDNeverFromAnotherAttempt(t *testing.T) {
	t.Parallel()
	e := newSBEnv(t, sbOpts{lose: func(typ string) bool {
		return typ == "payment_intent.succeeded" || typ == "charge.succeeded"
	}})
	p := e.createLink(t, `{"amount":"19.99"}`)
	if _, err := e.sb.PayLink(p.PaymentLinkID, cardDecline); err == nil {
		t.Fatal("the decline card paid")
	}
	e.flush()
	declined := e.payment(t, p.ID).ChargeID
	if _, err := e.sb.PayLink(p.PaymentLinkID, cardOK); err != nil {
		t.Fatal(err)
	}
	e.flush()
	// Before reconciliation (which may replay the lost events), from
	// the webhooks alone: the paid attempt's charge is not known yet.
	if before := e.payment(t, p.ID); before.Status != paygate.StatusSucceeded || before.ChargeID == declined {
		t.Errorf("before reconciliation: status %s, chargeId %q (the first attempt's declined charge is %s), paymentIntentId %s",
			before.Status, before.ChargeID, declined, before.PaymentIntentID)
	}
	if _, err := e.gw.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.flush()
	got := e.payment(t, p.ID)
	tr := e.sb.Truth(p.ID)
	if got.Status != paygate.StatusSucceeded || got.PaymentIntentID != tr.Succeeded {
		t.Fatalf("payment %+v; truth %+v", got.Payment, tr)
	}
	if declined == "" || got.ChargeID == declined {
		t.Errorf("chargeId %q is the declined charge of the first attempt (%s), not of %s (%s); history:\n%s",
			got.ChargeID, declined, got.PaymentIntentID, tr.PaymentIntents[1].LatestCharge, historyText(got.History))
	}
	if got.ChargeID != "" && !strings.HasPrefix(got.ChargeID, "ch_") {
		t.Errorf("chargeId %q", got.ChargeID)
	}
}
