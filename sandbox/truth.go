package sandbox

import (
	"fmt"
)

// MetadataPaymentKey and MetadataRefundKey are the metadata keys paygate
// puts on the Stripe objects it creates; Truth groups objects by the first.
const (
	MetadataPaymentKey = "paygate_payment_id"
	MetadataRefundKey  = "paygate_refund_id"
)

// PaymentTruth is the sandbox's view of one paygate payment: every Stripe
// object carrying its paygate_payment_id, and the money they moved. A
// property test compares paygate's record with it.
type PaymentTruth struct {
	PaymentID        string
	PaymentLinks     []string
	CheckoutSessions []SessionTruth
	PaymentIntents   []IntentTruth
	// Succeeded is the PaymentIntent that succeeded ("" when none did).
	Succeeded string
	// Processing is a PaymentIntent still processing ("" when none is).
	Processing string
	Charges    []ChargeTruth
	// AmountPaid is the sum of succeeded charges.
	AmountPaid int64
	// AmountRefunded is what Stripe's charges report as refunded: pending
	// and succeeded refunds (failed and canceled ones give it back).
	AmountRefunded int64
	// AmountRefundSucceeded counts succeeded refunds only.
	AmountRefundSucceeded int64
	Refunds               []RefundTruth
	Disputes              []DisputeTruth
}

// SessionTruth is one Checkout Session of a payment.
type SessionTruth struct {
	ID, Status, PaymentStatus, PaymentIntent, PaymentLink string
}

// IntentTruth is one PaymentIntent of a payment.
type IntentTruth struct {
	ID, Status, Currency, LatestCharge string
	Amount, AmountReceived             int64
}

// ChargeTruth is one charge of a payment.
type ChargeTruth struct {
	ID, PaymentIntent, Status string
	Amount, AmountRefunded    int64
	Disputed                  bool
}

// RefundTruth is one refund of a payment. PaygateRefundID is its
// paygate_refund_id metadata ("" for a Dashboard refund).
type RefundTruth struct {
	ID, Charge, PaymentIntent, Status, Reason, FailureReason, PaygateRefundID string
	Amount                                                                    int64
}

// DisputeTruth is one dispute of a payment.
type DisputeTruth struct {
	ID, Charge, PaymentIntent, Status, Reason string
	Amount                                    int64
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// Truth returns the sandbox's view of the payment with this
// paygate_payment_id (a zero PaymentTruth with only PaymentID when the
// sandbox has nothing for it).
func (s *Sandbox) Truth(paymentID string) PaymentTruth {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.truths(paymentID)[paymentID]; ok {
		return t
	}
	return PaymentTruth{PaymentID: paymentID}
}

// Truths returns the truth of every payment id the sandbox has seen in
// metadata (or as a Checkout Session's client_reference_id), by payment id.
func (s *Sandbox) Truths() map[string]PaymentTruth {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.truths("")
}

func paymentIDOf(v any) string {
	switch m := v.(type) {
	case map[string]any:
		return str(m[MetadataPaymentKey])
	case map[string]string:
		return m[MetadataPaymentKey]
	}
	return ""
}

// truths builds the truth of one payment id (or of all, for "") in one pass
// over the objects, oldest first. Callers hold mu.
func (s *Sandbox) truths(only string) map[string]PaymentTruth {
	out := map[string]*PaymentTruth{}
	get := func(id string) *PaymentTruth {
		if id == "" || only != "" && id != only {
			return nil
		}
		t := out[id]
		if t == nil {
			t = &PaymentTruth{PaymentID: id}
			out[id] = t
		}
		return t
	}
	linkOwner := map[string]string{}
	piOwner := map[string]string{}
	chargeOwner := map[string]string{}
	for _, lid := range s.byType["payment_link"] {
		l := s.objs[lid]
		pid := paymentIDOf(l["payment_intent_data"].(obj)["metadata"])
		if pid == "" {
			pid = paymentIDOf(l["metadata"])
		}
		if t := get(pid); t != nil {
			t.PaymentLinks = append(t.PaymentLinks, lid)
			linkOwner[lid] = pid
		}
	}
	for _, cid := range s.byType["checkout.session"] {
		cs := s.objs[cid]
		pid := paymentIDOf(cs["_pi_metadata"])
		if pid == "" {
			pid = paymentIDOf(cs["metadata"])
		}
		if pid == "" {
			pid = linkOwner[str(cs["payment_link"])]
		}
		if pid == "" {
			pid = str(cs["client_reference_id"])
		}
		if t := get(pid); t != nil {
			t.CheckoutSessions = append(t.CheckoutSessions, SessionTruth{ID: cid, Status: str(cs["status"]),
				PaymentStatus: str(cs["payment_status"]), PaymentIntent: str(cs["payment_intent"]), PaymentLink: str(cs["payment_link"])})
		}
	}
	for _, id := range s.byType["payment_intent"] {
		pi := s.objs[id]
		pid := paymentIDOf(pi["metadata"])
		t := get(pid)
		if t == nil {
			continue
		}
		piOwner[id] = pid
		t.PaymentIntents = append(t.PaymentIntents, IntentTruth{ID: id, Status: str(pi["status"]), Currency: str(pi["currency"]),
			LatestCharge: str(pi["latest_charge"]), Amount: toInt(pi["amount"]), AmountReceived: toInt(pi["amount_received"])})
		switch pi["status"] {
		case "succeeded":
			t.Succeeded = id
		case "processing":
			t.Processing = id
		}
	}
	for _, id := range s.byType["charge"] {
		ch := s.objs[id]
		pid, ok := piOwner[str(ch["payment_intent"])]
		if !ok {
			continue
		}
		t := out[pid]
		chargeOwner[id] = pid
		t.Charges = append(t.Charges, ChargeTruth{ID: id, PaymentIntent: str(ch["payment_intent"]), Status: str(ch["status"]),
			Amount: toInt(ch["amount"]), AmountRefunded: toInt(ch["amount_refunded"]), Disputed: ch["disputed"] == true})
		if ch["status"] == "succeeded" {
			t.AmountPaid += toInt(ch["amount"])
			t.AmountRefunded += toInt(ch["amount_refunded"])
		}
	}
	for _, id := range s.byType["refund"] {
		re := s.objs[id]
		pid, ok := chargeOwner[str(re["charge"])]
		if !ok {
			continue
		}
		t := out[pid]
		md, _ := re["metadata"].(map[string]any)
		t.Refunds = append(t.Refunds, RefundTruth{ID: id, Charge: str(re["charge"]), PaymentIntent: str(re["payment_intent"]),
			Status: str(re["status"]), Reason: str(re["reason"]), FailureReason: str(re["failure_reason"]),
			PaygateRefundID: str(md[MetadataRefundKey]), Amount: toInt(re["amount"])})
		if re["status"] == "succeeded" {
			t.AmountRefundSucceeded += toInt(re["amount"])
		}
	}
	for _, id := range s.byType["dispute"] {
		dp := s.objs[id]
		pid, ok := chargeOwner[str(dp["charge"])]
		if !ok {
			continue
		}
		t := out[pid]
		t.Disputes = append(t.Disputes, DisputeTruth{ID: id, Charge: str(dp["charge"]), PaymentIntent: str(dp["payment_intent"]),
			Status: str(dp["status"]), Reason: str(dp["reason"]), Amount: toInt(dp["amount"])})
	}
	res := make(map[string]PaymentTruth, len(out))
	for id, t := range out {
		res[id] = *t
	}
	return res
}

// Untagged lists the objects made through the API that lack the metadata
// paygate promises: prices, payment links, Checkout Sessions and
// PaymentIntents without metadata.paygate_payment_id (a session's
// PaymentIntent is checked too: its metadata comes from
// payment_intent_data), and refunds without paygate_payment_id or
// paygate_refund_id. Dashboard refunds and products are not checked.
// A scenario test expects it to be empty.
func (s *Sandbox) Untagged() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, typ := range []string{"price", "payment_link", "checkout.session", "payment_intent", "refund"} {
		for _, id := range s.byType[typ] {
			o := s.objs[id]
			api := o["_api"] == true && o["_inline"] != true
			if typ == "payment_intent" {
				if cs := s.sessionOf(o); cs != nil {
					api = cs["_api"] == true
				}
			}
			if !api {
				continue
			}
			md, _ := o["metadata"].(map[string]any)
			if str(md[MetadataPaymentKey]) == "" {
				out = append(out, typ+" "+id+": no metadata."+MetadataPaymentKey)
			}
			if typ == "refund" && str(md[MetadataRefundKey]) == "" {
				out = append(out, typ+" "+id+": no metadata."+MetadataRefundKey)
			}
		}
	}
	return out
}
