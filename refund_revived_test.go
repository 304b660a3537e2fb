package paygate

import (
	"strings"
	"testing"
)

// TestRevivedRefundAnnouncedOnce: a reservation released here as refused
// (no re_ id) could not explain Stripe's refunded-amount snapshot
// (charge.refunded, sent beside refund.created in no fixed order), so the
// snapshot was announced as a refund made outside this service
// (refund_created, refundId ""). When refund.created then revives the
// reservation, it is a refund_updated of what was announced, not a second
// refund_created (a merchant booking refund_created amounts booked 800 of
// a 1000 payment Stripe refunded 400).
func TestRevivedRefundAnnouncedOnce(t *testing.T) {
	p := refusedReservation() // the call seemed refused (a 4xx)

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
