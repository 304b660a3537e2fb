package sandbox

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stripe/stripe-go/v76"
)

// wantEvents delivers everything due and compares the types the receiver
// accepted since the last call with want.
func wantEvents(t *testing.T, sb *Sandbox, rc *receiver, want ...string) {
	t.Helper()
	sb.DeliverAll()
	if diff := cmp.Diff(want, rc.types(), cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	rc.reset()
}

// TestFlowLinkPaidAtOnce: a payment link paid with the success card on the
// first visit.
func TestFlowLinkPaidAtOnce(t *testing.T) {
	t.Parallel()
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
	wantEvents(t, sb, rc, "payment_intent.created", "charge.succeeded", "payment_intent.succeeded", "checkout.session.completed", "payment_link.updated")
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

func TestFlowLinkDeclinedThenPaidInASecondSession(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, Config{})
	rc := newReceiver(t, sb)
	api := stripeAPI(t, sb, testKey)
	link := newLink(t, api, "pay_2", 1999, "")

	first, err := sb.PayLink(link.ID, "4000000000000002")
	var ae *Error
	if !asAPIError(err, &ae) || ae.DeclineCode != "generic_decline" {
		t.Fatalf("decline: %v", err)
	}
	wantEvents(t, sb, rc, "payment_intent.created", "charge.failed", "payment_intent.payment_failed")

	second, err := sb.PayLink(link.ID, "4242424242424242")
	must(t, err)
	wantEvents(t, sb, rc, "payment_intent.created", "charge.succeeded", "payment_intent.succeeded", "checkout.session.completed", "payment_link.updated")

	tr := sb.Truth("pay_2")
	if len(tr.PaymentIntents) != 2 || len(tr.CheckoutSessions) != 2 || tr.Succeeded != tr.PaymentIntents[1].ID {
		t.Fatalf("truth: %+v", tr)
	}
	for _, pi := range tr.PaymentIntents {
		got, err := api.PaymentIntents.Get(pi.ID, nil)
		must(t, err)
		if got.Metadata[MetadataPaymentKey] != "pay_2" || got.Description != "Consultation" {
			t.Errorf("PaymentIntent %s lost the link's payment_intent_data: %+v", pi.ID, got.Metadata)
		}
	}
	// The link is used up; the first session, still open, expires in 24 h
	// and takes its PaymentIntent with it.
	l, err := api.PaymentLinks.Get(link.ID, nil)
	must(t, err)
	if l.Active {
		t.Error("link still active after its one completed session")
	}
	if _, err := sb.VisitLink(link.ID); err == nil {
		t.Error("visiting a used-up link opened a session")
	}
	sb.Advance(24 * time.Hour)
	wantEvents(t, sb, rc, "checkout.session.expired", "payment_intent.canceled")
	s1, err := api.CheckoutSessions.Get(first, nil)
	must(t, err)
	if s1.Status != "expired" {
		t.Errorf("first session %s", s1.Status)
	}
	// Listing a link's complete sessions finds the paid one (reconcile does this).
	it := api.CheckoutSessions.List(&stripe.CheckoutSessionListParams{PaymentLink: stripe.String(link.ID), Status: stripe.String("complete")})
	var ids []string
	for it.Next() {
		ids = append(ids, it.CheckoutSession().ID)
	}
	must(t, it.Err())
	if diff := cmp.Diff([]string{second}, ids); diff != "" {
		t.Errorf("complete sessions (-want +got):\n%s", diff)
	}
}

func TestFlowCheckoutBankDebit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, pm string
		want     []string
	}{
		{"settles", "pm_usBankAccount_success", []string{"charge.succeeded", "payment_intent.succeeded", "checkout.session.async_payment_succeeded"}},
		{"fails", "pm_usBankAccount_failure", []string{"charge.failed", "payment_intent.payment_failed", "checkout.session.async_payment_failed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sb := newTestSandbox(t, Config{})
			rc := newReceiver(t, sb)
			api := stripeAPI(t, sb, testKey)
			cs := newCheckout(t, api, "pay_d", 12000)
			must(t, sb.PaySession(cs.ID, tc.pm))
			wantEvents(t, sb, rc, "payment_intent.created", "charge.pending", "payment_intent.processing", "checkout.session.completed")
			got, err := api.CheckoutSessions.Get(cs.ID, nil)
			must(t, err)
			if got.Status != "complete" || got.PaymentStatus != "unpaid" || got.CustomerDetails.Email != "pat@example.com" {
				t.Fatalf("session %s/%s", got.Status, got.PaymentStatus)
			}
			sb.Advance(71 * time.Hour)
			wantEvents(t, sb, rc)
			sb.Advance(time.Hour)
			wantEvents(t, sb, rc, tc.want...)
			if tr := sb.Truth("pay_d"); (tr.Succeeded != "") != (tc.name == "settles") {
				t.Errorf("truth %+v", tr)
			}
		})
	}
}

func TestFlowIntentWith3DS(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, Config{})
	rc := newReceiver(t, sb)
	api := stripeAPI(t, sb, testKey)
	pi := newIntent(t, api, "pay_3", 5000)
	if pi.Status != "requires_payment_method" || !strings.HasPrefix(pi.ClientSecret, pi.ID+"_secret_") {
		t.Fatalf("new intent %s %s", pi.Status, pi.ClientSecret)
	}
	got, err := api.PaymentIntents.Confirm(pi.ID, &stripe.PaymentIntentConfirmParams{
		PaymentMethod: stripe.String("pm_card_authenticationRequired"), ReturnURL: stripe.String("https://shop.example/back")})
	must(t, err)
	if got.Status != "requires_action" || got.NextAction == nil || got.NextAction.RedirectToURL == nil {
		t.Fatalf("confirm: %s %+v", got.Status, got.NextAction)
	}
	wantEvents(t, sb, rc, "payment_intent.created", "payment_intent.requires_action")

	// The customer completes the challenge on the sandbox's page and comes
	// back to return_url with Stripe's parameters.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.PostForm(got.NextAction.RedirectToURL.URL, url.Values{"action": {"complete"}})
	must(t, err)
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 303 || loc.Host != "shop.example" || loc.Query().Get("redirect_status") != "succeeded" || loc.Query().Get("payment_intent") != pi.ID {
		t.Fatalf("after 3DS: %d %s", resp.StatusCode, loc)
	}
	wantEvents(t, sb, rc, "charge.succeeded", "payment_intent.succeeded")

	// Failing the challenge leaves the PaymentIntent for another attempt.
	pi2 := newIntent(t, api, "pay_4", 5000)
	must(t, sb.PayIntent(pi2.ID, "4000002500003155"))
	must(t, sb.Authenticate(pi2.ID, false))
	wantEvents(t, sb, rc, "payment_intent.created", "payment_intent.requires_action", "payment_intent.payment_failed")
	g2, err := api.PaymentIntents.Get(pi2.ID, nil)
	must(t, err)
	if g2.Status != "requires_payment_method" || g2.LastPaymentError == nil || g2.LastPaymentError.Code != "payment_intent_authentication_failure" {
		t.Fatalf("after failed 3DS: %s %+v", g2.Status, g2.LastPaymentError)
	}
	// A decline through the API is a 402 card_error carrying the intent.
	_, err = api.PaymentIntents.Confirm(pi2.ID, &stripe.PaymentIntentConfirmParams{PaymentMethod: stripe.String("pm_card_chargeDeclinedInsufficientFunds")})
	se, ok := err.(*stripe.Error)
	if !ok || se.HTTPStatusCode != 402 || se.Code != "card_declined" || se.DeclineCode != "insufficient_funds" || se.PaymentIntent == nil || se.PaymentIntent.ID != pi2.ID {
		t.Fatalf("decline: %#v", err)
	}
	wantEvents(t, sb, rc, "charge.failed", "payment_intent.payment_failed")
}

func refundParams(pi, refundID string, amount int64) *stripe.RefundParams {
	p := &stripe.RefundParams{PaymentIntent: stripe.String(pi), Amount: stripe.Int64(amount), Reason: stripe.String("requested_by_customer")}
	p.AddMetadata(MetadataPaymentKey, "pay_r")
	p.AddMetadata(MetadataRefundKey, refundID)
	p.SetIdempotencyKey("refund-" + refundID)
	return p
}

func TestFlowRefundPendingThenSucceeded(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, Config{})
	rc := newReceiver(t, sb)
	api := stripeAPI(t, sb, testKey)
	pi := newIntent(t, api, "pay_r", 8000)
	must(t, sb.PayIntent(pi.ID, "4000000000007726"))
	rc.reset()
	sb.DeliverAll()
	rc.reset()
	re, err := api.Refunds.New(refundParams(pi.ID, "rf_a", 3000))
	must(t, err)
	if re.Status != "pending" || re.Metadata[MetadataRefundKey] != "rf_a" {
		t.Fatalf("refund %s %v", re.Status, re.Metadata)
	}
	wantEvents(t, sb, rc, "charge.refunded", "refund.created")
	sb.Advance(30 * time.Minute)
	wantEvents(t, sb, rc, "charge.refund.updated", "refund.updated")
	got, err := api.Refunds.Get(re.ID, nil)
	must(t, err)
	if got.Status != "succeeded" {
		t.Fatalf("refund %s", got.Status)
	}
	// Listing by payment_intent finds it (reconcile does this).
	it := api.Refunds.List(&stripe.RefundListParams{PaymentIntent: stripe.String(pi.ID)})
	n := 0
	for it.Next() {
		n++
	}
	must(t, it.Err())
	tr := sb.Truth("pay_r")
	if n != 1 || tr.AmountRefunded != 3000 || tr.AmountRefundSucceeded != 3000 || tr.Refunds[0].PaygateRefundID != "rf_a" {
		t.Fatalf("listed %d, truth %+v", n, tr)
	}
	// Too much is refused, naming amount.
	_, err = api.Refunds.New(refundParams(pi.ID, "rf_b", 6000))
	if se, ok := err.(*stripe.Error); !ok || se.HTTPStatusCode != 400 || se.Param != "amount" || se.Code != "amount_too_large" {
		t.Fatalf("over-refund: %v", err)
	}
}

func TestFlowRefundFailsAfterSucceeding(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, Config{})
	rc := newReceiver(t, sb)
	api := stripeAPI(t, sb, testKey)
	pi := newIntent(t, api, "pay_r", 8000)
	must(t, sb.PayIntent(pi.ID, "pm_card_refundFail"))
	sb.DeliverAll()
	rc.reset()
	re, err := api.Refunds.New(refundParams(pi.ID, "rf_a", 8000))
	must(t, err)
	if re.Status != "succeeded" {
		t.Fatalf("refund %s", re.Status)
	}
	wantEvents(t, sb, rc, "charge.refunded", "refund.created")
	ch, err := api.Charges.Get(re.Charge.ID, nil)
	must(t, err)
	if !ch.Refunded || ch.AmountRefunded != 8000 || ch.Refunds != nil {
		t.Fatalf("charge refunded=%v amount_refunded=%d refunds=%v (2023-10-16 embeds no refunds)", ch.Refunded, ch.AmountRefunded, ch.Refunds)
	}
	sb.Advance(time.Hour)
	wantEvents(t, sb, rc, "charge.refund.updated", "refund.updated", "refund.failed")
	ch, err = api.Charges.Get(re.Charge.ID, nil)
	must(t, err)
	if ch.Refunded || ch.AmountRefunded != 0 {
		t.Fatalf("after the refund failed: refunded=%v amount_refunded=%d", ch.Refunded, ch.AmountRefunded)
	}
	// A Dashboard refund has no paygate metadata; it can be failed by hand.
	rid, err := sb.Refund(pi.ID, 500, "")
	must(t, err)
	must(t, sb.FailRefund(rid, ""))
	wantEvents(t, sb, rc, "charge.refunded", "refund.created", "charge.refund.updated", "refund.updated", "refund.failed")
	if tr := sb.Truth("pay_r"); tr.AmountRefunded != 0 || len(tr.Refunds) != 2 || tr.Refunds[1].PaygateRefundID != "" {
		t.Fatalf("truth %+v", tr)
	}
}

func TestFlowDispute(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, Config{})
	rc := newReceiver(t, sb)
	api := stripeAPI(t, sb, testKey)
	pi := newIntent(t, api, "pay_dp", 2500)
	must(t, sb.PayIntent(pi.ID, "4242424242424242"))
	sb.DeliverAll()
	rc.reset()
	dp, err := sb.Dispute(pi.ID, "")
	must(t, err)
	wantEvents(t, sb, rc, "charge.dispute.created", "charge.dispute.funds_withdrawn")
	must(t, sb.UpdateDispute(dp, "receipt attached"))
	wantEvents(t, sb, rc, "charge.dispute.updated")
	must(t, sb.CloseDispute(dp, false))
	wantEvents(t, sb, rc, "charge.dispute.closed")
	got, err := api.Disputes.Get(dp, nil)
	must(t, err)
	if got.Status != "lost" || got.Charge.ID == "" {
		t.Fatalf("dispute %s", got.Status)
	}
	if _, err := api.Refunds.New(refundParams(pi.ID, "rf_x", 100)); err == nil {
		t.Error("refunded a disputed charge")
	}
	// The dispute test card disputes by itself; winning reinstates funds.
	pi2 := newIntent(t, api, "pay_dp2", 2500)
	must(t, sb.PayIntent(pi2.ID, "4000000000000259"))
	wantEvents(t, sb, rc, "payment_intent.created", "charge.succeeded", "payment_intent.succeeded", "charge.dispute.created", "charge.dispute.funds_withdrawn")
	must(t, sb.CloseDispute(sb.Truth("pay_dp2").Disputes[0].ID, true))
	wantEvents(t, sb, rc, "charge.dispute.closed", "charge.dispute.funds_reinstated")
}

func TestFlowSessionExpires(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, Config{})
	rc := newReceiver(t, sb)
	api := stripeAPI(t, sb, testKey)
	cs := newCheckout(t, api, "pay_x", 900)
	if cs.ExpiresAt != sb.Now().Add(24*time.Hour).Unix() {
		t.Fatalf("expires_at %d", cs.ExpiresAt)
	}
	_ = sb.PaySession(cs.ID, "4000000000000002")
	wantEvents(t, sb, rc, "payment_intent.created", "charge.failed", "payment_intent.payment_failed")
	sb.Advance(24*time.Hour - time.Second)
	wantEvents(t, sb, rc)
	sb.Advance(time.Second)
	wantEvents(t, sb, rc, "checkout.session.expired", "payment_intent.canceled")
	tr := sb.Truth("pay_x")
	if tr.CheckoutSessions[0].Status != "expired" || tr.PaymentIntents[0].Status != "canceled" {
		t.Fatalf("truth %+v", tr)
	}
	_, err := api.CheckoutSessions.Expire(cs.ID, nil)
	if se, ok := err.(*stripe.Error); !ok || se.HTTPStatusCode != 400 {
		t.Fatalf("expire an expired session: %v", err)
	}
	// Expiring through the API works on an open one.
	cs2 := newCheckout(t, api, "pay_y", 900)
	got, err := api.CheckoutSessions.Expire(cs2.ID, nil)
	must(t, err)
	if got.Status != "expired" {
		t.Fatal(got.Status)
	}
	wantEvents(t, sb, rc, "checkout.session.expired")
}

func asAPIError(err error, target **Error) bool { return errors.As(err, target) }
