package paygatetest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/callback/verify"
	"github.com/numedapp/paygate/paygatetest"
)

func TestMain(m *testing.M) { os.Exit(paygatetest.Main(m)) }

// A payment link paid on the sandbox: webhooks reach the Gateway, the
// merchant gets a verified callback, and a Dashboard refund and a dispute
// follow.
func TestLinkLifecycle(t *testing.T) {
	t.Parallel()
	env := paygatetest.New(t)
	ctx := context.Background()
	p, err := env.Gateway.CreatePaymentLink(ctx, paygate.PaymentLinkParams{
		Amount: "19.99", Metadata: paygate.Metadata{"orderId": "A-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := env.Succeed(p.ID); got.Status != paygate.StatusSucceeded || got.Amount != 1999 {
		t.Fatalf("after paying: %s %d", got.Status, got.Amount)
	}
	cb := env.WaitCallback(p.ID, verify.ActionPaymentSucceeded)
	if cb.Data.Metadata["orderId"] != "A-1" || cb.Data.Status != "succeeded" {
		t.Fatalf("callback: %+v", cb)
	}

	if got := env.Refund(p.ID, 500); got.Status != paygate.StatusPartiallyRefunded || got.AmountRefunded != 500 {
		t.Fatalf("after refunding: %s %d", got.Status, got.AmountRefunded)
	}
	env.WaitCallback(p.ID, verify.ActionRefundCreated)
	if id, _ := env.Dispute(p.ID, "fraudulent"); !strings.HasPrefix(id, "dp_") {
		t.Fatalf("dispute id %q", id)
	}
	cb = env.WaitCallback(p.ID, verify.ActionDisputeCreated)
	if cb.Data.DisputeReason == nil || *cb.Data.DisputeReason != "fraudulent" {
		t.Fatalf("dispute callback: %+v", cb.Data)
	}
	if bad := env.Callbacks.Rejected(); len(bad) != 0 {
		t.Fatalf("callbacks that did not verify: %v", bad)
	}
	var last int64
	for _, c := range env.Callbacks.For(p.ID) {
		if c.Sequence <= last {
			t.Fatalf("sequence %d after %d", c.Sequence, last)
		}
		last = c.Sequence
	}
}

// A PaymentIntent declined, then paid on a retry; a Checkout Session paid;
// a refund through the Gateway's own API.
func TestIntentAndCheckout(t *testing.T) {
	t.Parallel()
	env := paygatetest.New(t)
	ctx := context.Background()
	pi, err := env.Gateway.CreatePaymentIntent(ctx, paygate.PaymentIntentParams{Amount: "10.00", Currency: "eur"})
	if err != nil {
		t.Fatal(err)
	}
	env.Fail(pi.PaymentID)
	env.WaitCallback(pi.PaymentID, verify.ActionPaymentFailed)
	env.Succeed(pi.PaymentID)

	cs, err := env.Gateway.CreateCheckoutSession(ctx, paygate.CheckoutParams{
		Amount: "5.00", SuccessURL: "https://shop.example/ok", CancelURL: "https://shop.example/cart",
	})
	if err != nil {
		t.Fatal(err)
	}
	env.Succeed(cs.PaymentID)
	env.WaitCallback(cs.PaymentID, verify.ActionCheckoutCompleted)

	res, body := env.Do("POST", "/api/payments/refund", `{"paymentId": "`+cs.PaymentID+`"}`)
	if res.StatusCode != http.StatusCreated && res.StatusCode != http.StatusOK {
		t.Fatalf("refund: %d %s", res.StatusCode, body)
	}
	env.Deliver("")
	if p := env.Payment(cs.PaymentID); p.Status != paygate.StatusRefunded {
		t.Fatalf("after the API refund: %s", p.Status)
	}
}

// A bank debit settles when the shared clock moves on.
func TestAdvanceSettlesDebit(t *testing.T) {
	t.Parallel()
	env := paygatetest.New(t)
	pi, err := env.Gateway.CreatePaymentIntent(context.Background(), paygate.PaymentIntentParams{Amount: "30.00"})
	if err != nil {
		t.Fatal(err)
	}
	if p := env.Pay(pi.PaymentID, "000123456789"); p.Status != paygate.StatusProcessing {
		t.Fatalf("after the debit: %s", p.Status)
	}
	env.Advance(73 * time.Hour)
	if p := env.Payment(pi.PaymentID); p.Status != paygate.StatusSucceeded {
		t.Fatalf("after settling: %s", p.Status)
	}
	// The callback is signed on the shared clock, 73 h ahead of the wall.
	env.WaitCallback(pi.PaymentID, verify.ActionPaymentSucceeded)
}

// SignStripeEvent signs the way Stripe does: the Gateway accepts it with
// the right secret and refuses it with another.
func TestSignStripeEvent(t *testing.T) {
	t.Parallel()
	env := paygatetest.New(t, paygatetest.WithoutRun(),
		paygatetest.WithConfig(func(c *paygate.Config) { c.WebhookSecrets = []string{"whsec_mine0123456789"} }))
	payload, _ := json.Marshal(map[string]any{
		"id": "evt_test_1", "object": "event", "type": "customer.created", "api_version": paygate.StripeAPIVersion,
		"created": time.Now().Unix(), "livemode": false,
		"data": map[string]any{"object": map[string]any{"id": "cus_1", "object": "customer"}},
	})
	ctx := context.Background()
	if _, err := env.Gateway.HandleWebhook(ctx, payload, paygatetest.SignStripeEvent(payload, "whsec_mine0123456789", time.Now())); err != nil {
		t.Fatalf("signed with the secret: %v", err)
	}
	if _, err := env.Gateway.HandleWebhook(ctx, payload, paygatetest.SignStripeEvent(payload, "whsec_other0123456789", time.Now())); err == nil {
		t.Fatal("signed with another secret: accepted")
	}
	if _, err := env.Gateway.HandleWebhook(ctx, payload, paygatetest.SignStripeEvent(payload, "whsec_mine0123456789", time.Now().Add(-time.Hour))); err == nil {
		t.Fatal("signed an hour ago: accepted")
	}
}

// A merchant endpoint that answers 500 gets the callback again.
func TestCallbackStatus(t *testing.T) {
	t.Parallel()
	env := paygatetest.New(t, paygatetest.WithCallbackStatus(http.StatusInternalServerError))
	p, err := env.Gateway.CreatePaymentLink(context.Background(), paygate.PaymentLinkParams{Amount: "1.00"})
	if err != nil {
		t.Fatal(err)
	}
	env.Succeed(p.ID)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		page, err := env.Gateway.ListCallbacks(context.Background(), paygate.CallbackFilter{PaymentID: p.ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) > 0 {
			if len(env.Callbacks.For(p.ID)) != 0 {
				t.Fatal("a callback answered 500 was recorded as received")
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no callback attempt")
}

// The whole kit: a payment link paid on the sandbox, the callback the
// merchant receives, a refund.
func Example() {
	t, stop := paygatetest.Standalone() // in a test: env := paygatetest.New(t)
	defer stop()
	env := paygatetest.New(t)
	ctx := context.Background()

	p, err := env.Gateway.CreatePaymentLink(ctx, paygate.PaymentLinkParams{
		Amount: "19.99", Metadata: paygate.Metadata{"orderId": "A-1"},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Status, p.Amount, p.Currency)

	paid := env.Succeed(p.ID) // the customer pays with 4242…; webhooks arrive
	fmt.Println(paid.Status)

	cb := env.WaitCallback(p.ID, verify.ActionPaymentSucceeded)
	fmt.Println(cb.Action, cb.Data.Status, cb.Data.Metadata["orderId"])

	r, err := env.Gateway.CreateRefund(ctx, paygate.RefundParams{PaymentID: p.ID, Amount: "4.99"})
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Status, r.Amount)
	fmt.Println(env.Deliver(p.ID).Status)
	// Output:
	// pending 1999 usd
	// succeeded
	// payment_succeeded succeeded A-1
	// succeeded 499
	// partially_refunded
}
