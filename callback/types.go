package callback

import (
	"encoding/json"
	"time"
)

// Status is the state of a queued callback.
type Status string

// The callback statuses.
const (
	StatusPending   Status = "pending"   // waiting for its next attempt (or being sent)
	StatusSucceeded Status = "succeeded" // the merchant answered 2xx
	StatusFailed    Status = "failed"    // 410 Gone, or the schedule ran out
)

// Callback is one message to the merchant's system, queued in the outbox in
// the same transaction as the payment change it reports. paygate.Callback
// is the same type.
type Callback struct {
	// ID is the callback's id (cb_…); it is also the webhook-id header of
	// every attempt, so receivers can deduplicate.
	ID             string          `json:"id"`
	PaymentID      string          `json:"paymentId"`
	WebhookEventID string          `json:"webhookEventId"` // Stripe's evt_ id
	Sequence       int64           `json:"sequence"`       // per payment, strictly increasing
	EventType      string          `json:"eventType"`
	Action         string          `json:"action"`
	URL            string          `json:"url"`
	Payload        json.RawMessage `json:"payload"` // the exact body sent on every attempt
	Status         Status          `json:"status"`
	Attempts       int             `json:"attempts"`
	NextAttemptAt  time.Time       `json:"nextAttemptAt"`
	LastError      string          `json:"lastError"`
	CreatedAt      time.Time       `json:"createdAt"`
	UpdatedAt      time.Time       `json:"updatedAt"`
	DeliveredAt    *time.Time      `json:"deliveredAt"`

	// LeaseToken identifies the worker holding the callback; the outcome
	// of an attempt is recorded only under the same token. LeaseUntil, when
	// set, is when that lease ends: after it, another worker may claim the
	// callback.
	LeaseToken string    `json:"-"`
	LeaseUntil time.Time `json:"-"`
}

// Attempt is one delivery attempt: a callback log row (API.md §4).
// paygate.CallbackAttempt is the same type.
type Attempt struct {
	ID             string `json:"id"`
	CallbackID     string `json:"callbackId"`
	WebhookEventID string `json:"webhookEventId"`
	PaymentID      string `json:"paymentId"`
	URL            string `json:"url"`
	Attempt        int    `json:"attempt"`
	Success        bool   `json:"success"`
	StatusCode     int    `json:"statusCode"` // 0 when no response
	Error          string `json:"error"`
	// ErrorClass is "", "timeout", "connect", "dns", "tls", "redirect" or "http".
	ErrorClass   string    `json:"errorClass"`
	DurationMs   int64     `json:"durationMs"`
	ResponseBody string    `json:"responseBody"` // first 1 KiB
	CreatedAt    time.Time `json:"createdAt"`
}
