package paygate_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/numedapp/paygate"
)

// TestRematchNotStarvedByAnotherServicesEvents: a Stripe account shared
// with another service, whose events of handled types are stored unmatched
// (API.md §3), more than a thousand a day on a busy account. A refund of
// ours, delivered before the success that teaches its payment the charge,
// is stored unmatched too. A pass reads at most rematchMax (1000) unmatched
// events, newest first: with 1000 foreign ones received after ours, every
// pass read those and never reached ours, until it was older than the 24 h
// window and left for good (the sweep does not help: the payment is final
// and the refund was made outside the API). A pass now goes on where the
// last one stopped, so the refund is counted.
func TestRematchNotStarvedByAnotherServicesEvents(t *testing.T) {
	t.Parallel()
	fake := &eventsStripe{}
	e := newReconcileEnv(t, fake, nil, nil)
	ctx := context.Background()
	p, refundID, _ := refundBeforeSuccess(t, e, "starve")
	// The other service's events, received after ours (the Events API
	// brings them in the first pass, as webhooks would have).
	at := time.Now().Add(-time.Minute)
	for i := 0; i < 1000; i++ {
		fake.add(fmt.Sprintf("evt_starvefx%05d", i), "charge.dispute.created",
			disputeObject(fmt.Sprintf("dp_starvefx%d", i), fmt.Sprintf("ch_starvefx%d", i), "", 100), at)
	}
	for pass := 0; pass < 3; pass++ {
		if _, err := e.gw.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ev, err := e.gw.GetWebhookEvent(ctx, refundID)
	if err != nil {
		t.Fatal(err)
	}
	got := e.payment(p.ID)
	if ev.Status != paygate.EventProcessed || got.AmountRefunded != 300 {
		t.Errorf("after 3 reconciliation passes the refund event is %s and the payment %s with %d refunded; want processed, 300 refunded",
			ev.Status, got.Status, got.AmountRefunded)
	}
}
