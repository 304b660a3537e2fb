package paygate_test

import (
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/sandbox"
)

// Scenario tests: each drives paygate's HTTP API and the sandbox through one
// of issue 9's flows, end to end, and asserts that paygate's record equals
// the sandbox's truth (checkTruth: status, amounts, ids, refunds; callbacks
// one per history change, once each, in sequence order), plus the flow's
// own history and callbacks.

const (
	cardOK        = "4242424242424242"
	cardDecline   = "4000000000000002"
	card3DS       = "4000002760003184"
	cardDispute   = "4000000000000259"
	cardRefundBad = "4000000000005126" // refunds succeed, then fail after RefundFailAfter
	debitOK       = "000123456789"
	debitFail     = "000111111113"
)

// wantSeq compares a list with want, naming what it is.
func wantSeq(t *testing.T, what string, want, got []string) {
	t.Helper()
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

func TestScenarioLinkPaidAtOnce(t *testing.T) {
	t.Parallel()
	e := newSBEnv(t, sbOpts{})
	p := e.createLink(t, `{"amount":"25.00","productName":"Consultation","metadata":{"orderId":"A-1"}}`)
	if p.Status != paygate.StatusPending || p.PaymentURL != e.sb.URL()+"/pay/"+p.PaymentLinkID {
		t.Fatalf("created %+v", p)
	}
	if _, err := e.sb.PayLink(p.PaymentLinkID, cardOK); err != nil {
		t.Fatal(err)
	}
	e.flush()
	got := e.checkTruth(t, p.ID)
	if got.Status != paygate.StatusSucceeded || got.Amount != 2500 || got.PaymentIntentID == "" || got.ChargeID == "" {
		t.Fatalf("payment %+v", got.Payment)
	}
	wantSeq(t, "callbacks", []string{"payment_succeeded", "checkout_completed"}, e.actions(p.ID))
	e.checkMerchant(t)
}

func TestScenarioLinkDeclinedThenPaid(t *testing.T) {
	t.Parallel()
	e := newSBEnv(t, sbOpts{})
	p := e.createLink(t, `{"amount":"19.99"}`)
	if _, err := e.sb.PayLink(p.PaymentLinkID, cardDecline); err == nil {
		t.Fatal("the decline card paid")
	}
	e.flush()
	first := e.checkTruth(t, p.ID)
	if first.Status != paygate.StatusFailed {
		t.Fatalf("after the decline: %s", first.Status)
	}
	if _, err := e.sb.PayLink(p.PaymentLinkID, cardOK); err != nil {
		t.Fatal(err)
	}
	e.flush()
	got := e.checkTruth(t, p.ID)
	tr := e.sb.Truth(p.ID)
	if got.Status != paygate.StatusSucceeded || len(tr.PaymentIntents) != 2 || got.PaymentIntentID != tr.PaymentIntents[1].ID ||
		got.CheckoutSessionID != tr.CheckoutSessions[1].ID {
		t.Fatalf("payment %+v; truth %+v", got.Payment, tr)
	}
	// Both attempts' ids find the payment.
	for _, pi := range tr.PaymentIntents {
		var st paygate.IntentStatus
		e.do("GET", "/api/payments/payment-intent/"+pi.ID, "").into(t, 200, &st)
		if st.PaymentID != p.ID {
			t.Errorf("%s finds %s", pi.ID, st.PaymentID)
		}
	}
	e.flush()
	wantSeq(t, "callbacks", []string{"payment_failed", "payment_succeeded", "checkout_completed"}, e.actions(p.ID))
	// The first session expires a day later: the paid link does not move.
	e.advance(25 * time.Hour)
	e.checkTruth(t, p.ID)
	wantSeq(t, "callbacks after the first session expired", []string{"payment_failed", "payment_succeeded", "checkout_completed"}, e.actions(p.ID))
	e.checkMerchant(t)
}

func TestScenarioCheckoutAsyncDebit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, method string
		settle       func(e *sbEnv, pi string)
		want         paygate.Status
		actions      []string
	}{
		{"settles", debitOK, func(e *sbEnv, _ string) { e.advance(73 * time.Hour) }, paygate.StatusSucceeded,
			[]string{"payment_processing", "checkout_completed", "payment_succeeded"}},
		{"fails", debitFail, func(e *sbEnv, _ string) { e.advance(73 * time.Hour) }, paygate.StatusFailed,
			[]string{"payment_processing", "checkout_completed", "payment_failed"}},
		{"settled from the Dashboard", debitOK, func(e *sbEnv, pi string) {
			if err := e.sb.Settle(pi, true); err != nil {
				e.t.Fatal(err)
			}
			e.flush()
		}, paygate.StatusSucceeded, []string{"payment_processing", "checkout_completed", "payment_succeeded"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newSBEnv(t, sbOpts{})
			c := e.createCheckout(t, `{"amount":"120.00","productName":"Visit","successUrl":"https://shop.example/ok","cancelUrl":"https://shop.example/no"}`)
			if err := e.sb.PaySession(c.SessionID, tc.method); err != nil {
				t.Fatal(err)
			}
			e.flush()
			mid := e.checkTruth(t, c.PaymentID)
			if mid.Status != paygate.StatusProcessing {
				t.Fatalf("while the debit is processing: %s", mid.Status)
			}
			tc.settle(e, e.sb.SessionIntent(c.SessionID))
			got := e.checkTruth(t, c.PaymentID)
			if got.Status != tc.want || got.CheckoutSessionID != c.SessionID {
				t.Fatalf("payment %+v", got.Payment)
			}
			wantSeq(t, "callbacks", tc.actions, e.actions(c.PaymentID))
			e.checkMerchant(t)
		})
	}
}

func TestScenarioIntentWith3DS(t *testing.T) {
	t.Parallel()
	e := newSBEnv(t, sbOpts{})
	in := e.createIntent(t, `{"amount":"15.00","customerEmail":"pat@example.com"}`)
	if in.Status != "requires_payment_method" || in.ClientSecret == "" {
		t.Fatalf("created %+v", in)
	}
	// The Payment Element confirms; 3D Secure is required.
	if err := e.sb.PayIntent(in.PaymentIntentID, card3DS); err != nil {
		t.Fatal(err)
	}
	e.flush()
	mid := e.checkTruth(t, in.PaymentID)
	if mid.Status != paygate.StatusPending {
		t.Fatalf("awaiting 3DS: %s", mid.Status)
	}
	if err := e.sb.Authenticate(in.PaymentIntentID, true); err != nil {
		t.Fatal(err)
	}
	e.flush()
	got := e.checkTruth(t, in.PaymentID)
	if got.Status != paygate.StatusSucceeded || got.PaymentIntentID != in.PaymentIntentID {
		t.Fatalf("payment %+v", got.Payment)
	}
	wantSeq(t, "callbacks", []string{"payment_succeeded"}, e.actions(in.PaymentID))
	e.checkMerchant(t)
}

// A failed 3D Secure challenge leaves the PaymentIntent payable: failed,
// then a second try succeeds.
func TestScenarioIntent3DSFailedThenPaid(t *testing.T) {
	t.Parallel()
	e := newSBEnv(t, sbOpts{})
	in := e.createIntent(t, `{"amount":"15.00"}`)
	if err := e.sb.PayIntent(in.PaymentIntentID, card3DS); err != nil {
		t.Fatal(err)
	}
	if err := e.sb.Authenticate(in.PaymentIntentID, false); err != nil {
		t.Fatal(err)
	}
	e.flush()
	if got := e.checkTruth(t, in.PaymentID); got.Status != paygate.StatusFailed {
		t.Fatalf("after a failed challenge: %s", got.Status)
	}
	if err := e.sb.PayIntent(in.PaymentIntentID, cardOK); err != nil {
		t.Fatal(err)
	}
	e.flush()
	if got := e.checkTruth(t, in.PaymentID); got.Status != paygate.StatusSucceeded {
		t.Fatalf("after paying: %s", got.Status)
	}
	wantSeq(t, "callbacks", []string{"payment_failed", "payment_succeeded"}, e.actions(in.PaymentID))
}

// paidIntent makes an intent payment and pays it with card.
func (e *sbEnv) paidIntent(t *testing.T, amount, card string) *paygate.CreatedIntent {
	t.Helper()
	in := e.createIntent(t, `{"amount":"`+amount+`"}`)
	if err := e.sb.PayIntent(in.PaymentIntentID, card); err != nil {
		t.Fatal(err)
	}
	e.flush()
	return in
}

func TestScenarioPartialAPIRefundThenDashboardRefund(t *testing.T) {
	t.Parallel()
	e := newSBEnv(t, sbOpts{})
	in := e.paidIntent(t, "30.00", cardOK)
	r := e.refund(t, `{"paymentIntentId":"`+in.PaymentIntentID+`","amount":"10.00","reason":"requested_by_customer"}`, "Idempotency-Key", "refund-1")
	if r.Amount != 1000 || r.Status != paygate.RefundSucceeded || r.RefundID == "" {
		t.Fatalf("refund %+v", r)
	}
	e.flush()
	mid := e.checkTruth(t, in.PaymentID)
	if mid.Status != paygate.StatusPartiallyRefunded || mid.AmountRefunded != 1000 {
		t.Fatalf("after the API refund: %s %d", mid.Status, mid.AmountRefunded)
	}
	// A Dashboard refund of 5.00: paygate learns it from the webhooks only.
	if _, err := e.sb.Refund(in.PaymentIntentID, 500, "duplicate"); err != nil {
		t.Fatal(err)
	}
	e.flush()
	got := e.checkTruth(t, in.PaymentID)
	if got.Status != paygate.StatusPartiallyRefunded || got.AmountRefunded != 1500 || len(got.Refunds) != 2 {
		t.Fatalf("after the Dashboard refund: %+v", got.Payment)
	}
	// Then the rest from the Dashboard: refunded.
	if _, err := e.sb.Refund(in.PaymentIntentID, 0, ""); err != nil {
		t.Fatal(err)
	}
	e.flush()
	got = e.checkTruth(t, in.PaymentID)
	if got.Status != paygate.StatusRefunded || got.AmountRefunded != 3000 {
		t.Fatalf("after refunding the rest: %+v", got.Payment)
	}
	// Nothing remains: the API says so.
	if r := e.do("POST", "/api/payments/refund", `{"paymentId":"`+in.PaymentID+`"}`); r.Status != http.StatusConflict {
		t.Errorf("refunding a refunded payment: %s", r.Raw)
	}
	// A Dashboard refund is first known from charge.refunded (no id), then
	// announced again with its id from refund.created (docs/decisions.md).
	wantSeq(t, "callbacks", []string{"payment_succeeded", "refund_created", "refund_created", "refund_updated", "refund_created", "refund_updated"}, e.actions(in.PaymentID))
	e.checkMerchant(t)
}

func TestScenarioRefundFailsAfterSucceeding(t *testing.T) {
	t.Parallel()
	e := newSBEnv(t, sbOpts{})
	in := e.paidIntent(t, "40.00", cardRefundBad)
	r := e.refund(t, `{"paymentId":"`+in.PaymentID+`"}`)
	if r.Amount != 4000 || r.Status != paygate.RefundSucceeded {
		t.Fatalf("refund %+v", r)
	}
	e.flush()
	if mid := e.checkTruth(t, in.PaymentID); mid.Status != paygate.StatusRefunded {
		t.Fatalf("after the refund: %s", mid.Status)
	}
	e.advance(2 * time.Hour) // the bank returns it
	got := e.checkTruth(t, in.PaymentID)
	tr := e.sb.Truth(in.PaymentID)
	if got.Status != paygate.StatusSucceeded || got.AmountRefunded != 0 || len(tr.Refunds) != 1 || tr.Refunds[0].Status != "failed" ||
		got.Refunds[0].Status != paygate.RefundFailed {
		t.Fatalf("after the refund failed: %+v; truth %+v", got.Payment, tr)
	}
	wantSeq(t, "callbacks", []string{"payment_succeeded", "refund_created", "refund_updated"}, e.actions(in.PaymentID))
	cbs, _ := e.m.of(in.PaymentID)
	if last := cbs[len(cbs)-1]; last.Data.RefundStatus != "failed" || last.Data.AmountRefunded == nil || *last.Data.AmountRefunded != 0 || last.Data.Status != "succeeded" {
		t.Errorf("the failure's callback: %+v", last)
	}
	// The money is back: it can be refunded again.
	r2 := e.refund(t, `{"paymentId":"`+in.PaymentID+`","amount":"1.00"}`)
	e.flush()
	if got := e.checkTruth(t, in.PaymentID); got.AmountRefunded != 100 || r2.Amount != 100 {
		t.Fatalf("a second refund: %+v", got.Payment)
	}
	e.checkMerchant(t)
}

func TestScenarioDispute(t *testing.T) {
	t.Parallel()
	e := newSBEnv(t, sbOpts{})
	in := e.paidIntent(t, "80.00", cardOK)
	dp, err := e.sb.Dispute(in.PaymentIntentID, "product_not_received")
	if err != nil {
		t.Fatal(err)
	}
	e.flush()
	e.checkTruth(t, in.PaymentID)
	if err := e.sb.UpdateDispute(dp, "tracking 1Z999"); err != nil {
		t.Fatal(err)
	}
	e.flush()
	if err := e.sb.CloseDispute(dp, false); err != nil {
		t.Fatal(err)
	}
	e.flush()
	got := e.checkTruth(t, in.PaymentID)
	if got.Status != paygate.StatusSucceeded {
		t.Fatalf("a dispute moved the status: %s", got.Status)
	}
	wantSeq(t, "history", []string{"payment_created", "payment_succeeded", "dispute_created", "dispute_updated", "dispute_closed"}, types(got))
	wantSeq(t, "callbacks", []string{"payment_succeeded", "dispute_created", "dispute_updated", "dispute_closed"}, e.actions(in.PaymentID))
	cbs, _ := e.m.of(in.PaymentID)
	for i, want := range []string{"", "needs_response", "under_review", "lost"} {
		if i > 0 && (cbs[i].Data.DisputeID != dp || cbs[i].Data.DisputeStatus != want) {
			t.Errorf("callback %d: dispute %s %s, want %s %s", i, cbs[i].Data.DisputeID, cbs[i].Data.DisputeStatus, dp, want)
		}
	}
	if tr := e.sb.Truth(in.PaymentID); len(tr.Disputes) != 1 || tr.Disputes[0].Status != "lost" {
		t.Errorf("truth %+v", tr.Disputes)
	}
	e.checkMerchant(t)
}

func TestScenarioExpiredSession(t *testing.T) {
	t.Parallel()
	t.Run("checkout", func(t *testing.T) {
		t.Parallel()
		e := newSBEnv(t, sbOpts{})
		c := e.createCheckout(t, `{"amount":"9.00","successUrl":"https://shop.example/ok","cancelUrl":"https://shop.example/no"}`)
		e.advance(24*time.Hour + time.Minute)
		got := e.checkTruth(t, c.PaymentID)
		if got.Status != paygate.StatusExpired {
			t.Fatalf("status %s", got.Status)
		}
		wantSeq(t, "callbacks", []string{"checkout_expired"}, e.actions(c.PaymentID))
		e.checkMerchant(t)
	})
	t.Run("checkout after a decline", func(t *testing.T) {
		t.Parallel()
		e := newSBEnv(t, sbOpts{})
		c := e.createCheckout(t, `{"amount":"9.00","successUrl":"https://shop.example/ok","cancelUrl":"https://shop.example/no"}`)
		if err := e.sb.PaySession(c.SessionID, cardDecline); err == nil {
			t.Fatal("the decline card paid")
		}
		e.flush()
		if err := e.sb.ExpireSession(c.SessionID); err != nil {
			t.Fatal(err)
		}
		e.flush()
		got := e.checkTruth(t, c.PaymentID)
		if got.Status != paygate.StatusExpired {
			t.Fatalf("status %s", got.Status)
		}
		wantSeq(t, "callbacks", []string{"payment_failed", "checkout_expired"}, e.actions(c.PaymentID))
	})
	t.Run("link", func(t *testing.T) {
		t.Parallel()
		e := newSBEnv(t, sbOpts{})
		p := e.createLink(t, `{"amount":"9.00"}`)
		cs, err := e.sb.VisitLink(p.PaymentLinkID)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.sb.ExpireSession(cs); err != nil {
			t.Fatal(err)
		}
		e.flush()
		got := e.checkTruth(t, p.ID)
		if got.Status != paygate.StatusPending {
			t.Fatalf("an abandoned visit ended the link: %s", got.Status)
		}
		// Still payable.
		if _, err := e.sb.PayLink(p.PaymentLinkID, cardOK); err != nil {
			t.Fatal(err)
		}
		e.flush()
		if got := e.checkTruth(t, p.ID); got.Status != paygate.StatusSucceeded {
			t.Fatalf("status %s", got.Status)
		}
		wantSeq(t, "callbacks", []string{"payment_succeeded", "checkout_completed"}, e.actions(p.ID))
		e.checkMerchant(t)
	})
}

// countPayments counts the payments paygate lists.
func (e *sbEnv) countPayments(t *testing.T) int {
	t.Helper()
	var page paygate.Page[paygate.Payment]
	e.do("GET", "/api/payments", "").into(t, 200, &page)
	return int(page.Total)
}

// Stripe fails mid-create: the same Idempotency-Key retried gives one
// Stripe object and one payment.
func TestScenarioStripeFailsMidCreate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		fault  sandbox.Fault
		status int
	}{
		{"500 after execute", sandbox.Fault{Method: "POST", Status: 500, AfterExecute: true}, http.StatusBadGateway},
		{"429", sandbox.Fault{Method: "POST", Status: 429}, http.StatusTooManyRequests},
	} {
		for _, kind := range []string{"intent", "checkout", "link"} {
			t.Run(tc.name+"/"+kind, func(t *testing.T) {
				t.Parallel()
				e := newSBEnv(t, sbOpts{})
				path, body, stripePath := "/api/payments/payment-intent", `{"amount":"12.00"}`, "/v1/payment_intents"
				switch kind {
				case "checkout":
					path, stripePath = "/api/payments/checkout-session", "/v1/checkout/sessions"
					body = `{"amount":"12.00","successUrl":"https://shop.example/ok","cancelUrl":"https://shop.example/no"}`
				case "link":
					path, stripePath = "/api/payments/generate-url", "/v1/payment_links"
				}
				f := tc.fault
				f.Path = stripePath
				e.sb.FailNext(f)
				key := "create-" + kind
				if r := e.do("POST", path, body, "Idempotency-Key", key); r.Status != tc.status {
					t.Fatalf("with the fault: %d, want %d: %s", r.Status, tc.status, r.Raw)
				}
				r := e.do("POST", path, body, "Idempotency-Key", key)
				var created struct {
					ID, PaymentID, PaymentIntentID, SessionID, PaymentLinkID string
				}
				r.into(t, 201, &created)
				id := created.PaymentID
				if kind == "link" {
					id = created.ID
				}
				// A third call replays.
				if r3 := e.do("POST", path, body, "Idempotency-Key", key); r3.Status != 201 || r3.Header.Get("Idempotent-Replayed") != "true" {
					t.Errorf("replay: %d %v", r3.Status, r3.Header)
				}
				tr := e.sb.Truth(id)
				n := len(tr.PaymentIntents) + len(tr.CheckoutSessions) + len(tr.PaymentLinks)
				if n != 1 || e.countPayments(t) != 1 {
					t.Fatalf("Stripe objects %d (truth %+v), payments %d", n, tr, e.countPayments(t))
				}
				// And it is payable, once.
				switch kind {
				case "intent":
					err := e.sb.PayIntent(created.PaymentIntentID, cardOK)
					if err != nil {
						t.Fatal(err)
					}
				case "checkout":
					if err := e.sb.PaySession(created.SessionID, cardOK); err != nil {
						t.Fatal(err)
					}
				case "link":
					if _, err := e.sb.PayLink(created.PaymentLinkID, cardOK); err != nil {
						t.Fatal(err)
					}
				}
				e.flush()
				got := e.checkTruth(t, id)
				if got.Status != paygate.StatusSucceeded || got.Amount != 1200 {
					t.Fatalf("payment %+v", got.Payment)
				}
			})
		}
	}
}

// Stripe fails mid-refund: the same Idempotency-Key retried gives one
// Stripe refund, one paygate refund that counts, the right amounts.
func TestScenarioStripeFailsMidRefund(t *testing.T) {
	t.Parallel()
	t.Run("500 after execute", func(t *testing.T) {
		t.Parallel()
		e := newSBEnv(t, sbOpts{})
		in := e.paidIntent(t, "50.00", cardOK)
		e.sb.FailNext(sandbox.Fault{Path: "/v1/refunds", Method: "POST", Status: 500, AfterExecute: true})
		body := `{"paymentId":"` + in.PaymentID + `","amount":"20.00"}`
		if r := e.do("POST", "/api/payments/refund", body, "Idempotency-Key", "rf-500"); r.Status != http.StatusBadGateway {
			t.Fatalf("with the fault: %s", r.Raw)
		}
		// The outcome is unknown: the reservation counts meanwhile.
		if p := e.payment(t, in.PaymentID); p.AmountRefunded != 2000 || len(p.Refunds) != 1 || p.Refunds[0].Status != paygate.RefundPending {
			t.Fatalf("after the fault: %+v", p.Payment)
		}
		r := e.refund(t, body, "Idempotency-Key", "rf-500")
		if r.Amount != 2000 || r.RefundID == "" {
			t.Fatalf("retry %+v", r)
		}
		e.flush()
		got := e.checkTruth(t, in.PaymentID)
		if tr := e.sb.Truth(in.PaymentID); len(tr.Refunds) != 1 || got.AmountRefunded != 2000 || len(got.Refunds) != 1 || got.Refunds[0].StripeRefundID != tr.Refunds[0].ID {
			t.Fatalf("payment %+v; truth %+v", got.Payment, tr.Refunds)
		}
		wantSeq(t, "callbacks", []string{"payment_succeeded", "refund_created"}, e.actions(in.PaymentID))
	})
	t.Run("500 after execute, webhooks first", func(t *testing.T) {
		t.Parallel()
		e := newSBEnv(t, sbOpts{})
		in := e.paidIntent(t, "50.00", cardOK)
		e.sb.FailNext(sandbox.Fault{Path: "/v1/refunds", Method: "POST", Status: 500, AfterExecute: true})
		body := `{"paymentId":"` + in.PaymentID + `","amount":"20.00"}`
		if r := e.do("POST", "/api/payments/refund", body, "Idempotency-Key", "rf-500"); r.Status != http.StatusBadGateway {
			t.Fatalf("with the fault: %s", r.Raw)
		}
		e.flush() // Stripe's refund webhooks confirm the reservation
		r := e.refund(t, body, "Idempotency-Key", "rf-500")
		e.flush()
		got := e.checkTruth(t, in.PaymentID)
		if tr := e.sb.Truth(in.PaymentID); len(tr.Refunds) != 1 || got.AmountRefunded != 2000 || len(got.Refunds) != 1 || r.RefundID != tr.Refunds[0].ID {
			t.Fatalf("payment %+v; truth %+v; retry %+v", got.Payment, tr.Refunds, r)
		}
		wantSeq(t, "callbacks", []string{"payment_succeeded", "refund_created"}, e.actions(in.PaymentID))
	})
	t.Run("429", func(t *testing.T) {
		t.Parallel()
		e := newSBEnv(t, sbOpts{})
		in := e.paidIntent(t, "50.00", cardOK)
		e.sb.FailNext(sandbox.Fault{Path: "/v1/refunds", Method: "POST", Status: 429})
		body := `{"paymentId":"` + in.PaymentID + `","amount":"20.00"}`
		if r := e.do("POST", "/api/payments/refund", body, "Idempotency-Key", "rf-429"); r.Status != http.StatusTooManyRequests {
			t.Fatalf("with the fault: %s", r.Raw)
		}
		if p := e.payment(t, in.PaymentID); p.AmountRefunded != 0 || p.Status != paygate.StatusSucceeded {
			t.Fatalf("a refused refund still counts: %+v", p.Payment)
		}
		r := e.refund(t, body, "Idempotency-Key", "rf-429")
		e.flush()
		got := e.checkTruth(t, in.PaymentID)
		tr := e.sb.Truth(in.PaymentID)
		if len(tr.Refunds) != 1 || r.RefundID != tr.Refunds[0].ID || got.AmountRefunded != 2000 || got.Status != paygate.StatusPartiallyRefunded {
			t.Fatalf("payment %+v; truth %+v", got.Payment, tr.Refunds)
		}
		// paygate keeps the refused reservation as failed, and the retry's.
		var st []string
		for _, r := range got.Refunds {
			st = append(st, string(r.Status)+" "+r.StripeRefundID)
		}
		sort.Strings(st)
		if len(st) != 2 || st[0] != "failed " || st[1] != "succeeded "+r.RefundID {
			t.Errorf("refund records %v", st)
		}
		wantSeq(t, "callbacks", []string{"payment_succeeded", "refund_created"}, e.actions(in.PaymentID))
	})
}

// A status read before the webhook catches up and calls back; the webhook
// then changes nothing: one callback, not two.
func TestScenarioStatusReadBeforeWebhook(t *testing.T) {
	t.Parallel()
	e := newSBEnv(t, sbOpts{})
	in := e.createIntent(t, `{"amount":"7.00"}`)
	if err := e.sb.PayIntent(in.PaymentIntentID, cardOK); err != nil {
		t.Fatal(err)
	}
	var st paygate.IntentStatus
	e.do("GET", "/api/payments/payment-intent/"+in.PaymentIntentID, "").into(t, 200, &st)
	if st.Status != "succeeded" || st.PaymentStatus != paygate.StatusSucceeded || st.AmountReceived != 700 {
		t.Fatalf("status read %+v", st)
	}
	e.callbacks()
	wantSeq(t, "callbacks after the read", []string{"payment_succeeded"}, e.actions(in.PaymentID))
	e.flush() // now the webhooks
	got := e.checkTruth(t, in.PaymentID)
	wantSeq(t, "callbacks after the webhooks", []string{"payment_succeeded"}, e.actions(in.PaymentID))
	if got.History[1].Source != paygate.SourceReconcile {
		t.Errorf("history %s", historyText(got.History))
	}
	e.checkMerchant(t)
}
