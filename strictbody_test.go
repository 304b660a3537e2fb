package paygate_test

import (
	"testing"

	"github.com/numedapp/paygate"
)

// TestRefundEmptyOrNullAmountIsRefused: an empty string or null is not an
// amount: a refund with "amount": "" or
// "amount": null must be a 400 naming amount (API.md §1: JSON of the wrong
// type or value is a 400 naming the field; openapi.json: amount is a
// non-nullable number or numeric string), not a refund of everything that
// remains (API.md §2: only an absent amount means the whole remaining
// amount).
func TestRefundEmptyOrNullAmountIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, amount := range []string{`""`, `null`} {
		pi := createIntent(t, e, "10.00")
		e.succeed(pi.PaymentID)
		e.rec.Reset()
		r := e.do("POST", "/api/payments/refund", `{"paymentId": "`+pi.PaymentID+`", "amount": `+amount+`}`)
		var p paygate.PaymentWithHistory
		e.do("GET", "/api/payments/"+pi.PaymentID, "").must(t, 200, &p)
		if r.Status != 400 || r.param() != "amount" {
			t.Errorf(`refund with "amount": %s: got %d param %q, want 400 naming amount: %s`, amount, r.Status, r.param(), r.Raw)
		}
		if p.AmountRefunded != 0 || len(e.rec.Calls()) != 0 {
			t.Errorf(`refund with "amount": %s refunded %d of %d (status %s); Stripe calls %d`, amount, p.AmountRefunded, p.Amount, p.Status, len(e.rec.Calls()))
		}
	}
}

// TestFieldNamesAreExact: field names are camelCase and unknown fields are
// a 400 (API.md §1;
// openapi.json: additionalProperties false). encoding/json matches field
// names case-insensitively, so "AMOUNT" is taken for amount: a body that
// any other JSON reader (a gateway, an audit log, a validator in front)
// reads as a refund of 1.00 refunds 9.00.
func TestFieldNamesAreExact(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pi := createIntent(t, e, "10.00")
	e.succeed(pi.PaymentID)
	e.rec.Reset()
	r := e.do("POST", "/api/payments/refund", `{"paymentId": "`+pi.PaymentID+`", "amount": "1.00", "AMOUNT": "9.00"}`)
	if r.Status != 400 || r.param() != "AMOUNT" {
		t.Errorf(`refund with "AMOUNT": got %d param %q, want 400 naming AMOUNT: %s`, r.Status, r.param(), r.Raw)
	}
	var p paygate.PaymentWithHistory
	e.do("GET", "/api/payments/"+pi.PaymentID, "").must(t, 200, &p)
	if p.AmountRefunded != 0 || len(e.rec.Calls()) != 0 {
		t.Errorf(`a body with "amount": "1.00" refunded %d (Stripe calls %d)`, p.AmountRefunded, len(e.rec.Calls()))
	}
}

// TestFieldGivenTwiceIsRefused: a field given twice is a 400 naming it
// (encoding/json lets the last win), and nothing is refunded.
func TestFieldGivenTwiceIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pi := createIntent(t, e, "10.00")
	e.succeed(pi.PaymentID)
	e.rec.Reset()
	r := e.do("POST", "/api/payments/refund", `{"paymentId": "`+pi.PaymentID+`", "amount": "1.00", "amount": "9.00"}`)
	if r.Status != 400 || r.param() != "amount" {
		t.Errorf("refund with amount twice: got %d param %q, want 400 naming amount: %s", r.Status, r.param(), r.Raw)
	}
	if len(e.rec.Calls()) != 0 {
		t.Errorf("Stripe called %d times", len(e.rec.Calls()))
	}
}
