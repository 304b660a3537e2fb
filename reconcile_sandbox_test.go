package paygate_test

import (
	"context"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/sandbox"
)

// The whole story on the stateful sandbox, with Stripe's own event
// sequence: a customer pays, the merchant refunds part from the Dashboard,
// the customer disputes — and no webhook reaches paygate. One reconciliation
// pass makes the payment right, with one callback per change; when the
// webhooks finally arrive they change nothing and call back nothing.
func TestReconcileWithTheSandbox(t *testing.T) {
	t.Parallel()
	sb, err := sandbox.NewServer(sandbox.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	m := newMerchant(t)
	e := newReconcileEnvAt(t, sb.URL(), m)
	runGateway(t, e.gw)
	ctx := context.Background()

	var pi paygate.CreatedIntent
	e.do("POST", "/api/payments/payment-intent", `{"amount": "10.00"}`).must(t, 201, &pi)
	if err := sb.PayIntent(pi.PaymentIntentID, "4242424242424242"); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Refund(pi.PaymentIntentID, 300, "requested_by_customer"); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Dispute(pi.PaymentIntentID, ""); err != nil {
		t.Fatal(err)
	}
	if p := e.payment(pi.PaymentID); p.Status != paygate.StatusPending {
		t.Fatalf("before reconciling: %+v", p.Payment)
	}

	res, err := e.gw.Reconcile(ctx)
	if err != nil || res.EventsApplied < 4 || res.EventsFailed != 0 || res.EventsError != "" {
		t.Fatalf("pass: %+v %v", res, err)
	}
	p := e.payment(pi.PaymentID)
	if p.Status != paygate.StatusPartiallyRefunded || p.AmountRefunded != 300 {
		t.Fatalf("after reconciling: %+v", p.Payment)
	}
	var types []string
	for _, h := range p.History[1:] { // after payment_created
		if h.Source != "reconcile" {
			t.Errorf("history entry of source %q: %+v", h.Source, h)
		}
		types = append(types, string(h.EventType))
	}
	// In the order it happened (events of one second keep Stripe's order;
	// the refund's own events may add a refund_updated).
	first := func(typ string) int {
		i := slices.Index(types, typ)
		if i < 0 {
			t.Fatalf("history %v lacks %s", types, typ)
		}
		return i
	}
	if !(first("payment_succeeded") < first("refund_created") && first("refund_created") < first("dispute_created")) {
		t.Fatalf("history out of order: %v", types)
	}
	changes := len(p.History) - 1
	if got := m.received(t, changes); len(got) != changes {
		t.Fatalf("callbacks %v for %d changes", got, changes)
	}

	// The webhooks arrive at last: every one is a duplicate.
	hooks := httptest.NewServer(e.gw.WebhookHandler())
	defer hooks.Close()
	if err := sb.SetWebhook(hooks.URL+paygate.WebhookPath, whsecNew); err != nil {
		t.Fatal(err)
	}
	if rep := sb.DeliverAll(); rep.Sent == 0 || rep.Failed != 0 {
		t.Fatalf("deliveries: %+v", rep)
	}
	if again := e.payment(pi.PaymentID); len(again.History) != len(p.History) || again.AmountRefunded != 300 {
		t.Fatalf("late webhooks changed the payment: %+v", again.History)
	}
	time.Sleep(1500 * time.Millisecond) // past the engine's poll
	if got := m.received(t, changes); len(got) != changes {
		t.Fatalf("late webhooks called back: %v", got)
	}
	// And the sandbox's endpoint is checked like Stripe's.
	if c := e.gw.CheckWebhookEndpoint(ctx); c.Error != "" || c.EndpointID == "" {
		t.Fatalf("endpoint check on the sandbox: %+v", c)
	}
}
