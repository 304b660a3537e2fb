package sandbox

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLinkPaidAtOnce(t *testing.T) {
	sb := newTestSandbox(t, Config{})
	rc := newReceiver(t, sb)
	api := stripeAPI(t, sb, testKey)
	link := newLink(t, api, "pay_1", 2500, "https://shop.example/thanks")
	if link.URL != sb.URL()+"/pay/"+link.ID {
		t.Fatalf("link url %q", link.URL)
	}
	cs, err := sb.PayLink(link.ID, "4242424242424242")
	if err != nil {
		t.Fatal(err)
	}
	sb.DeliverAll()
	want := []string{"payment_intent.created", "charge.succeeded", "payment_intent.succeeded", "checkout.session.completed", "payment_link.updated"}
	if diff := cmp.Diff(want, rc.types()); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	tr := sb.Truth("pay_1")
	if tr.Succeeded == "" || tr.AmountPaid != 2500 || len(tr.CheckoutSessions) != 1 || tr.CheckoutSessions[0].ID != cs {
		t.Fatalf("truth %+v", tr)
	}
	pi, err := api.PaymentIntents.Get(tr.Succeeded, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pi.Metadata[MetadataPaymentKey] != "pay_1" || pi.Status != "succeeded" || pi.LatestCharge == nil {
		t.Fatalf("pi %+v", pi)
	}
}
