package paygate

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// EventRematcher is implemented by a Store that can apply a stored
// unmatched webhook event once its payment can be found. Events can arrive
// in any order: one named only by a Stripe id that a later event teaches
// its payment (a refund naming the charge that the payment's success
// brings, delivered first) is stored unmatched; reconciliation finds its
// payment afterwards and applies it (see Gateway.Reconcile). Both stores
// implement it.
type EventRematcher interface {
	// RematchWebhookEvent, in one transaction: if the event id is still
	// unmatched and refs find a payment, locks the payment, calls apply
	// with it, and stores the payment's changes, the outcome's history
	// entries and callbacks, and the event's new status, error, payment id
	// and processed time (now), all committed together. It returns the
	// event as stored and whether it applied it; an event that is not
	// unmatched, or whose refs still find no payment, is left as it is.
	// An error wrapping ErrNotFound means no such event; one wrapping
	// ErrStripeIDTaken, that the changes would give a Stripe id of
	// another payment (nothing is stored).
	RematchWebhookEvent(ctx context.Context, id string, refs PaymentRefs, now time.Time,
		apply func(p *Payment) (EventOutcome, error)) (stored *WebhookEvent, matched bool, err error)
}

// rematchWindow is how far back reconciliation looks for unmatched events
// whose payment may be found now; rematchMax bounds the unmatched events
// one pass reads (those of another service sharing the Stripe account are
// read and left, every pass, until they are older than the window). A pass
// that stops at rematchMax leaves its place under stateRematchCursor, and
// the next goes on from there, back to the newest once it has reached the
// window's end: many events of another service cannot keep one of ours
// from ever being read.
const (
	rematchWindow      = 24 * time.Hour
	rematchMax         = 1000
	stateRematchCursor = "rematch_cursor"
)

// rematchEvents applies, through the state machine, the stored unmatched
// events received within rematchWindow whose payment their refs find now,
// newest first, counting them in res.EventsApplied (EventsFailed for those
// that could not be stored).
func (g *Gateway) rematchEvents(ctx context.Context, res *ReconcileResult, lease *leaseKeeper) error {
	rm, ok := g.store.(EventRematcher)
	if !ok {
		return nil
	}
	since := g.now().Add(-rematchWindow)
	// EstimateTotal: the pages' totals are not used, and an exact count of
	// a busy shared account's unmatched events would cost more than a page.
	f := WebhookEventFilter{Status: EventUnmatched, PageParams: PageParams{Limit: MaxPageLimit, EstimateTotal: true}}
	var err error
	if f.Cursor, err = g.store.GetState(ctx, stateRematchCursor); err != nil {
		return err
	}
	for read := 0; read < rematchMax; {
		if err := lease.keep(ctx); err != nil {
			return err
		}
		page, err := g.store.ListWebhookEvents(ctx, f)
		if err != nil && f.Cursor != "" && read == 0 {
			f.Cursor = "" // a place that no longer reads: from the newest
			page, err = g.store.ListWebhookEvents(ctx, f)
		}
		if err != nil {
			return err
		}
		for _, it := range page.Items {
			if it.ReceivedAt.Before(since) {
				return g.store.SetState(ctx, stateRematchCursor, "")
			}
			read++
			if !handledTypes[it.Type] {
				continue
			}
			if err := g.rematch(ctx, rm, it.ID, res); err != nil {
				res.EventsFailed++
				g.log.LogAttrs(ctx, slog.LevelWarn, "paygate: reconciliation: applying an unmatched event failed",
					slog.String("event_id", it.ID), attrErr(err))
			}
		}
		if page.NextCursor == nil {
			return g.store.SetState(ctx, stateRematchCursor, "")
		}
		f.Cursor = *page.NextCursor
	}
	return g.store.SetState(ctx, stateRematchCursor, f.Cursor)
}

// rematch applies the stored unmatched event id if its payment is found now.
func (g *Gateway) rematch(ctx context.Context, rm EventRematcher, id string, res *ReconcileResult) error {
	stored, err := g.store.GetWebhookEvent(ctx, id)
	if err != nil {
		return err
	}
	ev, objOK, ok := parseEvent(stored.Payload)
	if !ok || !objOK {
		return nil // stored unmatched, so it was read once; not again
	}
	now := g.now()
	queued := 0
	refs, apply := g.applier(&ev, SourceReconcile, now, &queued)
	if !g.refsFind(ctx, refs) {
		return nil // still no payment: no write transaction
	}
	out, matched, err := rm.RematchWebhookEvent(ctx, id, refs, now, apply)
	if err != nil || !matched {
		return err
	}
	res.EventsApplied++
	if queued > 0 && g.cfg.OnCallbacksQueued != nil {
		g.cfg.OnCallbacksQueued()
	}
	g.syslog(ctx, LevelInfo, SourceWebhook, "webhook "+ev.Type+" "+string(out.Status)+" on reconciliation (stored unmatched before)",
		map[string]any{"eventId": id, "type": ev.Type, "outcome": string(out.Status), "paymentId": out.PaymentID})
	g.log.LogAttrs(ctx, slog.LevelInfo, "paygate: reconciliation: applied an event stored unmatched before",
		slog.String("event_id", id), slog.String("type", ev.Type), slog.String("payment_id", out.PaymentID))
	return nil
}

// refsFind reports whether refs name a payment of this service.
func (g *Gateway) refsFind(ctx context.Context, refs PaymentRefs) bool {
	if refs.PaymentID != "" {
		if _, err := g.store.GetPayment(ctx, refs.PaymentID); err == nil {
			return true
		}
	}
	for _, id := range refs.StripeIDs() {
		if _, err := g.store.GetPaymentByStripeID(ctx, id); err == nil || !errors.Is(err, ErrNotFound) {
			return true // found, or let the transaction find out
		}
	}
	return false
}
