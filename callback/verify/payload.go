package verify

// Payload is the JSON body of every callback: the original guide's shape
// (eventId, eventType, action, message, data) plus paymentId, sequence and
// timestamp.
type Payload struct {
	// EventID is the Stripe event (evt_…) that caused the change; empty
	// when an API call or reconciliation saw it first.
	EventID string `json:"eventId"`
	// EventType is the Stripe event's type ("payment_intent.succeeded").
	EventType string `json:"eventType"`
	// Action is what happened to the payment: one of the Action constants.
	Action string `json:"action"`
	// Message is a human-readable Action ("Payment succeeded").
	Message string `json:"message"`
	// Data is the payment as the change left it.
	Data Data `json:"data"`
	// PaymentID is the payment's id (pay_…), as in Data.
	PaymentID string `json:"paymentId"`
	// Sequence grows strictly per payment: a callback with a sequence at
	// or below the last one applied for its payment is stale; drop it.
	Sequence int64 `json:"sequence"`
	// Timestamp is when the change was recorded (RFC 3339).
	Timestamp string `json:"timestamp"`
}

// Data is the payment a callback reports. PaymentID, PaymentIntentID,
// Amount, Currency, Status and Metadata are always present; checkout events
// add SessionID, AmountTotal and PaymentStatus; refund events add
// AmountRefunded, RefundID, RefundStatus and RefundAmount; dispute events add
// the Dispute fields. Absent fields are nil. Amounts are in minor units.
type Data struct {
	PaymentID       string  `json:"paymentId"`
	SessionID       *string `json:"sessionId,omitempty"`
	PaymentIntentID string  `json:"paymentIntentId"`
	Amount          int64   `json:"amount"`
	AmountTotal     *int64  `json:"amountTotal,omitempty"`
	AmountRefunded  *int64  `json:"amountRefunded,omitempty"`
	Currency        string  `json:"currency"`
	// Status is the payment's status: pending, processing, succeeded,
	// failed, canceled, expired, partially_refunded or refunded.
	Status        string  `json:"status"`
	PaymentStatus *string `json:"paymentStatus,omitempty"` // Checkout's: paid, unpaid, no_payment_required
	RefundID      *string `json:"refundId,omitempty"`      // Stripe's re_ id
	RefundStatus  *string `json:"refundStatus,omitempty"`  // pending, succeeded, failed, canceled
	RefundAmount  *int64  `json:"refundAmount,omitempty"`  // this refund's amount
	DisputeID     *string `json:"disputeId,omitempty"`     // Stripe's dp_ id
	DisputeAmount *int64  `json:"disputeAmount,omitempty"`
	DisputeReason *string `json:"disputeReason,omitempty"`
	DisputeStatus *string `json:"disputeStatus,omitempty"`
	// Metadata is the metadata the payment was created with.
	Metadata map[string]string `json:"metadata"`
}

// The callback actions (Payload.Action).
const (
	ActionPaymentSucceeded  = "payment_succeeded"
	ActionPaymentFailed     = "payment_failed"
	ActionPaymentProcessing = "payment_processing"
	ActionPaymentCanceled   = "payment_canceled"
	ActionCheckoutCompleted = "checkout_completed"
	ActionCheckoutExpired   = "checkout_expired"
	ActionRefundCreated     = "refund_created" // a refund became known
	ActionRefundUpdated     = "refund_updated" // a refund's status changed
	ActionDisputeCreated    = "dispute_created"
	ActionDisputeUpdated    = "dispute_updated"
	ActionDisputeClosed     = "dispute_closed"
)

// Actions lists every action, in the order above.
func Actions() []string {
	return []string{
		ActionPaymentSucceeded, ActionPaymentFailed, ActionPaymentProcessing, ActionPaymentCanceled,
		ActionCheckoutCompleted, ActionCheckoutExpired, ActionRefundCreated, ActionRefundUpdated,
		ActionDisputeCreated, ActionDisputeUpdated, ActionDisputeClosed,
	}
}
