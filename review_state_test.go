package paygate

import (
	"encoding/json"
	"slices"
	"testing"
)

// Adversarial review of the pure state machine. Each test names the defect
// it reproduces; see the review report for the diagnosis.

func histTypes(h []HistoryEntry) []HistoryType {
	var out []HistoryType
	for _, e := range h {
		out = append(out, e.EventType)
	}
	return out
}

// A Dashboard refund first seen only on charge.refunded is announced as
// refund_created (no id). When its first own event is refund.failed, that
// must be announced as the refund failing, not as a second refund_created.
func TestReviewFailedRefundAnnouncedFromChargeIsNotCreatedTwice(t *testing.T) {
	p := newTestPayment(MethodIntent)
	applyEvent(p, piEv("succeeded", "pi_1", "ch_1"), SourceWebhook, at(1))
	h1 := applyEvent(p, chargeRefundedEv("ch_1", "pi_1", 1000, 10), SourceWebhook, at(10))
	if got := histTypes(h1); len(got) != 1 || got[0] != HistoryRefundCreated {
		t.Fatalf("charge.refunded wrote %v", got)
	}
	failed := refundEv("refund.failed", "re_1", "ch_1", "pi_1", "failed", 1000, 5, "")
	failed.created = at(20) // it fails after the snapshot that counted it
	h2 := applyEvent(p, failed, SourceWebhook, at(20))
	if p.AmountRefunded != 0 || p.Status != StatusSucceeded {
		t.Fatalf("after failure: %s %d", p.Status, p.AmountRefunded)
	}
	for _, h := range h2 {
		if h.EventType == HistoryRefundCreated {
			t.Errorf("the failure of the refund already announced is a second refund_created (history %v, data %s); want refund_failed", histTypes(h2), h.Data)
		}
	}
}

// A Dashboard refund created after the last charge.refunded snapshot is a
// new refund: refund_created, not refund_updated because some other
// unexplained amount was announced before.
func TestReviewNewRefundAfterSnapshotIsAnnouncedAsCreated(t *testing.T) {
	p := newTestPayment(MethodIntent)
	applyEvent(p, piEv("succeeded", "pi_1", "ch_1"), SourceWebhook, at(1))
	applyEvent(p, chargeRefundedEv("ch_1", "pi_1", 700, 10), SourceWebhook, at(10)) // refund X (700), not known one by one
	h := applyEvent(p, refundEv("refund.created", "re_y", "ch_1", "pi_1", "succeeded", 300, 20, ""), SourceWebhook, at(20))
	if p.AmountRefunded != 1000 || p.Status != StatusRefunded {
		t.Fatalf("after re_y: %s %d", p.Status, p.AmountRefunded)
	}
	if got := histTypes(h); len(got) != 1 || got[0] != HistoryRefundCreated {
		t.Errorf("a new refund of 300 (created after the snapshot) wrote %v; want [refund_created] (its callback action is refund_updated, a merchant listening for refund_created never learns of it)", got)
	}
}

// A refund reserved through the API after Stripe's snapshot cannot be part
// of that snapshot: the refund known only from charge.refunded still counts.
func TestReviewReservationIsNotInAnOlderSnapshot(t *testing.T) {
	p := newTestPayment(MethodIntent)
	applyEvent(p, piEv("succeeded", "pi_1", "ch_1"), SourceWebhook, at(1))
	applyEvent(p, chargeRefundedEv("ch_1", "pi_1", 300, 10), SourceWebhook, at(10)) // Dashboard refund, 300
	if p.AmountRefunded != 300 {
		t.Fatalf("after the Dashboard refund: %d", p.AmountRefunded)
	}
	// The API reserves 500 of the 700 that remain (as CreateRefund does).
	p.Refunds = append(p.Refunds, apiRefund("rf_api", 500, 50))
	p.derive()
	if p.AmountRefunded != 800 {
		t.Errorf("300 refunded on the Dashboard + 500 reserved = %d refunded; want 800 (remaining shown %d, so the guard lets a further %d through)",
			p.AmountRefunded, p.Amount-p.AmountRefunded, p.Amount-p.AmountRefunded)
	}
}

// Stripe's snapshot going down (an unknown refund failed, a known one
// made since) must not be written as a refund_created of a negative amount.
func TestReviewSnapshotGoingDownIsNotANegativeRefundCreated(t *testing.T) {
	p := newTestPayment(MethodIntent)
	applyEvent(p, piEv("succeeded", "pi_1", "ch_1"), SourceWebhook, at(1))
	applyEvent(p, chargeRefundedEv("ch_1", "pi_1", 500, 6), SourceWebhook, at(6))                                      // X 500, unknown
	applyEvent(p, refundEv("refund.created", "re_2", "ch_1", "pi_1", "succeeded", 200, 10, ""), SourceWebhook, at(10)) // re_2 200
	// X failed at Stripe (its own event is late); the snapshot after re_2 holds only re_2.
	h := applyEvent(p, chargeRefundedEv("ch_1", "pi_1", 200, 10), SourceWebhook, at(11))
	if p.AmountRefunded != 200 {
		t.Fatalf("amount refunded %d, want 200", p.AmountRefunded)
	}
	for _, e := range h {
		if e.Amount < 0 || e.EventType == HistoryRefundCreated {
			t.Errorf("the unexplained refund going away is written as %s of amount %d (data %s)", e.EventType, e.Amount, e.Data)
		}
	}
}

// Events of API versions before 2022-11-15 (which the gateway accepts)
// have no latest_charge on PaymentIntents: the charge is in charges.data. A
// bank debit that was processing and then failed must end failed, as at
// Stripe, not stay processing forever.
func TestReviewOldAPIVersionIntentWithoutLatestChargeFails(t *testing.T) {
	parse := func(typ, js string) eventObject {
		var o stripeObject
		if err := json.Unmarshal([]byte(js), &o); err != nil {
			t.Fatal(err)
		}
		return eventObject{typ: typ, created: at(1), obj: &o}
	}
	p := newTestPayment(MethodIntent)
	applyEvent(p, parse("payment_intent.processing", `{"id":"pi_1","object":"payment_intent","status":"processing","created":1000,
		"charges":{"object":"list","data":[{"id":"ch_1","object":"charge","status":"pending"}]}}`), SourceWebhook, at(1))
	applyEvent(p, parse("payment_intent.payment_failed", `{"id":"pi_1","object":"payment_intent","status":"requires_payment_method","created":1000,
		"last_payment_error":{"charge":"ch_1","code":"payment_intent_payment_attempt_failed","message":"debit failed"},
		"charges":{"object":"list","data":[{"id":"ch_1","object":"charge","status":"failed"}]}}`), SourceWebhook, at(2))
	if p.Status != StatusFailed {
		t.Errorf("Stripe: requires_payment_method after the only charge ch_1 failed; payment is %s (charges %+v)", p.Status, p.Attempts[0].Charges)
	}
}

// A payment link paid twice (two sessions both completed, a race Stripe's
// completed-session limit allows) where the merchant refunds part of each
// charge: Stripe's amount_refunded is per charge, the payment keeps one.
func TestReviewSnapshotsOfTwoChargesDoNotOverwriteEachOther(t *testing.T) {
	p := newTestPayment(MethodLink)
	applyEvent(p, piEvCreated("succeeded", "pi_a", "ch_a", 1000), SourceWebhook, at(1))
	applyEvent(p, piEvCreated("succeeded", "pi_b", "ch_b", 2000), SourceWebhook, at(2))
	applyEvent(p, chargeRefundedEv("ch_a", "pi_a", 500, 10), SourceWebhook, at(10))
	applyEvent(p, chargeRefundedEv("ch_b", "pi_b", 300, 20), SourceWebhook, at(20))
	if p.AmountRefunded != 800 {
		t.Errorf("refunded 500 on ch_a and 300 on ch_b; payment shows %d refunded", p.AmountRefunded)
	}
}

// An inquiry (warning_*) that the issuer escalates to a chargeback moves
// from warning_under_review to needs_response at Stripe: the merchant must
// now respond. The ranks put needs_response below warning_under_review, so
// the escalation is dropped (no history, no dispute_updated callback) and the
// payment keeps showing an inquiry under review.
func TestReviewInquiryEscalatedToChargebackIsRecorded(t *testing.T) {
	p := newTestPayment(MethodIntent)
	applyEvent(p, piEv("succeeded", "pi_1", "ch_1"), SourceWebhook, at(1))
	applyEvent(p, disputeEv("created", "dp_1", "ch_1", "pi_1", "warning_needs_response", 1000), SourceWebhook, at(2))
	applyEvent(p, disputeEv("updated", "dp_1", "ch_1", "pi_1", "warning_under_review", 1000), SourceWebhook, at(3))
	h := applyEvent(p, disputeEv("updated", "dp_1", "ch_1", "pi_1", "needs_response", 1000), SourceWebhook, at(4))
	if p.Disputes[0].Status != "needs_response" || len(h) == 0 {
		t.Errorf("escalated to a chargeback: dispute shows %s, history %v", p.Disputes[0].Status, histTypes(h))
	}
}

// A refund reserved through the API whose Stripe call had an unknown
// outcome (the caller got a 502) and that reconciliation finds made at
// Stripe is announced for the first time then: refund_created (succeeded →
// partially_refunded), as when the API or its webhook confirms it — not a
// refund_updated whose from status is one never shown.
func TestReviewReconcileSettledRefundIsAnnouncedAsCreated(t *testing.T) {
	p := newTestPayment(MethodIntent)
	applyEvent(p, piEv("succeeded", "pi_1", "ch_1"), SourceWebhook, at(1))
	p.Refunds = append(p.Refunds, apiRefund("rf_api", 300, 2))
	p.derive()
	stripeRefunds := []stripeObject{{ID: "re_1", Object: "refund", Status: "succeeded", Amount: 300, Metadata: map[string]string{metadataRefundKey: "rf_api"}}}
	h := settleRefunds(p, stripeRefunds, at(3600), at(3600))
	if len(h) != 1 || h[0].EventType != HistoryRefundCreated || h[0].FromStatus != StatusSucceeded || h[0].ToStatus != StatusPartiallyRefunded {
		for _, e := range h {
			t.Logf("%s %s -> %s %s", e.EventType, e.FromStatus, e.ToStatus, e.Data)
		}
		t.Errorf("reconciliation confirming a never-announced refund wrote %v; want refund_created succeeded -> partially_refunded", histTypes(h))
	}
}

// A reservation reconciliation finds Stripe never made was never announced:
// its release moves nothing the merchant saw (from succeeded, not from
// partially_refunded).
func TestReviewReconcileReleasedReservationHistoryChain(t *testing.T) {
	p := newTestPayment(MethodIntent)
	applyEvent(p, piEv("succeeded", "pi_1", "ch_1"), SourceWebhook, at(1))
	p.Refunds = append(p.Refunds, apiRefund("rf_api", 300, 2))
	p.derive()
	h := settleRefunds(p, nil, at(3600), at(3600))
	if len(h) != 1 || h[0].FromStatus != StatusSucceeded || h[0].ToStatus != StatusSucceeded {
		for _, e := range h {
			t.Logf("%s %s -> %s %s", e.EventType, e.FromStatus, e.ToStatus, e.Data)
		}
		t.Errorf("history chain: the last status shown was succeeded")
	}
}

// Two API refunds reserved at once (300 and 700 of 1000). The first is
// confirmed by Stripe: its refund_created callback must report what is
// known to be refunded (300, partially_refunded). It reports the second
// reservation too (1000, refunded); when Stripe then refuses the second, its
// release is written without a callback, so the merchant's last word is a
// fully refunded payment that Stripe refunded 300 of.
func TestReviewConfirmationCallbackDoesNotCountAnotherUnconfirmedReservation(t *testing.T) {
	g := &Gateway{cfg: Config{CallbackURL: "https://merchant.example/hooks"}}
	p := newTestPayment(MethodIntent)
	applyEvent(p, piEv("succeeded", "pi_1", "ch_1"), SourceWebhook, at(1))
	p.Refunds = append(p.Refunds, apiRefund("rf_1", 300, 2), apiRefund("rf_2", 700, 2))
	p.derive()
	// CreateRefund's confirmation of rf_1 (refundEvent through g.change).
	h := g.change(p, refundEv("refund.created", "re_1", "", "", "succeeded", 300, 3, "rf_1"), SourceAPI, at(3))
	if len(h) != 1 || h[0].Callback == nil {
		t.Fatalf("history %v", histTypes(h))
	}
	var cb struct {
		Data struct {
			Status         Status `json:"status"`
			AmountRefunded int64  `json:"amountRefunded"`
		} `json:"data"`
	}
	if err := json.Unmarshal(h[0].Callback.Payload, &cb); err != nil {
		t.Fatal(err)
	}
	if h[0].ToStatus != StatusPartiallyRefunded || cb.Data.Status != StatusPartiallyRefunded || cb.Data.AmountRefunded != 300 {
		t.Errorf("rf_1 (300) confirmed: history to %s, callback status %s amountRefunded %d; want partially_refunded, 300",
			h[0].ToStatus, cb.Data.Status, cb.Data.AmountRefunded)
	}
	// Stripe refuses rf_2: released as CreateRefund does, without a callback.
	failed := eventObject{typ: "refund.failed", obj: &stripeObject{Object: "refund", Status: "failed", Amount: 700, Metadata: map[string]string{metadataRefundKey: "rf_2"}}}
	applyEvent(p, failed, SourceAPI, at(4))
	if p.AmountRefunded != 300 || p.Status != StatusPartiallyRefunded {
		t.Fatalf("after the refusal: %s %d", p.Status, p.AmountRefunded)
	}
}

// A refund that failed before Stripe's snapshot is no longer in Stripe's
// amount_refunded: it cannot explain any of it. The merchant redoes a failed
// refund of 500 on the Dashboard; charge.refunded then reports 500 refunded,
// which the payment attributes to the failed refund, and shows nothing
// refunded (until, if ever, the new refund's own event arrives).
func TestReviewRefundFailedBeforeSnapshotExplainsNothing(t *testing.T) {
	p := newTestPayment(MethodIntent)
	applyEvent(p, piEv("succeeded", "pi_1", "ch_1"), SourceWebhook, at(1))
	applyEvent(p, refundEv("refund.created", "re_1", "ch_1", "pi_1", "succeeded", 500, 5, ""), SourceWebhook, at(5))
	failed := refundEv("refund.failed", "re_1", "ch_1", "pi_1", "failed", 500, 5, "")
	failed.created = at(8)
	applyEvent(p, failed, SourceWebhook, at(8))
	// The Dashboard refund of 500 at t20: Stripe's cumulative is 500.
	applyEvent(p, chargeRefundedEv("ch_1", "pi_1", 500, 20), SourceWebhook, at(20))
	if p.AmountRefunded != 500 || p.Status != StatusPartiallyRefunded {
		t.Errorf("Stripe has 500 refunded (re_1 failed at t8, a new refund at t20); payment shows %s %d", p.Status, p.AmountRefunded)
	}
}

// TestCheckoutCompletedAnnouncedWhenItComesAfterTheAsyncOutcome: a
// Checkout Session paid by a delayed method: Stripe sends
// checkout.session.completed (payment_status unpaid) at checkout and
// checkout.session.async_payment_succeeded days later. When the completed
// event is delivered late (Stripe retries each event on its own schedule
// after the endpoint was down), async_payment_succeeded arrives first; the
// session's state is then already "paid" (or "async_failed"). The late
// completed event must still write checkout_completed, once, as in order:
// the merchant listening for checkout_completed (the guide's example
// callback) hears of every session, whatever order Stripe delivers in.
func TestCheckoutCompletedAnnouncedWhenItComesAfterTheAsyncOutcome(t *testing.T) {
	for _, tc := range []struct {
		name  string
		async eventObject
	}{
		{"async_payment_succeeded first", sessionEv("async_payment_succeeded", "cs_1", "pi_1", "paid")},
		{"async_payment_failed first", sessionEv("async_payment_failed", "cs_1", "pi_1", "unpaid")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &Gateway{cfg: Config{CallbackURL: "https://merchant.example/hooks"}}
			completed := sessionEv("completed", "cs_1", "pi_1", "unpaid")

			inOrder := newTestPayment(MethodCheckout)
			var want []HistoryType
			for _, e := range []eventObject{completed, tc.async} {
				want = append(want, histTypes(g.change(inOrder, e, SourceWebhook, at(5)))...)
			}
			if !slices.Contains(want, HistoryCheckoutCompleted) {
				t.Fatalf("in order: %v", want)
			}

			late := newTestPayment(MethodCheckout)
			var got []HistoryType
			var actions []string
			for _, e := range []eventObject{tc.async, completed} {
				for _, h := range g.change(late, e, SourceWebhook, at(5)) {
					got = append(got, h.EventType)
					if h.Callback != nil {
						actions = append(actions, h.Callback.Action)
					}
				}
			}
			if late.Status != inOrder.Status {
				t.Fatalf("status %s, in order %s", late.Status, inOrder.Status)
			}
			if n := countOf(got, HistoryCheckoutCompleted); n != 1 || !slices.Contains(actions, "checkout_completed") {
				t.Errorf("completed delivered after %s: history %v, callbacks %v; in order the same events write %v",
					tc.async.typ, got, actions, want)
			}
			// Once per session: the same completion again (reconciliation
			// reads the session) announces nothing more.
			if again := histTypes(g.change(late, completed, SourceReconcile, at(6))); slices.Contains(again, HistoryCheckoutCompleted) {
				t.Errorf("completed again: %v", again)
			}
		})
	}
}

func countOf[T comparable](s []T, v T) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}
