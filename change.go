package paygate

import (
	"context"
	"encoding/json"
	"time"
)

// update applies e to the stored payment p through [Gateway.change], in the
// payment's transaction, and wakes the callback engine when callbacks were
// queued. It skips the write when e would change nothing (no history and
// no field: a status read that learns only the latest charge still writes).
func (g *Gateway) update(ctx context.Context, p *Payment, e eventObject, source string) (*Payment, error) {
	now := g.now()
	c := p.clone()
	c.UpdatedAt = time.Time{} // set again only if e changes something
	if len(applyEvent(c, e, source, now)) == 0 && c.UpdatedAt.IsZero() {
		return p, nil
	}
	queued := false
	p, err := g.store.UpdatePayment(ctx, p.ID, func(p *Payment) ([]HistoryEntry, error) {
		hist := g.change(p, e, source, now)
		queued = g.cfg.CallbackURL != "" && len(hist) > 0
		return hist, nil
	})
	if err == nil && queued && g.cfg.OnCallbacksQueued != nil {
		g.cfg.OnCallbacksQueued()
	}
	return p, err
}

// change is the one function every path that changes a payment goes
// through (a webhook, the Events API, a status read, reconciliation, an API
// refund): it applies what Stripe said to the locked payment and gives each
// history entry its callback. Because the state machine writes an entry
// only for what is new, the same change seen on two paths is recorded and
// called back once, by whichever path saw it first.
func (g *Gateway) change(p *Payment, e eventObject, source string, now time.Time) []HistoryEntry {
	hist := applyEvent(p, e, source, now)
	g.queueCallbacks(p, e, hist, now)
	return hist
}

// queueCallbacks gives every history entry a callback: one per change,
// with the payment's next sequence number.
func (g *Gateway) queueCallbacks(p *Payment, e eventObject, hist []HistoryEntry, now time.Time) {
	if g.cfg.CallbackURL == "" {
		return
	}
	eventType := e.typ
	if e.id == "" {
		eventType = "" // no Stripe event: a status read, reconciliation or an API call
	}
	for i := range hist {
		h := &hist[i]
		act, ok := callbackActions[h.EventType]
		if !ok {
			continue
		}
		p.CallbackSeq++
		d := CallbackData{
			PaymentID: p.ID, PaymentIntentID: p.PaymentIntentID, Amount: p.Amount,
			Currency: p.Currency, Status: string(h.ToStatus), Metadata: p.Metadata,
		}
		if d.Metadata == nil {
			d.Metadata = map[string]string{}
		}
		var hd struct {
			SessionID     *string `json:"sessionId"`
			PaymentStatus *string `json:"paymentStatus"`
			RefundID      *string `json:"refundId"`
			RefundStatus  *string `json:"refundStatus"`
			RefundAmount  *int64  `json:"refundAmount"`
			DisputeID     *string `json:"disputeId"`
			DisputeAmount *int64  `json:"disputeAmount"`
			DisputeReason *string `json:"disputeReason"`
			DisputeStatus *string `json:"disputeStatus"`
		}
		_ = json.Unmarshal(h.Data, &hd)
		if hd.SessionID != nil {
			amount := p.Amount
			d.SessionID, d.AmountTotal, d.PaymentStatus = hd.SessionID, &amount, hd.PaymentStatus
		}
		switch h.EventType {
		case HistoryRefundCreated, HistoryRefundUpdated, HistoryRefundFailed:
			refunded := p.shownRefunded()
			d.AmountRefunded = &refunded
			d.RefundID, d.RefundStatus, d.RefundAmount = hd.RefundID, hd.RefundStatus, hd.RefundAmount
		case HistoryDisputeCreated, HistoryDisputeUpdated, HistoryDisputeClosed:
			d.DisputeID, d.DisputeAmount, d.DisputeReason, d.DisputeStatus = hd.DisputeID, hd.DisputeAmount, hd.DisputeReason, hd.DisputeStatus
		}
		id := newID("cb")
		body, _ := json.Marshal(CallbackPayload{
			EventID: e.id, EventType: eventType, Action: act.action, Message: act.message, Data: d,
			PaymentID: p.ID, Sequence: p.CallbackSeq, Timestamp: now.Format(time.RFC3339),
		})
		h.Callback = &Callback{
			ID: id, PaymentID: p.ID, WebhookEventID: e.id, Sequence: p.CallbackSeq, EventType: eventType,
			Action: act.action, URL: g.cfg.CallbackURL, Payload: body, Status: CallbackPending,
			NextAttemptAt: now, CreatedAt: now, UpdatedAt: now,
		}
	}
}
