package paygate_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/callback/verify"
	"github.com/numedapp/paygate/paygatetest"
)

// These examples run: each gets a Gateway on a throwaway store, talking to
// the in-process sandbox (package paygatetest sets it up). Ids differ on
// every run, so they print statuses and amounts.

// A payment link: the customer opens PaymentURL and pays.
func ExampleGateway_CreatePaymentLink() {
	t, stop := paygatetest.Standalone() // in a test: paygatetest.New(t)
	defer stop()
	env := paygatetest.New(t)
	gw := env.Gateway

	quantity := int64(2)
	p, err := gw.CreatePaymentLink(context.Background(), paygate.PaymentLinkParams{
		Amount:      "19.99",
		Currency:    "usd",
		ProductName: "T-shirt",
		Quantity:    &quantity,
		Metadata:    paygate.Metadata{"orderId": "1234"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Method, p.Status, p.Amount, p.Currency, strings.Contains(p.PaymentURL, "/pay/"))
	fmt.Println(env.Succeed(p.ID).Status) // the customer pays on the sandbox
	// Output:
	// link pending 3998 usd true
	// succeeded
}

// A PaymentIntent for a payment page with Stripe Elements: hand
// ClientSecret to the page; read the status back from Stripe.
func ExampleGateway_CreatePaymentIntent() {
	t, stop := paygatetest.Standalone()
	defer stop()
	env := paygatetest.New(t)
	gw, ctx := env.Gateway, context.Background()

	pi, err := gw.CreatePaymentIntent(ctx, paygate.PaymentIntentParams{Amount: "10.50", Currency: "eur"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(pi.Status, pi.Amount, pi.Currency, pi.ClientSecret != "")
	if err := env.Sandbox.PayIntent(pi.PaymentIntentID, paygatetest.CardSucceeds); err != nil { // the page confirms it
		fmt.Println(err)
		return
	}
	st, err := gw.GetPaymentIntent(ctx, pi.PaymentIntentID) // catches up with Stripe, even before the webhook
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(st.Status, st.PaymentStatus, st.AmountReceived)
	// Output:
	// requires_payment_method 1050 eur true
	// succeeded succeeded 1050
}

// A Checkout Session: redirect the customer to URL.
func ExampleGateway_CreateCheckoutSession_sandbox() {
	t, stop := paygatetest.Standalone()
	defer stop()
	env := paygatetest.New(t)

	cs, err := env.Gateway.CreateCheckoutSession(context.Background(), paygate.CheckoutParams{
		Amount:     "49.90",
		Currency:   "eur",
		SuccessURL: "https://shop.example.com/thanks",
		CancelURL:  "https://shop.example.com/cart",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(strings.HasPrefix(cs.SessionID, "cs_"), strings.Contains(cs.URL, "/checkout/"))
	p := env.Pay(cs.PaymentID, paygatetest.CardDeclined) // declined: the page stays open
	fmt.Println(p.Status)
	p = env.Pay(cs.PaymentID, paygatetest.CardSucceeds) // the customer tries another card
	fmt.Println(p.Status, p.Amount)
	fmt.Println(env.WaitCallback(cs.PaymentID, verify.ActionCheckoutCompleted).Action)
	// Output:
	// true true
	// failed
	// succeeded 4990
	// checkout_completed
}

// Refunds, partial then the rest. The same IdempotencyKey never refunds twice.
func ExampleGateway_CreateRefund() {
	t, stop := paygatetest.Standalone()
	defer stop()
	env := paygatetest.New(t)
	gw, ctx := env.Gateway, context.Background()

	p, err := gw.CreatePaymentLink(ctx, paygate.PaymentLinkParams{Amount: "20.00"})
	if err != nil {
		fmt.Println(err)
		return
	}
	env.Succeed(p.ID)

	for _, in := range []paygate.RefundParams{
		{PaymentID: p.ID, Amount: "5.00", Reason: "requested_by_customer", IdempotencyKey: "order-1234-refund-1"},
		{PaymentID: p.ID, Amount: "5.00", Reason: "requested_by_customer", IdempotencyKey: "order-1234-refund-1"}, // a retry
		{PaymentID: p.ID, IdempotencyKey: "order-1234-refund-2"},                                                  // the rest
		{PaymentID: p.ID, IdempotencyKey: "order-1234-refund-3"},                                                  // nothing remains
	} {
		r, err := gw.CreateRefund(ctx, in)
		if errors.Is(err, paygate.ErrConflict) {
			fmt.Println("conflict: nothing left to refund")
			continue
		} else if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(r.Status, r.Amount, gotStatus(env, p.ID))
	}
	// Output:
	// succeeded 500 partially_refunded
	// succeeded 500 partially_refunded
	// succeeded 1500 refunded
	// conflict: nothing left to refund
}

func gotStatus(env *paygatetest.Env, id string) paygate.Status { return env.Payment(id).Status }

// A payment with its history: every change, from whichever path saw it.
func ExampleGateway_GetPayment() {
	t, stop := paygatetest.Standalone()
	defer stop()
	env := paygatetest.New(t)
	gw, ctx := env.Gateway, context.Background()

	p, err := gw.CreatePaymentLink(ctx, paygate.PaymentLinkParams{Amount: "9.00"})
	if err != nil {
		fmt.Println(err)
		return
	}
	env.Succeed(p.ID)
	env.Refund(p.ID, 300) // from the (sandbox's) Stripe Dashboard
	env.Dispute(p.ID, "fraudulent")

	got, err := gw.GetPayment(ctx, p.ID)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got.Status, got.Amount, got.AmountRefunded)
	for _, h := range got.History {
		fmt.Println(h.EventType, h.ToStatus)
	}
	// Output:
	// partially_refunded 900 300
	// payment_created pending
	// payment_succeeded succeeded
	// checkout_completed succeeded
	// refund_created partially_refunded
	// refund_updated partially_refunded
	// dispute_created partially_refunded
}

// Stored payments, filtered and paged.
func ExampleGateway_ListPayments() {
	t, stop := paygatetest.Standalone()
	defer stop()
	env := paygatetest.New(t)
	gw, ctx := env.Gateway, context.Background()

	for _, amount := range []paygate.Decimal{"1.00", "2.00", "3.00"} {
		p, err := gw.CreatePaymentLink(ctx, paygate.PaymentLinkParams{Amount: amount})
		if err != nil {
			fmt.Println(err)
			return
		}
		if amount != "2.00" {
			env.Succeed(p.ID)
		}
	}
	page, err := gw.ListPayments(ctx, paygate.PaymentFilter{Status: paygate.StatusSucceeded})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("succeeded:", page.Total)
	for _, p := range page.Items { // newest first
		fmt.Println(p.Amount, p.Status)
	}
	// Output:
	// succeeded: 2
	// 300 succeeded
	// 100 succeeded
}

// A Stripe event delivered to HandleWebhook (what the webhook route does),
// signed the way Stripe signs; a second delivery is a duplicate.
func ExampleGateway_HandleWebhook() {
	t, stop := paygatetest.Standalone()
	defer stop()
	env := paygatetest.New(t, paygatetest.WithoutRun())
	gw, ctx := env.Gateway, context.Background()
	secret := env.Config.WebhookSecrets[0]

	payload := []byte(`{"id": "evt_example_1", "object": "event", "type": "customer.created",
		"api_version": "2023-10-16", "created": ` + fmt.Sprint(time.Now().Unix()) + `, "livemode": false,
		"data": {"object": {"id": "cus_1", "object": "customer"}}}`)
	for range 2 {
		res, err := gw.HandleWebhook(ctx, payload, paygatetest.SignStripeEvent(payload, secret, time.Now()))
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(res.Type, res.Status, res.Duplicate)
	}
	_, err := gw.HandleWebhook(ctx, payload, paygatetest.SignStripeEvent(payload, "whsec_someone_else_0123", time.Now()))
	fmt.Println(err)
	// Output:
	// customer.created ignored false
	// customer.created ignored true
	// paygate: invalid_request: webhook signature verification failed: no signature matches any configured secret (param Stripe-Signature)
}
