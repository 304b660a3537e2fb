package paygate

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/stripe/stripe-go/v76"
)

const (
	// stateEventsSince is the Events API cursor: a Unix time before which
	// every event of a handled type has been read (and applied or found
	// stored) by a complete pass.
	stateEventsSince = "reconcile.events.since"
	// eventsOverlap is how far before the cursor each pass starts reading,
	// for events that became visible in Stripe's list late. Events already
	// stored are skipped, so the overlap costs reads only.
	eventsOverlap = 10 * time.Minute
	// eventsWindowMargin keeps the first pass inside Stripe's 30 days.
	eventsWindowMargin = time.Hour
	// eventsChunk bounds the unknown events a pass holds in memory before
	// applying them.
	eventsChunk = 500
	// maxEventTypesFilter is the most types Stripe's types[] filter takes.
	maxEventTypesFilter = 20
)

// reconcileEvents reads Stripe's Events API since the cursor and applies,
// oldest first, every event of a handled type not stored yet, through
// ingestEvent (the webhook path) with source reconcile. The cursor moves
// only when every event was read and none failed to be stored.
func (g *Gateway) reconcileEvents(ctx context.Context, api *stripeClients, res *ReconcileResult, lease *leaseKeeper) error {
	listedAt := g.now()
	floor := listedAt.Add(-ReconcileWindow + eventsWindowMargin)
	since := floor
	cursor, err := g.store.GetState(ctx, stateEventsSince)
	if err != nil {
		return err
	}
	if cursor != "" {
		if n, err := strconv.ParseInt(cursor, 10, 64); err == nil {
			if t := time.Unix(n, 0).Add(-eventsOverlap); t.After(floor) {
				since = t
			}
		}
	}

	params := &stripe.EventListParams{CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: since.Unix()}}
	params.Context = ctx
	params.Limit = stripe.Int64(100)
	if len(HandledEventTypes) <= maxEventTypesFilter {
		params.Types = stripe.StringSlice(HandledEventTypes)
	}
	type found struct {
		id      string
		created int64
		payload []byte
	}
	var unknown []found
	complete := true
	// apply stores and applies the unknown events held, oldest first, so
	// that callbacks go out in the order things happened (the list is
	// newest first; events of the same second keep the list's order,
	// reversed). With more than a chunk unknown, each chunk is applied as it
	// fills: memory stays bounded, and the state machine does not depend
	// on the order.
	apply := func() error {
		slices.Reverse(unknown)
		slices.SortStableFunc(unknown, func(a, b found) int { return int(a.created - b.created) })
		for _, ev := range unknown {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r, err := g.ingestEvent(ctx, ev.payload, SourceReconcile, g.now())
			var pe *Error
			switch {
			case errors.As(err, &pe) && pe.Code == CodeInvalid:
				// Not an event we can ever store (not UTF-8 text, say): reading
				// it again will not help, so it does not hold the cursor back.
				res.EventsFailed++
				g.log.LogAttrs(ctx, slog.LevelError, "paygate: reconciliation: Stripe event refused", slog.String("event_id", ev.id), attrErr(err))
			case err != nil:
				res.EventsFailed++
				complete = false
				g.log.LogAttrs(ctx, slog.LevelWarn, "paygate: reconciliation: storing a Stripe event failed", slog.String("event_id", ev.id), attrErr(err))
			case r.Duplicate: // its webhook arrived meanwhile
				res.EventsKnown++
			default:
				res.EventsApplied++
				if lag := listedAt.Sub(time.Unix(ev.created, 0)); lag > res.Lag {
					res.Lag = lag
				}
				g.log.LogAttrs(ctx, slog.LevelInfo, "paygate: reconciliation applied a Stripe event its webhook did not deliver",
					slog.String("event_id", ev.id), slog.String("payment_id", r.PaymentID), slog.String("outcome", string(r.Status)))
			}
			if err := lease.keep(ctx); err != nil {
				return err
			}
		}
		unknown = unknown[:0]
		return nil
	}
	var page *stripe.EventList
	var raw map[string]json.RawMessage // this page's events as Stripe sent them
	it := api.Events.List(params)
	for it.Next() {
		ev := it.Event()
		if l := it.EventList(); l != page {
			page, raw = l, pageEvents(l)
			if err := lease.keep(ctx); err != nil {
				return err
			}
		}
		if !handledTypes[string(ev.Type)] {
			continue
		}
		res.EventsRead++
		known, err := g.eventStored(ctx, ev.ID)
		if err != nil {
			return err
		}
		if known {
			res.EventsKnown++
			continue
		}
		payload := []byte(raw[ev.ID])
		if payload == nil {
			if payload, err = json.Marshal(ev); err != nil {
				return err
			}
		}
		unknown = append(unknown, found{ev.ID, ev.Created, payload})
		if len(unknown) == eventsChunk {
			if err := apply(); err != nil {
				return err
			}
		}
	}
	if err := it.Err(); err != nil {
		return g.stripeError(ctx, err)
	}
	if err := apply(); err != nil {
		return err
	}
	g.metrics.reconcileEvents("read", res.EventsRead)
	if !complete || ctx.Err() != nil {
		return nil
	}
	return g.store.SetState(ctx, stateEventsSince, strconv.FormatInt(listedAt.Unix(), 10))
}

// eventStored reports whether an event is stored already.
func (g *Gateway) eventStored(ctx context.Context, id string) (bool, error) {
	_, err := g.store.GetWebhookEvent(ctx, id)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	}
	return false, err
}

// pageEvents maps the events of one list page to their JSON text as
// Stripe sent it (nil when the page's raw body is not available).
func pageEvents(l *stripe.EventList) map[string]json.RawMessage {
	if l == nil || l.LastResponse == nil {
		return nil
	}
	var body struct {
		Data []json.RawMessage `json:"data"`
	}
	if json.Unmarshal(l.LastResponse.RawJSON, &body) != nil {
		return nil
	}
	m := make(map[string]json.RawMessage, len(body.Data))
	for _, d := range body.Data {
		var id struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(d, &id) == nil && id.ID != "" {
			m[id.ID] = d
		}
	}
	return m
}
