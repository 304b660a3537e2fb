package paygate_test

import (
	"testing"

	"github.com/numedapp/paygate"
)

// TestRefundBodiesThatMustNotMoveMoney: refund bodies that another reader
// would take otherwise are a 400 naming the field, and nothing is refunded
// (Stripe is not called):
//   - an empty string or null is not an amount (API.md §1; openapi.json:
//     amount is a non-nullable number or numeric string), and only an
//     absent amount means the whole remaining amount (API.md §2);
//   - field names are exact camelCase (openapi.json: additionalProperties
//     false): encoding/json takes "AMOUNT" for amount, so a body that any
//     other JSON reader (a gateway, an audit log, a validator in front)
//     reads as a refund of 1.00 refunded 9.00;
//   - a field given twice (encoding/json lets the last win).
func TestRefundBodiesThatMustNotMoveMoney(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, c := range []struct{ fields, param string }{
		{`"amount": ""`, "amount"},
		{`"amount": null`, "amount"},
		{`"amount": "1.00", "AMOUNT": "9.00"`, "AMOUNT"},
		{`"amount": "1.00", "amount": "9.00"`, "amount"},
	} {
		pi := createIntent(t, e, "10.00")
		e.succeed(pi.PaymentID)
		e.rec.Reset()
		r := e.do("POST", "/api/payments/refund", `{"paymentId": "`+pi.PaymentID+`", `+c.fields+`}`)
		if r.Status != 400 || r.param() != c.param {
			t.Errorf("refund with %s: got %d param %q, want 400 naming %s: %s", c.fields, r.Status, r.param(), c.param, r.Raw)
		}
		var p paygate.PaymentWithHistory
		e.do("GET", "/api/payments/"+pi.PaymentID, "").must(t, 200, &p)
		if p.AmountRefunded != 0 || len(e.rec.Calls()) != 0 {
			t.Errorf("refund with %s refunded %d of %d (status %s); Stripe calls %d", c.fields, p.AmountRefunded, p.Amount, p.Status, len(e.rec.Calls()))
		}
	}
}
