package paygate

import (
	"context"
	"net/url"
	"regexp"
	"time"

	"github.com/numedapp/paygate/callback"
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
	HistoryPaymentSucceeded:  {"payment_succeeded", "Payment succeeded"},
	HistoryPaymentFailed:     {"payment_failed", "Payment failed"},
	HistoryPaymentProcessing: {"payment_processing", "Payment processing"},
	HistoryPaymentCanceled:   {"payment_canceled", "Payment canceled"},
	HistoryCheckoutCompleted: {"checkout_completed", "Checkout session completed"},
	HistoryCheckoutExpired:   {"checkout_expired", "Checkout session expired"},
	HistoryRefundCreated:     {"refund_created", "Refund created"},
	HistoryRefundUpdated:     {"refund_updated", "Refund updated"},
	HistoryRefundFailed:      {"refund_updated", "Refund failed"},
	HistoryDisputeCreated:    {"dispute_created", "Dispute created"},
	HistoryDisputeUpdated:    {"dispute_updated", "Dispute updated"},
	HistoryDisputeClosed:     {"dispute_closed", "Dispute closed"},
}

// callbackPayload is the body sent to the merchant: the guide's shape plus
// paymentId, sequence and timestamp.
type callbackPayload struct {
	EventID   string       `json:"eventId"`
	EventType string       `json:"eventType"`
	Action    string       `json:"action"`
	Message   string       `json:"message"`
	Data      callbackData `json:"data"`
	PaymentID string       `json:"paymentId"`
	Sequence  int64        `json:"sequence"`
	Timestamp string       `json:"timestamp"`
}

// callbackData always has paymentId, paymentIntentId, amount, currency,
// status and metadata; checkout events add sessionId, amountTotal and
// paymentStatus; refund events add amountRefunded, refundId, refundStatus
// and refundAmount; dispute events add disputeId, disputeAmount,
// disputeReason and disputeStatus.
type callbackData struct {
	PaymentID       string            `json:"paymentId"`
	SessionID       *string           `json:"sessionId,omitempty"`
	PaymentIntentID string            `json:"paymentIntentId"`
	Amount          int64             `json:"amount"`
	AmountTotal     *int64            `json:"amountTotal,omitempty"`
	AmountRefunded  *int64            `json:"amountRefunded,omitempty"`
	Currency        string            `json:"currency"`
	Status          Status            `json:"status"`
	PaymentStatus   *string           `json:"paymentStatus,omitempty"`
	RefundID        *string           `json:"refundId,omitempty"`
	RefundStatus    *string           `json:"refundStatus,omitempty"`
	RefundAmount    *int64            `json:"refundAmount,omitempty"`
	DisputeID       *string           `json:"disputeId,omitempty"`
	DisputeAmount   *int64            `json:"disputeAmount,omitempty"`
	DisputeReason   *string           `json:"disputeReason,omitempty"`
	DisputeStatus   *string           `json:"disputeStatus,omitempty"`
	Metadata        map[string]string `json:"metadata"`
}

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
