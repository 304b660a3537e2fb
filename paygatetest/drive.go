package paygatetest

import (
	"context"
	"errors"
	"time"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/callback/verify"
	"github.com/numedapp/paygate/sandbox"
)

// CallbackTimeout is how long WaitCallback waits.
var CallbackTimeout = 10 * time.Second

// Payment returns the payment with its history, as the Gateway has it. It
// fails the test when the Gateway has none.
func (e *Env) Payment(paymentID string) *paygate.PaymentWithHistory {
	e.t.Helper()
	p, err := e.Gateway.GetPayment(context.Background(), paymentID)
	if err != nil {
		e.t.Fatalf("paygatetest: GetPayment(%s): %v", paymentID, err)
	}
	return p
}

// Pay has the customer pay the payment on the sandbox with a test card (or
// a bank debit number, or pm_ token: see package sandbox), the way the
// payment was made: a payment link is visited and paid, a Checkout
// Session's page is paid, a PaymentIntent is confirmed. Then the sandbox's
// webhooks are delivered to the Gateway, and the payment as the Gateway
// now has it is returned. A declined card is not an error (the payment
// becomes failed); the test fails on anything else.
func (e *Env) Pay(paymentID, card string) *paygate.PaymentWithHistory {
	e.t.Helper()
	p := e.Payment(paymentID)
	var err error
	switch p.Method {
	case paygate.MethodLink:
		_, err = e.Sandbox.PayLink(p.PaymentLinkID, card)
	case paygate.MethodCheckout:
		err = e.Sandbox.PaySession(p.CheckoutSessionID, card)
	default:
		err = e.Sandbox.PayIntent(p.PaymentIntentID, card)
	}
	if err != nil && !isDecline(err) {
		e.t.Fatalf("paygatetest: pay %s (%s): %v", paymentID, p.Method, err)
	}
	return e.Deliver(paymentID)
}

func isDecline(err error) bool {
	var se *sandbox.Error
	return errors.As(err, &se) && se.Type == "card_error"
}

// Succeed pays the payment with a card that succeeds (Pay with
// CardSucceeds) and fails the test unless the Gateway then says succeeded.
func (e *Env) Succeed(paymentID string) *paygate.PaymentWithHistory {
	e.t.Helper()
	p := e.Pay(paymentID, CardSucceeds)
	if p.Status != paygate.StatusSucceeded {
		e.t.Fatalf("paygatetest: Succeed(%s): status %s", paymentID, p.Status)
	}
	return p
}

// Fail tries to pay with a declined card (Pay with CardDeclined) and fails
// the test unless the Gateway then says failed.
func (e *Env) Fail(paymentID string) *paygate.PaymentWithHistory {
	e.t.Helper()
	p := e.Pay(paymentID, CardDeclined)
	if p.Status != paygate.StatusFailed {
		e.t.Fatalf("paygatetest: Fail(%s): status %s", paymentID, p.Status)
	}
	return p
}

// Refund refunds amount (minor units; 0 for all of it) of a succeeded
// payment from the sandbox's Dashboard — as the merchant's staff would, not
// through the Gateway (call Gateway.CreateRefund for that) — delivers the
// webhooks, and returns the payment as the Gateway now has it.
func (e *Env) Refund(paymentID string, amount int64) *paygate.PaymentWithHistory {
	e.t.Helper()
	p := e.Payment(paymentID)
	if p.PaymentIntentID == "" {
		e.t.Fatalf("paygatetest: Refund(%s): the payment has no PaymentIntent (status %s)", paymentID, p.Status)
	}
	if _, err := e.Sandbox.Refund(p.PaymentIntentID, amount, "requested_by_customer"); err != nil {
		e.t.Fatalf("paygatetest: Refund(%s): %v", paymentID, err)
	}
	return e.Deliver(paymentID)
}

// Dispute has the customer dispute a succeeded payment's charge (reason ""
// is Stripe's "general"), delivers the webhooks, and returns the dispute's
// id (dp_…) and the payment as the Gateway now has it. The sandbox's
// Dashboard (Sandbox.UpdateDispute, Sandbox.CloseDispute) takes it further.
func (e *Env) Dispute(paymentID, reason string) (string, *paygate.PaymentWithHistory) {
	e.t.Helper()
	p := e.Payment(paymentID)
	if p.PaymentIntentID == "" {
		e.t.Fatalf("paygatetest: Dispute(%s): the payment has no PaymentIntent (status %s)", paymentID, p.Status)
	}
	id, err := e.Sandbox.Dispute(p.PaymentIntentID, reason)
	if err != nil {
		e.t.Fatalf("paygatetest: Dispute(%s): %v", paymentID, err)
	}
	return id, e.Deliver(paymentID)
}

// Deliver delivers every webhook the sandbox has due to the Gateway, fails
// the test if the Gateway refused one, and returns the payment (if
// paymentID is not "") as the Gateway now has it.
func (e *Env) Deliver(paymentID string) *paygate.PaymentWithHistory {
	e.t.Helper()
	if rep := e.Sandbox.DeliverAll(); rep.Failed != 0 {
		e.t.Fatalf("paygatetest: the Gateway refused %d webhook deliveries: %+v", rep.Failed, rep)
	}
	if paymentID == "" {
		return nil
	}
	return e.Payment(paymentID)
}

// Advance moves the shared clock (the sandbox's and the Gateway's) ahead by
// d, fires what comes due on the sandbox (bank debits settle, sessions
// expire, refunds settle or fail) and delivers the webhooks.
func (e *Env) Advance(d time.Duration) {
	e.t.Helper()
	e.Sandbox.Advance(d)
	e.Deliver("")
}

// WaitCallback waits (up to CallbackTimeout) for the callback of the given
// action for the payment, and returns it; it fails the test if none comes.
// Callbacks are sent by Gateway.Run, so not with WithoutRun.
func (e *Env) WaitCallback(paymentID, action string) verify.Payload {
	e.t.Helper()
	p, err := e.Callbacks.Wait(func(p verify.Payload) bool {
		return p.PaymentID == paymentID && p.Action == action
	}, CallbackTimeout)
	if err != nil {
		e.t.Fatalf("paygatetest: WaitCallback(%s, %s): %v", paymentID, action, err)
	}
	return p
}
