package paygate

import (
	"strings"
	"testing"
	"time"
)

// TestSameSecondAPIRefundsKeepTheirOrder: two API refunds in one second, A
// (600) then B (300), of a 1000 payment. Stripe's answers date them by its
// whole seconds; a charge.refunded snapshot of 600 in that second must read
// as A, whatever the random rf_ ids. The order they were made in was lost
// when Stripe dated them, the tie went to the ids, and when B's sorted
// first the snapshot read as B plus a 300 refund nobody made:
// amountRefunded 1200, status refunded, a refund_created with no refund id.
// A reservation now keeps its own finer time within Stripe's second.
func TestSameSecondAPIRefundsKeepTheirOrder(t *testing.T) {
	p := newTestPayment(MethodIntent)
	applyEvent(p, piEv("succeeded", "pi_1", "ch_1"), SourceWebhook, at(1))
	sec := int64(50)
	// The reservations, A first; B's id sorts before A's.
	a := Refund{ID: "rf_zzzzzzzzzzzzzzzzzzzzzzzz", Amount: 600, Status: RefundPending, CreatedAt: at(sec).Add(100 * time.Millisecond), UpdatedAt: at(sec).Add(100 * time.Millisecond)}
	b := Refund{ID: "rf_000000000000000000000000", Amount: 300, Status: RefundPending, CreatedAt: at(sec).Add(400 * time.Millisecond), UpdatedAt: at(sec).Add(400 * time.Millisecond)}

	var hist []HistoryEntry
	p.Refunds = append(p.Refunds, a)
	p.derive()
	// Stripe's answer to A, as CreateRefund applies it (refundEvent).
	hist = append(hist, applyEvent(p, eventObject{typ: "refund.created", obj: &stripeObject{ID: "re_A", Object: "refund", Status: "succeeded", Amount: 600,
		Currency: "usd", Metadata: map[string]string{metadataRefundKey: a.ID}, Created: at(sec).Unix()}}, SourceAPI, at(sec).Add(200*time.Millisecond))...)
	p.Refunds = append(p.Refunds, b)
	p.derive()
	hist = append(hist, applyEvent(p, eventObject{typ: "refund.created", obj: &stripeObject{ID: "re_B", Object: "refund", Status: "succeeded", Amount: 300,
		Currency: "usd", Metadata: map[string]string{metadataRefundKey: b.ID}, Created: at(sec).Unix()}}, SourceAPI, at(sec).Add(500*time.Millisecond))...)
	// Stripe's charge.refunded after A (600), in the same second.
	hist = append(hist, applyEvent(p, chargeRefundedEv("ch_1", "pi_1", 600, sec), SourceWebhook, at(sec+1))...)

	if p.AmountRefunded != 900 || p.Status != StatusPartiallyRefunded {
		t.Errorf("Stripe refunded 600 + 300 = 900 (partially refunded); paygate says %d, %s", p.AmountRefunded, p.Status)
	}
	for _, h := range hist {
		if h.EventType == HistoryRefundCreated && strings.Contains(string(h.Data), `"refundId":""`) {
			t.Errorf("a refund that does not exist was announced: %s %d %s", h.EventType, h.Amount, h.Data)
		}
	}
	// The 900 snapshot repairs it, but announces a failure of the phantom.
	h := applyEvent(p, chargeRefundedEv("ch_1", "pi_1", 900, sec), SourceWebhook, at(sec+2))
	for _, e := range h {
		t.Errorf("the later snapshot (900) changed what is known: %s %d %s", e.EventType, e.Amount, e.Data)
	}
}

// TestStripeRefundOverridesAFailureInferredHere: a reservation marked
// failed here without Stripe's word (its call seemed refused, or
// settlement found no refund) and then shown by Stripe as made under its
// paygate_refund_id counts: Stripe's object is the truth. One Stripe
// itself reported failed stays failed.
func TestStripeRefundOverridesAFailureInferredHere(t *testing.T) {
	p := refusedReservation()
	if p.AmountRefunded != 0 {
		t.Fatalf("after the refusal: amountRefunded %d", p.AmountRefunded)
	}
	made := &stripeObject{ID: "re_made", Object: "refund", Status: "succeeded", Amount: 400, Currency: "usd",
		Metadata: map[string]string{metadataRefundKey: "rf_inferred"}, Created: at(10).Unix()}
	hist := applyEvent(p, eventObject{id: "evt_made", typ: "refund.created", obj: made, created: at(12)}, SourceWebhook, at(12))
	if p.AmountRefunded != 400 || p.Status != StatusPartiallyRefunded || len(p.Refunds) != 1 || p.Refunds[0].Status != RefundSucceeded {
		t.Fatalf("Stripe made it: amountRefunded %d, status %s, refunds %+v", p.AmountRefunded, p.Status, p.Refunds)
	}
	if len(hist) == 0 || hist[0].EventType != HistoryRefundCreated {
		t.Errorf("history %+v, want refund_created", hist)
	}
	// Stripe's own failure is final.
	failed := *made
	failed.Status = "failed"
	applyEvent(p, eventObject{id: "evt_failed", typ: "refund.failed", obj: &failed, created: at(13)}, SourceWebhook, at(13))
	applyEvent(p, eventObject{id: "evt_late", typ: "refund.created", obj: made, created: at(12)}, SourceWebhook, at(14))
	if p.Refunds[0].Status != RefundFailed || p.AmountRefunded != 0 {
		t.Errorf("after Stripe's failure and a late created: %+v, amountRefunded %d", p.Refunds, p.AmountRefunded)
	}
}

// refusedReservation is a succeeded payment of 1000 with a reservation of
// 400 (rf_inferred) made at 10 and released at 11 as refused by Stripe, as
// CreateRefund releases it: failed here, without Stripe's word.
func refusedReservation() *Payment {
	p := newTestPayment(MethodIntent)
	applyEvent(p, piEv("succeeded", "pi_1", "ch_1"), SourceWebhook, at(1))
	p.Refunds = append(p.Refunds, Refund{ID: "rf_inferred", Amount: 400, Status: RefundPending, CreatedAt: at(10), UpdatedAt: at(10)})
	p.derive()
	refused := eventObject{typ: "refund.failed", obj: &stripeObject{Object: "refund", Status: "failed", Amount: 400,
		Metadata: map[string]string{metadataRefundKey: "rf_inferred"}}}
	applyEvent(p, refused, SourceAPI, at(11))
	return p
}
