package sandbox

import (
	"fmt"
	"sort"
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

func metaHas(v any, id string) bool {
	switch m := v.(type) {
	case map[string]any:
		return str(m[MetadataPaymentKey]) == id
	case map[string]string:
		return m[MetadataPaymentKey] == id
	}
	return false
}

// Truth returns the sandbox's view of the payment with this
// paygate_payment_id (a zero PaymentTruth with only PaymentID when the
// sandbox has nothing for it).
func (s *Sandbox) Truth(paymentID string) PaymentTruth {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.truth(paymentID)
}

// Truths returns the truth of every payment id the sandbox has seen in
// metadata, by payment id.
func (s *Sandbox) Truths() map[string]PaymentTruth {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := map[string]bool{}
	for _, o := range s.objs {
		for _, k := range []string{"metadata", "_pi_metadata"} {
			switch m := o[k].(type) {
			case map[string]any:
				if v := str(m[MetadataPaymentKey]); v != "" {
					ids[v] = true
				}
			case map[string]string:
				if v := m[MetadataPaymentKey]; v != "" {
					ids[v] = true
				}
			}
		}
		if pd, ok := o["payment_intent_data"].(obj); ok && o["object"] == "payment_link" {
			if v := str(pd["metadata"].(map[string]any)[MetadataPaymentKey]); v != "" {
				ids[v] = true
			}
		}
	}
	out := map[string]PaymentTruth{}
	for id := range ids {
		out[id] = s.truth(id)
	}
	return out
}

func (s *Sandbox) truth(id string) PaymentTruth {
	t := PaymentTruth{PaymentID: id}
	pis := map[string]bool{}
	charges := map[string]bool{}
	for _, lid := range s.byType["payment_link"] {
		l := s.objs[lid]
		if metaHas(l["metadata"], id) || metaHas(l["payment_intent_data"].(obj)["metadata"], id) {
			t.PaymentLinks = append(t.PaymentLinks, lid)
		}
	}
	links := map[string]bool{}
	for _, l := range t.PaymentLinks {
		links[l] = true
	}
	for _, cid := range s.byType["checkout.session"] {
		cs := s.objs[cid]
		if metaHas(cs["metadata"], id) || metaHas(cs["_pi_metadata"], id) || str(cs["client_reference_id"]) == id || links[str(cs["payment_link"])] {
			t.CheckoutSessions = append(t.CheckoutSessions, SessionTruth{ID: cid, Status: str(cs["status"]),
				PaymentStatus: str(cs["payment_status"]), PaymentIntent: str(cs["payment_intent"]), PaymentLink: str(cs["payment_link"])})
		}
	}
	for _, pid := range s.byType["payment_intent"] {
		pi := s.objs[pid]
		if !metaHas(pi["metadata"], id) {
			continue
		}
		pis[pid] = true
		t.PaymentIntents = append(t.PaymentIntents, IntentTruth{ID: pid, Status: str(pi["status"]), Currency: str(pi["currency"]),
			LatestCharge: str(pi["latest_charge"]), Amount: toInt(pi["amount"]), AmountReceived: toInt(pi["amount_received"])})
		switch pi["status"] {
		case "succeeded":
			t.Succeeded = pid
		case "processing":
			t.Processing = pid
		}
	}
	for _, cid := range s.byType["charge"] {
		ch := s.objs[cid]
		if !pis[str(ch["payment_intent"])] {
			continue
		}
		charges[cid] = true
		t.Charges = append(t.Charges, ChargeTruth{ID: cid, PaymentIntent: str(ch["payment_intent"]), Status: str(ch["status"]),
			Amount: toInt(ch["amount"]), AmountRefunded: toInt(ch["amount_refunded"]), Disputed: ch["disputed"] == true})
		if ch["status"] == "succeeded" {
			t.AmountPaid += toInt(ch["amount"])
			t.AmountRefunded += toInt(ch["amount_refunded"])
		}
	}
	for _, rid := range s.byType["refund"] {
		re := s.objs[rid]
		if !charges[str(re["charge"])] {
			continue
		}
		md, _ := re["metadata"].(map[string]any)
		t.Refunds = append(t.Refunds, RefundTruth{ID: rid, Charge: str(re["charge"]), PaymentIntent: str(re["payment_intent"]),
			Status: str(re["status"]), Reason: str(re["reason"]), FailureReason: str(re["failure_reason"]),
			PaygateRefundID: str(md[MetadataRefundKey]), Amount: toInt(re["amount"])})
		if re["status"] == "succeeded" {
			t.AmountRefundSucceeded += toInt(re["amount"])
		}
	}
	for _, did := range s.byType["dispute"] {
		dp := s.objs[did]
		if !charges[str(dp["charge"])] {
			continue
		}
		t.Disputes = append(t.Disputes, DisputeTruth{ID: did, Charge: str(dp["charge"]), PaymentIntent: str(dp["payment_intent"]),
			Status: str(dp["status"]), Reason: str(dp["reason"]), Amount: toInt(dp["amount"])})
	}
	sort.Strings(t.PaymentLinks)
	return t
}
