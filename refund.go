package paygate

import (
	"context"
	"errors"
	"log/slog"

	"github.com/stripe/stripe-go/v76"
)

// RefundParams are the inputs of CreateRefund.
type RefundParams struct {
	// PaymentIntentID is the pi_ id of a payment this service created (required).
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
// idempotency key derived from the refund's id. If Stripe refuses, the
// refund is marked failed and no longer counts; if the outcome is unknown
// (network, 5xx), it stays pending until Stripe's webhooks settle it.
//
// It returns a *Error: invalid_request naming amount when more than what
// remains is asked, conflict when the payment has not succeeded or nothing
// remains, not_found for a PaymentIntent this service did not create.
func (g *Gateway) CreateRefund(ctx context.Context, in RefundParams) (*CreatedRefund, error) {
	if in.PaymentIntentID == "" {
		return nil, invalidParam("paymentIntentId", "paymentIntentId is required")
	}
	if !intentIDPattern.MatchString(in.PaymentIntentID) {
		return nil, invalidParam("paymentIntentId", "paymentIntentId must be a PaymentIntent id (pi_…)")
	}
	if in.Reason != "" && !refundReasons[in.Reason] {
		return nil, invalidParam("reason", "reason must be one of duplicate, fraudulent, requested_by_customer")
	}
	api, err := g.stripeAPI()
	if err != nil {
		return nil, err
	}
	p, err := g.store.GetPaymentByIntent(ctx, in.PaymentIntentID)
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

	refundID := idFor("rf", in.IdempotencyKey)
	now := g.now()
	p, err = g.store.UpdatePayment(ctx, p.ID, func(p *Payment) ([]HistoryEntry, error) {
		if r := findRefund(p, refundID); r != nil {
			// A retry with the same Idempotency-Key: the refund is already
			// reserved; ask Stripe again with the same idempotency key.
			if amount != 0 && r.Amount != amount {
				return nil, &Error{Code: CodeIdempotency, Message: "this Idempotency-Key was already used for a different refund"}
			}
			return nil, nil
		}
		if p.Status.Rank() != StatusSucceeded.Rank() {
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
		p.recompute()
		p.UpdatedAt = now
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	reserved := findRefund(p, refundID)

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
		if !stripeRefused(err) {
			g.log.LogAttrs(ctx, slog.LevelWarn, "paygate: refund outcome unknown; left pending", attrPayment(p.ID), slog.String("refund_id", refundID), attrErr(e))
			return nil, e
		}
		now := g.now()
		_, uerr := g.store.UpdatePayment(context.WithoutCancel(ctx), p.ID, func(p *Payment) ([]HistoryEntry, error) {
			r := findRefund(p, refundID)
			if r == nil || r.Status.final() {
				return nil, nil
			}
			r.Status, r.UpdatedAt = RefundFailed, now
			from := p.Status
			p.recompute()
			p.UpdatedAt = now
			return []HistoryEntry{p.history(HistoryRefundFailed, from, SourceAPI, r.Amount, map[string]any{"refundId": refundID, "error": e.Message}, now)}, nil
		})
		g.syslog(ctx, LevelWarn, SourcePayment, "refund refused by Stripe", map[string]any{"paymentId": p.ID, "refundId": refundID, "error": e.Message})
		return nil, errors.Join(e, uerr)
	}

	now = g.now()
	p, err = g.store.UpdatePayment(context.WithoutCancel(ctx), p.ID, func(p *Payment) ([]HistoryEntry, error) {
		r := findRefund(p, refundID)
		if r == nil {
			return nil, ErrNotFound
		}
		from := p.Status
		confirmed := r.StripeRefundID == re.ID // a retry of a refund already confirmed
		r.StripeRefundID = re.ID
		if st := refundStatus(re.Status); !r.Status.final() {
			r.Status = st
		}
		r.UpdatedAt = now
		p.recompute()
		p.UpdatedAt = now
		if confirmed {
			return nil, nil
		}
		return []HistoryEntry{p.history(HistoryRefundCreated, from, SourceAPI, r.Amount, map[string]any{"refundId": re.ID, "reason": in.Reason}, now)}, nil
	})
	if err != nil {
		return nil, err
	}
	r := findRefund(p, refundID)
	g.syslog(ctx, LevelInfo, SourcePayment, "refund created", map[string]any{"paymentId": p.ID, "refundId": r.StripeRefundID, "amount": r.Amount, "currency": p.Currency, "status": r.Status})
	return &CreatedRefund{
		RefundID:        r.StripeRefundID,
		PaymentIntentID: p.PaymentIntentID,
		PaymentID:       p.ID,
		Amount:          r.Amount,
		Currency:        p.Currency,
		Status:          r.Status,
	}, nil
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
