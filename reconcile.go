package paygate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// Reconciliation windows.
const (
	// ReconcileWindow is how far back payments are reconciled: Stripe keeps
	// events for 30 days.
	ReconcileWindow = 30 * 24 * time.Hour
	// refundSettleAfter is how old a refund reservation with no Stripe id
	// must be before reconciliation settles it: long after any Stripe call
	// for it has ended.
	refundSettleAfter = time.Hour
	reconcileBatch    = 1000
)

// ReconcileResult counts what a reconciliation pass did.
type ReconcileResult struct {
	Checked int `json:"checked"`
	Updated int `json:"updated"`
	Failed  int `json:"failed"`
}

// Reconcile catches up with Stripe where webhooks were lost. For every
// payment that is not final (pending, processing, failed) and at most 30
// days old it asks Stripe for its PaymentIntent, Checkout Session or the
// completed sessions of its payment link, and applies what Stripe says
// through the same state machine as webhooks (history source "reconcile",
// callbacks queued as for a webhook). Refunds reserved over an hour ago
// whose Stripe call had an unknown outcome are settled: matched to Stripe's
// refund by paygate_refund_id, or marked failed when Stripe has none.
//
// A payment that fails to reconcile (Stripe unreachable, say) is counted in
// Failed and left as it was; Reconcile returns an error only when it cannot
// start.
func (g *Gateway) Reconcile(ctx context.Context) (*ReconcileResult, error) {
	api, err := g.stripeAPI()
	if err != nil {
		return nil, err
	}
	now := g.now()
	ids, err := g.store.PaymentsToReconcile(ctx, now.Add(-ReconcileWindow), now.Add(-refundSettleAfter), reconcileBatch)
	if err != nil {
		return nil, err
	}
	res := &ReconcileResult{}
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		res.Checked++
		changed, err := g.reconcilePayment(ctx, api, id)
		switch {
		case err != nil:
			res.Failed++
			g.log.LogAttrs(ctx, slog.LevelWarn, "paygate: reconcile failed", attrPayment(id), attrErr(err))
		case changed:
			res.Updated++
		}
	}
	g.syslog(ctx, LevelInfo, SourcePayment, "reconciliation pass", map[string]any{"checked": res.Checked, "updated": res.Updated, "failed": res.Failed})
	return res, nil
}

// reconcilePayment brings one payment up to date with Stripe and reports
// whether anything changed.
func (g *Gateway) reconcilePayment(ctx context.Context, api *client.API, id string) (bool, error) {
	p, err := g.store.GetPayment(ctx, id)
	if err != nil {
		return false, err
	}
	events, err := g.stripeView(ctx, api, p)
	if err != nil {
		return false, err
	}
	var refunds []stripeObject
	if hasUnconfirmedRefund(p) && p.PaymentIntentID != "" {
		if refunds, err = g.stripeRefunds(ctx, api, p.PaymentIntentID); err != nil {
			return false, err
		}
	}
	if len(events) == 0 && refunds == nil {
		return false, nil
	}
	now := g.now()
	changed := false
	_, err = g.store.UpdatePayment(ctx, id, func(p *Payment) ([]HistoryEntry, error) {
		changed = false
		var hist []HistoryEntry
		for _, e := range events {
			hist = append(hist, g.change(p, e, SourceReconcile, now)...)
		}
		if refunds != nil {
			h := settleRefunds(p, refunds, now.Add(-refundSettleAfter), now)
			g.queueCallbacks(p, eventObject{typ: "refund.updated"}, h, now)
			hist = append(hist, h...)
		}
		changed = len(hist) > 0
		return hist, nil
	})
	return changed, err
}

// stripeView asks Stripe for the objects behind p and returns them as the
// events that would have reported their state (none when there is nothing
// to apply). A Checkout Session (of a checkout payment, or the completed
// one of a payment link) is read with its PaymentIntent: the session tells
// whether it completed or expired, the PaymentIntent which charge paid or
// failed.
func (g *Gateway) stripeView(ctx context.Context, api *client.API, p *Payment) ([]eventObject, error) {
	if p.Status != StatusPending && p.Status != StatusProcessing && p.Status != StatusFailed {
		return nil, nil // final; only its refunds may need settling
	}
	switch {
	case p.Method == MethodLink && p.PaymentLinkID != "":
		// A link opens a session per visit: the one that completed is the
		// one to check, whichever attempt the payment shows now.
		params := &stripe.CheckoutSessionListParams{PaymentLink: stripe.String(p.PaymentLinkID), Status: stripe.String(string(stripe.CheckoutSessionStatusComplete))}
		params.Context = ctx
		it := api.CheckoutSessions.List(params)
		var unpaid *stripe.CheckoutSession
		for it.Next() {
			s := it.CheckoutSession()
			if s.PaymentStatus != stripe.CheckoutSessionPaymentStatusUnpaid {
				return g.sessionEvents(ctx, api, s)
			}
			if unpaid == nil {
				unpaid = s // a delayed method, processing
			}
		}
		if err := it.Err(); err != nil {
			return nil, g.stripeError(ctx, err)
		}
		if unpaid != nil {
			return g.sessionEvents(ctx, api, unpaid)
		}
	case p.Method == MethodCheckout && p.CheckoutSessionID != "":
		params := &stripe.CheckoutSessionParams{}
		params.Context = ctx
		s, err := api.CheckoutSessions.Get(p.CheckoutSessionID, params)
		if err != nil {
			return nil, g.stripeError(ctx, err)
		}
		return g.sessionEvents(ctx, api, s)
	case p.PaymentIntentID != "":
		params := &stripe.PaymentIntentParams{}
		params.Context = ctx
		pi, err := api.PaymentIntents.Get(p.PaymentIntentID, params)
		if err != nil {
			return nil, g.stripeError(ctx, err)
		}
		if e, ok := intentEvent(pi); ok {
			return []eventObject{e}, nil
		}
	case p.CheckoutSessionID != "":
		params := &stripe.CheckoutSessionParams{}
		params.Context = ctx
		s, err := api.CheckoutSessions.Get(p.CheckoutSessionID, params)
		if err != nil {
			return nil, g.stripeError(ctx, err)
		}
		return g.sessionEvents(ctx, api, s)
	}
	return nil, nil
}

// sessionEvents reads a Checkout Session's PaymentIntent and returns the
// events that report both.
func (g *Gateway) sessionEvents(ctx context.Context, api *client.API, s *stripe.CheckoutSession) ([]eventObject, error) {
	var out []eventObject
	typ, o, _ := sessionView(s)
	if typ != "" {
		out = append(out, eventObject{typ: typ, obj: o})
	}
	if s.PaymentIntent == nil || s.PaymentIntent.ID == "" {
		return out, nil
	}
	params := &stripe.PaymentIntentParams{}
	params.Context = ctx
	pi, err := api.PaymentIntents.Get(s.PaymentIntent.ID, params)
	var se *stripe.Error
	if errors.As(err, &se) && se.HTTPStatusCode == http.StatusNotFound {
		return out, nil // nothing more to learn than the session says
	}
	if err != nil {
		return nil, g.stripeError(ctx, err)
	}
	if e, ok := intentEvent(pi); ok {
		out = append(out, e)
	}
	if s.Status == stripe.CheckoutSessionStatusComplete && s.PaymentStatus == stripe.CheckoutSessionPaymentStatusUnpaid &&
		pi.Status == stripe.PaymentIntentStatusRequiresPaymentMethod && pi.LastPaymentError != nil {
		// A session completes once; when its delayed payment fails Stripe
		// leaves it complete and unpaid and puts its PaymentIntent back to
		// requires_payment_method: what checkout.session.async_payment_failed
		// reported. (From the webhooks alone a failed charge of an unpaid
		// session may be a card declined before the bank debit.)
		out = append(out, eventObject{typ: "checkout.session.async_payment_failed", obj: o})
	}
	return out, nil
}

// sessionView turns a Checkout Session into the event that reports it.
func sessionView(s *stripe.CheckoutSession) (string, *stripeObject, error) {
	o := &stripeObject{ID: s.ID, Object: "checkout.session", Status: string(s.Status), PaymentStatus: string(s.PaymentStatus),
		AmountTotal: s.AmountTotal, Currency: string(s.Currency)}
	if s.PaymentIntent != nil {
		o.PaymentIntent = expandable(s.PaymentIntent.ID)
	}
	if s.PaymentLink != nil {
		o.PaymentLink = expandable(s.PaymentLink.ID)
	}
	if s.CustomerDetails != nil && s.CustomerDetails.Email != "" {
		o.CustomerDetails = &struct {
			Email string `json:"email"`
		}{Email: s.CustomerDetails.Email}
	}
	switch s.Status {
	case stripe.CheckoutSessionStatusComplete:
		return "checkout.session.completed", o, nil
	case stripe.CheckoutSessionStatusExpired:
		return "checkout.session.expired", o, nil
	}
	return "", nil, nil
}

func hasUnconfirmedRefund(p *Payment) bool {
	for _, r := range p.Refunds {
		if r.Status == RefundPending && r.StripeRefundID == "" {
			return true
		}
	}
	return false
}

// stripeRefunds lists a PaymentIntent's refunds at Stripe.
func (g *Gateway) stripeRefunds(ctx context.Context, api *client.API, pi string) ([]stripeObject, error) {
	params := &stripe.RefundListParams{PaymentIntent: stripe.String(pi)}
	params.Context = ctx
	it := api.Refunds.List(params)
	out := []stripeObject{}
	for it.Next() {
		r := it.Refund()
		out = append(out, stripeObject{ID: r.ID, Object: "refund", Status: string(r.Status), Amount: r.Amount, Reason: string(r.Reason), Metadata: r.Metadata})
	}
	if err := it.Err(); err != nil {
		return nil, g.stripeError(ctx, err)
	}
	return out, nil
}

// settleRefunds matches refunds reserved before `before` and never
// confirmed to Stripe's refunds (by paygate_refund_id); a reservation Stripe
// has no refund for was never made, and is marked failed.
func settleRefunds(p *Payment, stripeRefunds []stripeObject, before, now time.Time) []HistoryEntry {
	var hist []HistoryEntry
	for i := range p.Refunds {
		r := &p.Refunds[i]
		if r.Status != RefundPending || r.StripeRefundID != "" || !r.CreatedAt.Before(before) {
			continue
		}
		from, was := p.Status, p.AmountRefunded
		var found *stripeObject
		for j := range stripeRefunds {
			if stripeRefunds[j].Metadata[metadataRefundKey] == r.ID {
				found = &stripeRefunds[j]
			}
		}
		t := HistoryRefundUpdated
		if found != nil {
			r.StripeRefundID, r.Status = found.ID, refundStatus(stripe.RefundStatus(found.Status))
		} else {
			r.Status, t = RefundFailed, HistoryRefundFailed
		}
		r.UpdatedAt = now
		p.derive()
		p.UpdatedAt = now
		h := p.history(t, from, SourceReconcile, r.Amount, map[string]any{"refundId": r.StripeRefundID, "refundStatus": r.Status,
			"note": fmt.Sprintf("settled by reconciliation (amount refunded %d → %d)", was, p.AmountRefunded)}, now)
		hist = append(hist, h)
	}
	return hist
}
