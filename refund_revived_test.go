package paygate

import (
	"strings"
	"testing"
)

// TestRevivedRefundAnnouncedOnce: the new mergeRefund rule lets
// a failure inferred here (a reservation released without Stripe's word)
// give way to Stripe's refund object. But while the reservation was
// failed, Stripe's refunded-amount snapshot (charge.refunded, which Stripe
// sends beside refund.created, in no fixed order) could not be explained
// by it (mayBeInSnapshot: a failed refund with no re_ id was "never at
// Stripe"), so the snapshot was announced as a refund made outside this
// service: refund_created of 400 with refundId "". When refund.created
// then resurrects the reservation, changes() treats it as "a reservation
// Stripe confirmed" and announces refund_created of 400 again (re_made):
// two refund_created callbacks for one refund of 400, where a refund known
// at last by its own event after the snapshot announced it is a
// refund_updated (the !existed && announced case). A merchant that books
// refund_created amounts books 800 refunded of a 1000 payment Stripe
// refunded 400.
func TestRevivedRefundAnnouncedOnce(t *testing.T) {
	p := newTestPayment(MethodIntent)
	applyEvent(p, piEv("succeeded", "pi_1", "ch_1"), SourceWebhook, at(1))
	p.Refunds = append(p.Refunds, Refund{ID: "rf_inferred", Amount: 400, Status: RefundPending, CreatedAt: at(10), UpdatedAt: at(10)})
	p.derive()
	// The call seemed refused (a 4xx): released here, as CreateRefund does.
	refused := eventObject{typ: "refund.failed", obj: &stripeObject{Object: "refund", Status: "failed", Amount: 400,
		Metadata: map[string]string{metadataRefundKey: "rf_inferred"}}}
	applyEvent(p, refused, SourceAPI, at(11))

	var created []HistoryEntry
	keep := func(hist []HistoryEntry) {
		for _, h := range hist {
			if h.EventType == HistoryRefundCreated {
				created = append(created, h)
			}
		}
	}
	// Stripe did make it: charge.refunded (400) arrives first...
	keep(applyEvent(p, chargeRefundedEv("ch_1", "pi_1", 400, 10), SourceWebhook, at(12)))
	// ...then refund.created naming the reservation.
	keep(applyEvent(p, refundEv("refund.created", "re_made", "ch_1", "pi_1", "succeeded", 400, 10, "rf_inferred"), SourceWebhook, at(13)))

	if p.AmountRefunded != 400 {
		t.Errorf("amountRefunded %d, Stripe refunded 400", p.AmountRefunded)
	}
	if len(created) != 1 {
		var b strings.Builder
		for _, h := range created {
			b.WriteString("\n  " + string(h.EventType) + " " + string(h.Data))
		}
		t.Errorf("one refund of 400 at Stripe was announced refund_created %d times:%s", len(created), b.String())
	}
}
