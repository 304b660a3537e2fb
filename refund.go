package paygate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/stripe/stripe-go/v76"
)

// RefundParams are the inputs of CreateRefund.
type RefundParams struct {
	// PaymentID (pay_…) or PaymentIntentID (pi_…, of any of the payment's
	// attempts) names the payment; one is required, and when both are
	// given they must name the same payment.
	PaymentID       string `json:"paymentId"`
	PaymentIntentID string `json:"paymentIntentId"`
	// Amount in major units; empty refunds everything that remains.
	Amount Decimal `json:"amount"`
	// Reason is "", "duplicate", "fraudulent" or "requested_by_customer".
	Reason string `json:"reason"`
	// IdempotencyKey makes the call safe to retry: the same key always
	// names the same payment (or refund) and the same Stripe objects. The
	// HTTP API sets it from the Idempotency-Key header, scoped per API key.
	IdempotencyKey string `json:"-"`
}

// CreatedRefund is the result of CreateRefund.
type CreatedRefund struct {
	RefundID        string       `json:"refundId"`
	PaymentIntentID string       `json:"paymentIntentId"`
	PaymentID       string       `json:"paymentId"`
	Amount          int64        `json:"amount"`
	Currency        string       `json:"currency"`
	Status          RefundStatus `json:"status"`
}

var refundReasons = map[string]bool{"duplicate": true, "fraudulent": true, "requested_by_customer": true}

// CreateRefund refunds all or part of a succeeded payment.
//
// The refund is first reserved under the payment's row lock: it counts in
// amountRefunded at once, so two concurrent refunds can never together
// exceed the payment. Then Stripe is called, outside any transaction, with an
// idempotency key derived from the refund's id. If Stripe refuses (a 4xx,
// a rate limit included), the refund is marked failed and no longer counts;
// if the outcome is unknown (network, 5xx), it stays pending until Stripe's
// webhooks or reconciliation settle it. Once Stripe confirms, the refund is
// recorded through the same path as its webhooks (history refund_created,
// a refund_created callback), which then change nothing.
//
// A retry with the same IdempotencyKey returns the refund already made
// without calling Stripe again and resumes one whose outcome was unknown. If
// Stripe refused that refund or never made it (reconciliation found none),
// the retry reserves the amount again and asks Stripe afresh; if Stripe made
// it and it then failed, the retry is refused with conflict (use a new key).
//
// It returns a *Error: invalid_request naming amount when more than what
// remains is asked, conflict when the payment has not succeeded or nothing
// remains, not_found for a payment this service did not create.
func (g *Gateway) CreateRefund(ctx context.Context, in RefundParams) (*CreatedRefund, error) {
	if in.PaymentID == "" && in.PaymentIntentID == "" {
		return nil, invalidParam("paymentIntentId", "paymentIntentId or paymentId is required")
	}
	if in.PaymentID != "" && !paymentIDPattern.MatchString(in.PaymentID) {
		return nil, invalidParam("paymentId", "paymentId must be a payment id (pay_…)")
	}
	if in.PaymentIntentID != "" && !intentIDPattern.MatchString(in.PaymentIntentID) {
		return nil, invalidParam("paymentIntentId", "paymentIntentId must be a PaymentIntent id (pi_…)")
	}
	if in.Reason != "" && !refundReasons[in.Reason] {
		return nil, invalidParam("reason", "reason must be one of duplicate, fraudulent, requested_by_customer")
	}
	api, err := g.stripeAPI()
	if err != nil {
		return nil, err
	}
	var p *Payment
	if in.PaymentIntentID != "" {
		p, err = g.store.GetPaymentByStripeID(ctx, in.PaymentIntentID)
		if err == nil && in.PaymentID != "" && p.ID != in.PaymentID {
			return nil, invalidParam("paymentIntentId", "paymentIntentId %s does not belong to payment %s", in.PaymentIntentID, in.PaymentID)
		}
	} else {
		p, err = g.store.GetPayment(ctx, in.PaymentID)
	}
	if err != nil {
		return nil, err
	}
	cur, err := LookupCurrency(p.Currency)
	if err != nil {
		return nil, err
	}
	var amount int64
	if in.Amount != "" {
		if amount, err = cur.ParseAmount(string(in.Amount)); err != nil {
			return nil, err
		}
	}

	var refundID string
	resumed := false // a reservation whose earlier call's outcome was unknown
	now := g.now()
	p, err = g.store.UpdatePayment(ctx, p.ID, func(p *Payment) ([]HistoryEntry, error) {
		refundID = idFor("rf", in.IdempotencyKey)
		for retry := 1; in.IdempotencyKey != ""; retry++ {
			r := findRefund(p, refundID)
			if r == nil {
				break
			}
			// A retry with the same Idempotency-Key.
			if amount != 0 && r.Amount != amount {
				return nil, &Error{Code: CodeIdempotency, Message: "this Idempotency-Key was already used for a different refund"}
			}
			if r.Status.counts() {
				if r.StripeRefundID == "" {
					// Resumed: Stripe is asked again now, so reconciliation
					// must not settle it as never made meanwhile.
					r.UpdatedAt, resumed = now, true
				}
				return nil, nil // made or in progress: resume it
			}
			if r.StripeRefundID != "" {
				return nil, conflict("the refund made with this Idempotency-Key ended %s at Stripe; use a new Idempotency-Key to refund again", r.Status)
			}
			// Stripe refused it (a rate limit, say) or never made it: a
			// new reservation, with its own Stripe idempotency key, since
			// Stripe may have saved the first key's answer.
			refundID = idFor("rf", in.IdempotencyKey+"\x00retry "+strconv.Itoa(retry))
		}
		if baseStatus(p.Status) != StatusSucceeded {
			return nil, conflict("payment %s has not succeeded (status %s); only a succeeded payment can be refunded", p.ID, p.Status)
		}
		remaining := p.Amount - p.AmountRefunded
		if remaining <= 0 {
			return nil, conflict("payment %s is already fully refunded", p.ID)
		}
		amt := amount
		if amt == 0 {
			amt = remaining
		}
		if amt > remaining {
			return nil, invalidParam("amount", "amount exceeds what remains to refund (%s %s)", cur.FormatAmount(remaining), p.Currency)
		}
		p.Refunds = append(p.Refunds, Refund{ID: refundID, Amount: amt, Status: RefundPending, Reason: in.Reason, CreatedAt: now, UpdatedAt: now})
		p.derive()
		p.UpdatedAt = now
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	reserved := findRefund(p, refundID)
	if reserved.StripeRefundID != "" {
		return createdRefund(p, reserved), nil // made before: the stored outcome, without asking Stripe again
	}

	params := &stripe.RefundParams{
		PaymentIntent: stripe.String(p.PaymentIntentID),
		Amount:        stripe.Int64(reserved.Amount),
	}
	if in.Reason != "" {
		params.Reason = stripe.String(in.Reason)
	}
	params.Context = context.WithoutCancel(ctx) // a refund is not abandoned because the caller hung up
	params.SetIdempotencyKey(idempotencyKey(p.ID, "refund:"+refundID))
	params.AddMetadata(MetadataKey, p.ID)
	params.AddMetadata(metadataRefundKey, refundID)
	re, err := api.Refunds.New(params)
	if err != nil {
		e := g.stripeError(ctx, err)
		if resumed || !stripeRefused(err) {
			// Unknown: a resumed reservation's earlier call may have been
			// carried out whatever this one is answered.
			g.log.LogAttrs(ctx, slog.LevelWarn, "paygate: refund outcome unknown; left pending", attrPayment(p.ID), slog.String("refund_id", refundID), attrErr(e))
			return nil, unknownOutcome(e)
		}
		// Refused: the reservation was never announced, so it is released
		// with a history entry and no callback.
		failed := eventObject{typ: "refund.failed", obj: &stripeObject{Object: "refund", Status: string(stripe.RefundStatusFailed),
			Amount: reserved.Amount, Metadata: map[string]string{metadataRefundKey: refundID}}}
		now := g.now()
		_, uerr := g.store.UpdatePayment(context.WithoutCancel(ctx), p.ID, func(p *Payment) ([]HistoryEntry, error) {
			hist := applyEvent(p, failed, SourceAPI, now)
			for i := range hist {
				hist[i].Data = marshalMerge(hist[i].Data, map[string]any{"error": e.Message})
			}
			return hist, nil
		})
		g.syslog(ctx, LevelWarn, SourcePayment, "refund refused by Stripe", map[string]any{"paymentId": p.ID, "refundId": refundID, "error": e.Message})
		return nil, errors.Join(e, uerr)
	}

	if p, err = g.update(context.WithoutCancel(ctx), p, refundEvent(re, refundID), SourceAPI); err != nil {
		return nil, err
	}
	r := findRefund(p, refundID)
	g.syslog(ctx, LevelInfo, SourcePayment, "refund created", map[string]any{"paymentId": p.ID, "refundId": r.StripeRefundID, "amount": r.Amount, "currency": p.Currency, "status": r.Status})
	if !r.Status.counts() {
		return nil, &Error{Code: CodeInvalid, Message: fmt.Sprintf("Stripe reports the refund %s as %s", r.StripeRefundID, r.Status)}
	}
	return createdRefund(p, r), nil
}

func createdRefund(p *Payment, r *Refund) *CreatedRefund {
	return &CreatedRefund{
		RefundID:        r.StripeRefundID,
		PaymentIntentID: p.PaymentIntentID,
		PaymentID:       p.ID,
		Amount:          r.Amount,
		Currency:        p.Currency,
		Status:          r.Status,
	}
}

// refundEvent is the event that reports a refund as Stripe returned it, for
// the reservation refundID.
func refundEvent(re *stripe.Refund, refundID string) eventObject {
	o := &stripeObject{ID: re.ID, Object: "refund", Status: string(re.Status), Amount: re.Amount, Currency: string(re.Currency),
		Reason: string(re.Reason), Metadata: map[string]string{metadataRefundKey: refundID}, Created: re.Created}
	// The charge is left to the refund's own events: the reservation
	// already names the payment.
	return eventObject{typ: "refund.created", obj: o}
}

// marshalMerge adds fields to a JSON object.
func marshalMerge(raw json.RawMessage, add map[string]any) json.RawMessage {
	m := map[string]any{}
	_ = json.Unmarshal(raw, &m)
	for k, v := range add {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

func findRefund(p *Payment, id string) *Refund {
	for i := range p.Refunds {
		if p.Refunds[i].ID == id {
			return &p.Refunds[i]
		}
	}
	return nil
}

// refundStatus maps Stripe's refund status to ours.
func refundStatus(s stripe.RefundStatus) RefundStatus {
	switch s {
	case stripe.RefundStatusSucceeded:
		return RefundSucceeded
	case stripe.RefundStatusFailed:
		return RefundFailed
	case stripe.RefundStatusCanceled:
		return RefundCanceled
	default: // pending, requires_action
		return RefundPending
	}
}

func (p *RefundParams) setIdempotencyKey(k string) { p.IdempotencyKey = k }
