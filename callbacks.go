package paygate

import (
	"context"
	"net/url"
	"regexp"
	"time"

	"github.com/numedapp/paygate/callback"
	"github.com/numedapp/paygate/callback/verify"
)

// CallbackStatus is the state of a queued callback (defined in package
// callback, which delivers them).
type CallbackStatus = callback.Status

// The callback statuses.
const (
	CallbackPending   = callback.StatusPending   // waiting for its next attempt (or being sent)
	CallbackSucceeded = callback.StatusSucceeded // the merchant answered 2xx
	CallbackFailed    = callback.StatusFailed    // 410 Gone, or the schedule ran out
)

// Callback is one message to the merchant's system, queued in the outbox in
// the same transaction as the payment change it reports (see
// callback.Callback).
type Callback = callback.Callback

// CallbackAttempt is one delivery attempt: a callback log row (API.md §4).
type CallbackAttempt = callback.Attempt

// CallbackFilter selects callback log rows.
type CallbackFilter struct {
	Success        *bool
	WebhookEventID string
	PaymentID      string
	PageParams
}

// callbackStore is the part of Store for callbacks: the outbox Run's
// engine works from (callback.Queue: claim with a lease, record each
// attempt), its read side and control.
type callbackStore interface {
	callback.Queue

	// ListCallbackAttempts returns one page of callback log rows, newest first.
	ListCallbackAttempts(ctx context.Context, f CallbackFilter) (*Page[CallbackAttempt], error)
	// RetryCallback makes a callback due at now again (whatever its status),
	// keeping its id. It returns ErrNotFound for an unknown id.
	RetryCallback(ctx context.Context, id string, now time.Time) (*Callback, error)
	// CallbackQueueDepth counts callbacks still pending.
	CallbackQueueDepth(ctx context.Context) (int64, error)
}

// Callback actions and their messages (API.md §4).
var callbackActions = map[HistoryType]struct{ action, message string }{
	HistoryPaymentSucceeded:  {verify.ActionPaymentSucceeded, "Payment succeeded"},
	HistoryPaymentFailed:     {verify.ActionPaymentFailed, "Payment failed"},
	HistoryPaymentProcessing: {verify.ActionPaymentProcessing, "Payment processing"},
	HistoryPaymentCanceled:   {verify.ActionPaymentCanceled, "Payment canceled"},
	HistoryCheckoutCompleted: {verify.ActionCheckoutCompleted, "Checkout session completed"},
	HistoryCheckoutExpired:   {verify.ActionCheckoutExpired, "Checkout session expired"},
	HistoryRefundCreated:     {verify.ActionRefundCreated, "Refund created"},
	HistoryRefundUpdated:     {verify.ActionRefundUpdated, "Refund updated"},
	HistoryRefundFailed:      {verify.ActionRefundUpdated, "Refund failed"},
	HistoryDisputeCreated:    {verify.ActionDisputeCreated, "Dispute created"},
	HistoryDisputeUpdated:    {verify.ActionDisputeUpdated, "Dispute updated"},
	HistoryDisputeClosed:     {verify.ActionDisputeClosed, "Dispute closed"},
}

// CallbackPayload is the body sent to the merchant (API.md §4). It is
// defined in the merchant's standard-library-only package, so paygate and
// its receivers share one definition.
type CallbackPayload = verify.Payload

// CallbackData is a callback's data: the payment as the change left it.
// It always has paymentId, paymentIntentId, amount, currency, status and
// metadata; checkout events add sessionId, amountTotal and paymentStatus;
// refund events add amountRefunded, refundId, refundStatus and
// refundAmount; dispute events add disputeId, disputeAmount, disputeReason
// and disputeStatus.
type CallbackData = verify.Data

var callbackIDPattern = regexp.MustCompile(`^cb_[0-9a-z]{1,64}$`)

// ListCallbacks returns one page of callback log rows (one per attempt),
// newest first.
func (g *Gateway) ListCallbacks(ctx context.Context, f CallbackFilter) (*Page[CallbackAttempt], error) {
	if f.WebhookEventID != "" && !eventIDPattern.MatchString(f.WebhookEventID) {
		return nil, invalidParam("webhookEventId", "webhookEventId must be a Stripe event id (evt_…)")
	}
	if f.PaymentID != "" && !paymentIDPattern.MatchString(f.PaymentID) {
		return nil, invalidParam("paymentId", "paymentId must be a payment id (pay_…)")
	}
	if err := checkPage(&f.PageParams); err != nil {
		return nil, err
	}
	return g.store.ListCallbackAttempts(ctx, f)
}

// RetryCallback queues a callback (by its callbackId) to be sent again now,
// with the same webhook-id, whatever became of it before.
func (g *Gateway) RetryCallback(ctx context.Context, id string) (*Callback, error) {
	if !callbackIDPattern.MatchString(id) {
		return nil, invalidParam("id", "id must be a callback id (cb_…)")
	}
	c, err := g.store.RetryCallback(ctx, id, g.now())
	if err == nil {
		if e := g.engine.Load(); e != nil {
			e.ProbeNow() // a receiver thought down is tried again now
		}
		g.cfg.OnCallbacksQueued() // Run's engine sends it now
	}
	return c, err
}

// callbackHost is the scheme and host of the callback URL, for display.
func callbackHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
