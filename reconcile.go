package paygate

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/stripe/stripe-go/v76"
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
	// reconcileBatch is how many payments the sweep reads at a time.
	reconcileBatch = 500
	// reconcileLease names the lease that makes one replica at a time
	// reconcile; leaseTTL is how long it lasts unless renewed (a pass
	// renews it every leaseRenew), so a replica that died holding it
	// delays the next pass by at most leaseTTL.
	reconcileLease = "reconcile"
	leaseTTL       = 5 * time.Minute
	leaseRenew     = time.Minute
	// stateSweepAfter is where the sweep stopped when a pass ran out of
	// its budget (a payment id); the next pass resumes after it.
	stateSweepAfter = "reconcile.sweep.after"
)

// ReconcileResult counts what a reconciliation pass did.
type ReconcileResult struct {
	// Skipped is true when another replica (or another call) was running a
	// pass: this one did nothing.
	Skipped bool `json:"skipped"`

	// EventsRead counts the events of handled types the Events API listed;
	// EventsApplied those applied now (their webhook was lost or is late),
	// and the events stored unmatched before whose payment is found now
	// (they came before the event that names it); EventsKnown those
	// already stored, EventsFailed those that could not be stored (they
	// are read again next pass).
	EventsRead    int `json:"eventsRead"`
	EventsApplied int `json:"eventsApplied"`
	EventsKnown   int `json:"eventsKnown"`
	EventsFailed  int `json:"eventsFailed"`
	// EventsError is why the Events API could not be read to the end, if
	// it could not ("" when it was).
	EventsError string `json:"eventsError,omitempty"`
	// Lag is the age of the oldest event found not yet applied (0 when
	// every event was known): how late this pass repaired a lost webhook.
	Lag time.Duration `json:"lagNs"`

	// Checked counts the payments the sweep re-read from Stripe, Updated
	// those that changed, Failed those that could not be reconciled
	// (Stripe unreachable, say; retried next pass).
	Checked int `json:"checked"`
	Updated int `json:"updated"`
	Failed  int `json:"failed"`
	// Complete is true when the sweep reached the last payment; false when
	// it ran out of ReconcileBudget (the next pass resumes where it stopped).
	Complete bool `json:"complete"`
}

// Reconcile catches up with Stripe where webhooks were lost, in one pass:
//
//  1. The Events API: every event of a handled type created since the
//     last complete pass (a persisted cursor, with a few minutes' overlap;
//     the first pass reads Stripe's whole 30-day window) that is not stored
//     yet is applied through the same path as a webhook (stored once by its
//     evt_ id, history source "reconcile", callbacks as for the webhook).
//     This finds what the sweep cannot: refunds, disputes and failures on
//     payments that are already final.
//  2. The sweep: every payment that is not final (pending, processing,
//     failed) and at most 30 days old is re-read from Stripe (its
//     PaymentIntent, Checkout Session or the completed sessions of its
//     payment link) and what Stripe says is applied through the same state
//     machine. Refunds reserved over an hour ago whose Stripe call had an
//     unknown outcome are settled: matched to Stripe's refund by
//     paygate_refund_id, or marked failed when Stripe has none. The sweep
//     reads payments in batches for at most ReconcileBudget, and the next
//     pass resumes where one stopped.
//
// One pass runs at a time across every replica sharing the Store (a lease
// row); a call made while another pass runs returns a result with Skipped
// set. A payment or event that fails (Stripe unreachable, say) is counted
// and left for the next pass; Reconcile returns an error only when it
// cannot start (no Stripe key, the database unreachable) or loses its lease.
func (g *Gateway) Reconcile(ctx context.Context) (*ReconcileResult, error) {
	api, err := g.stripeAPI()
	if err != nil {
		return nil, err
	}
	res := &ReconcileResult{}
	// The lease is per Gateway (its holder name): a second call in this
	// process while a pass runs would renew it, so it is kept out here.
	if !g.reconciling.TryLock() {
		res.Skipped = true
		g.metrics.reconcilePass("skipped")
		return res, nil
	}
	defer g.reconciling.Unlock()
	ok, err := g.store.TryLease(ctx, reconcileLease, g.leaseID, g.now(), leaseTTL)
	if err != nil {
		return nil, err
	}
	if !ok {
		res.Skipped = true
		g.metrics.reconcilePass("skipped")
		g.log.LogAttrs(ctx, slog.LevelInfo, "paygate: reconciliation skipped: another pass is running")
		return res, nil
	}
	defer func() {
		if err := g.store.ReleaseLease(context.WithoutCancel(ctx), reconcileLease, g.leaseID); err != nil {
			g.log.LogAttrs(ctx, slog.LevelWarn, "paygate: releasing the reconciliation lease failed", attrErr(err))
		}
	}()
	started := time.Now()
	lease := &leaseKeeper{g: g, renewed: started}

	if err := g.reconcileEvents(ctx, api, res, lease); err != nil {
		if errors.Is(err, errLeaseLost) {
			g.metrics.reconcilePass("failed")
			return res, err
		}
		res.EventsError = err.Error()
		g.log.LogAttrs(ctx, slog.LevelWarn, "paygate: reconciliation: reading Stripe's events failed", attrErr(err))
	}
	if err := g.rematchEvents(ctx, res, lease); err != nil {
		if errors.Is(err, errLeaseLost) {
			g.metrics.reconcilePass("failed")
			return res, err
		}
		g.log.LogAttrs(ctx, slog.LevelWarn, "paygate: reconciliation: reading unmatched events failed", attrErr(err))
	}
	if err := g.sweep(ctx, api, res, lease, started.Add(g.cfg.ReconcileBudget)); err != nil {
		g.metrics.reconcilePass("failed")
		return res, err
	}

	outcome := "completed"
	if !res.Complete || res.EventsError != "" {
		outcome = "partial"
	}
	g.metrics.reconcileDone(outcome, res)
	fields := map[string]any{"eventsRead": res.EventsRead, "eventsApplied": res.EventsApplied, "eventsKnown": res.EventsKnown,
		"eventsFailed": res.EventsFailed, "lagSeconds": int64(res.Lag / time.Second),
		"checked": res.Checked, "updated": res.Updated, "failed": res.Failed, "complete": res.Complete}
	g.syslog(ctx, LevelInfo, SourcePayment, "reconciliation pass", fields)
	g.log.LogAttrs(ctx, slog.LevelInfo, "paygate: reconciliation pass",
		slog.Int("events_read", res.EventsRead), slog.Int("events_applied", res.EventsApplied), slog.Int("events_known", res.EventsKnown),
		slog.Int("events_failed", res.EventsFailed), slog.Duration("lag", res.Lag),
		slog.Int("checked", res.Checked), slog.Int("updated", res.Updated), slog.Int("failed", res.Failed),
		slog.Bool("complete", res.Complete), slog.Duration("took", time.Since(started)))
	return res, nil
}

var errLeaseLost = errors.New("paygate: reconciliation lease lost to another replica (this pass was stalled longer than the lease)")

// leaseKeeper renews the reconciliation lease while a pass runs.
type leaseKeeper struct {
	g       *Gateway
	renewed time.Time
}

// keep renews the lease when it was last renewed over leaseRenew ago, and
// returns errLeaseLost when another replica holds it now.
func (l *leaseKeeper) keep(ctx context.Context) error {
	if time.Since(l.renewed) < leaseRenew {
		return nil
	}
	ok, err := l.g.store.TryLease(ctx, reconcileLease, l.g.leaseID, l.g.now(), leaseTTL)
	if err != nil {
		return err
	}
	if !ok {
		return errLeaseLost
	}
	l.renewed = time.Now()
	return nil
}

// sweep re-reads from Stripe the payments that are not final, in batches,
// until they are all checked or the deadline passes.
func (g *Gateway) sweep(ctx context.Context, api *stripeClients, res *ReconcileResult, lease *leaseKeeper, deadline time.Time) error {
	after, err := g.store.GetState(ctx, stateSweepAfter)
	if err != nil {
		return err
	}
	now := g.now()
	for ctx.Err() == nil && time.Now().Before(deadline) {
		ids, err := g.store.PaymentsToReconcile(ctx, now.Add(-ReconcileWindow), now.Add(-refundSettleAfter), after, reconcileBatch)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if ctx.Err() != nil || !time.Now().Before(deadline) {
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
			after = id
			g.metrics.reconcilePayment(err, changed)
		}
		if err := lease.keep(ctx); err != nil {
			return err
		}
		if len(ids) < reconcileBatch && (len(ids) == 0 || after == ids[len(ids)-1]) {
			res.Complete, after = true, ""
			break
		}
	}
	if err := g.store.SetState(context.WithoutCancel(ctx), stateSweepAfter, after); err != nil {
		return err
	}
	return nil
}

// reconcilePayment brings one payment up to date with Stripe and reports
// whether anything changed.
func (g *Gateway) reconcilePayment(ctx context.Context, api *stripeClients, id string) (bool, error) {
	p, err := g.store.GetPayment(ctx, id)
	if err != nil {
		return false, err
	}
	readAt := g.now()
	events, err := g.stripeView(ctx, api, p)
	if err != nil {
		return false, err
	}
	for i := range events {
		events[i].asOf = readAt
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
			for i := range h {
				if h[i].EventType == HistoryRefundCreated { // a released reservation was never announced
					g.queueCallbacks(p, eventObject{typ: "refund.created"}, h[i:i+1], now)
				}
			}
			hist = append(hist, h...)
		}
		changed = len(hist) > 0
		return hist, nil
	})
	if err == nil && changed && g.cfg.CallbackURL != "" {
		g.cfg.OnCallbacksQueued() // Run's engine sends them now
	}
	return changed, err
}

// stripeView asks Stripe for the objects behind p and returns them as the
// events that would have reported their state (none when there is nothing
// to apply). A Checkout Session (of a checkout payment, or the completed
// one of a payment link) is read with its PaymentIntent: the session tells
// whether it completed or expired, the PaymentIntent which charge paid or
// failed.
func (g *Gateway) stripeView(ctx context.Context, api *stripeClients, p *Payment) ([]eventObject, error) {
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
func (g *Gateway) sessionEvents(ctx context.Context, api *stripeClients, s *stripe.CheckoutSession) ([]eventObject, error) {
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
	if e, ok := asyncPaymentFailed(s, pi); ok {
		out = append(out, e)
	}
	return out, nil
}

// asyncPaymentFailed reports what Stripe's current state of a session and
// its PaymentIntent shows and no single read of either does: a session
// completes once, and when its delayed payment (a bank debit) fails Stripe
// leaves it complete and unpaid and puts its PaymentIntent back to
// requires_payment_method — what checkout.session.async_payment_failed
// reported. (From the PaymentIntent alone a failed charge of an unpaid
// session may be a card declined before the bank debit.)
func asyncPaymentFailed(s *stripe.CheckoutSession, pi *stripe.PaymentIntent) (eventObject, bool) {
	if s.Status != stripe.CheckoutSessionStatusComplete || s.PaymentStatus != stripe.CheckoutSessionPaymentStatusUnpaid ||
		pi.Status != stripe.PaymentIntentStatusRequiresPaymentMethod || pi.LastPaymentError == nil {
		return eventObject{}, false
	}
	_, o, _ := sessionView(s)
	return eventObject{typ: "checkout.session.async_payment_failed", obj: o}, true
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
		o.CustomerDetails = &customerDetails{Email: s.CustomerDetails.Email}
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
func (g *Gateway) stripeRefunds(ctx context.Context, api *stripeClients, pi string) ([]stripeObject, error) {
	params := &stripe.RefundListParams{PaymentIntent: stripe.String(pi)}
	params.Context = ctx
	it := api.Refunds.List(params)
	out := []stripeObject{}
	for it.Next() {
		r := it.Refund()
		out = append(out, stripeObject{ID: r.ID, Object: "refund", Status: string(r.Status), Amount: r.Amount, Reason: string(r.Reason), Metadata: r.Metadata, Created: r.Created})
	}
	if err := it.Err(); err != nil {
		return nil, g.stripeError(ctx, err)
	}
	return out, nil
}

// settleRefunds matches refunds reserved before `before` and never
// confirmed to Stripe's refunds (by paygate_refund_id), as Stripe's answer
// or webhook would have (refund_created, announced now); a reservation
// Stripe has no refund for was never made: it is released (refund_failed,
// never announced, so settleRefunds's caller queues no callback for it).
func settleRefunds(p *Payment, stripeRefunds []stripeObject, before, now time.Time) []HistoryEntry {
	var hist []HistoryEntry
	for _, r := range slices.Clone(p.Refunds) {
		if r.Status != RefundPending || r.StripeRefundID != "" || !r.CreatedAt.Before(before) || !r.UpdatedAt.Before(before) {
			continue
		}
		o := &stripeObject{Object: "refund", Status: string(stripe.RefundStatusFailed), Amount: r.Amount}
		typ := "refund.failed"
		for j := range stripeRefunds {
			if stripeRefunds[j].Metadata[metadataRefundKey] == r.ID {
				found := stripeRefunds[j]
				o, typ = &found, "refund.created"
			}
		}
		o.Metadata = map[string]string{metadataRefundKey: r.ID}
		h := applyEvent(p, eventObject{typ: typ, obj: o}, SourceReconcile, now)
		for i := range h {
			h[i].Data = marshalMerge(h[i].Data, map[string]any{"note": "settled by reconciliation"})
		}
		hist = append(hist, h...)
	}
	return hist
}
