package paygate

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stripe/stripe-go/v76"
)

// Method is the kind of Stripe object that backs a payment.
type Method string

// The payment methods.
const (
	MethodLink     Method = "link"     // a Payment Link (generate-url)
	MethodIntent   Method = "intent"   // a PaymentIntent for Stripe Elements
	MethodCheckout Method = "checkout" // a Checkout Session
)

// Status is a payment's status. Statuses are ranked (see [Status.Rank]): a
// payment only ever moves to a higher rank, so the status a set of events
// leads to does not depend on the order they arrive in.
type Status string

// The payment statuses, lowest rank first. StatusPartiallyRefunded and
// StatusRefunded are not ranked on their own: they are StatusSucceeded with
// refunds, derived from the refunded amount.
const (
	StatusPending           Status = "pending"
	StatusProcessing        Status = "processing"
	StatusFailed            Status = "failed" // not final: the customer may retry and succeed
	StatusExpired           Status = "expired"
	StatusCanceled          Status = "canceled"
	StatusSucceeded         Status = "succeeded"
	StatusPartiallyRefunded Status = "partially_refunded"
	StatusRefunded          Status = "refunded"
)

var statusRank = map[Status]int{
	StatusPending:           0,
	StatusProcessing:        1,
	StatusFailed:            2,
	StatusExpired:           3,
	StatusCanceled:          4,
	StatusSucceeded:         5,
	StatusPartiallyRefunded: 5,
	StatusRefunded:          5,
}

// Rank orders statuses for the state machine; -1 for an unknown status.
func (s Status) Rank() int {
	if r, ok := statusRank[s]; ok {
		return r
	}
	return -1
}

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return s.Rank() >= 0 }

// Valid reports whether m is a known method.
func (m Method) Valid() bool {
	return m == MethodLink || m == MethodIntent || m == MethodCheckout
}

// RefundStatus is the status of one refund. Final statuses never change.
type RefundStatus string

// The refund statuses.
const (
	RefundPending   RefundStatus = "pending"
	RefundSucceeded RefundStatus = "succeeded"
	RefundFailed    RefundStatus = "failed"
	RefundCanceled  RefundStatus = "canceled"
)

// counts reports whether the refund's amount counts as refunded.
func (s RefundStatus) counts() bool { return s == RefundPending || s == RefundSucceeded }

// Payment is this service's record of one attempt to be paid.
type Payment struct {
	ID             string `json:"id"`
	Method         Method `json:"method"`
	Status         Status `json:"status"`
	Amount         int64  `json:"amount"` // minor units: unit price × quantity
	AmountRefunded int64  `json:"amountRefunded"`
	Currency       string `json:"currency"`
	Description    string `json:"description"`
	ProductName    string `json:"productName"`
	Quantity       int64  `json:"quantity"`
	CustomerEmail  string `json:"customerEmail"`
	// Metadata is the caller's own metadata, without paygate_payment_id.
	Metadata          map[string]string `json:"metadata"`
	PaymentURL        string            `json:"paymentUrl"`
	PaymentLinkID     string            `json:"paymentLinkId"`
	CheckoutSessionID string            `json:"checkoutSessionId"`
	PaymentIntentID   string            `json:"paymentIntentId"`
	ChargeID          string            `json:"chargeId"`
	Refunds           []Refund          `json:"refunds"`
	Livemode          bool              `json:"livemode"`
	CreatedAt         time.Time         `json:"createdAt"`
	UpdatedAt         time.Time         `json:"updatedAt"`

	// PriceID is the Stripe Price created for a payment link.
	PriceID string `json:"-"`
	// Attempts are the tries to pay at Stripe (see [Attempt]); the status,
	// PaymentIntentID and ChargeID are derived from them.
	Attempts []Attempt `json:"-"`
	// Disputes are the chargebacks on the payment's charges.
	Disputes []Dispute `json:"-"`
	// StripeAmountRefunded is the cumulative refunded amount of the charge
	// as Stripe last reported it (charge.refunded) at StripeRefundedAt;
	// only the part of it no known refund explains counts (see
	// refundedAmount).
	StripeAmountRefunded int64     `json:"-"`
	StripeRefundedAt     time.Time `json:"-"`
	// CallbackSeq is the sequence number of the payment's last callback.
	CallbackSeq int64 `json:"-"`
}

// Refund is one refund of a payment.
type Refund struct {
	// ID is this service's id of the refund (rf_…), sent to Stripe as
	// metadata paygate_refund_id.
	ID string `json:"-"`
	// StripeRefundID is Stripe's re_ id; empty until Stripe answered.
	StripeRefundID string       `json:"refundId"`
	Amount         int64        `json:"amount"`
	Status         RefundStatus `json:"status"`
	Reason         string       `json:"reason"`
	CreatedAt      time.Time    `json:"createdAt"`
	UpdatedAt      time.Time    `json:"-"`
}

// HistoryType is the type of a payment history entry.
type HistoryType string

// The history entry types (API.md §2).
const (
	HistoryPaymentCreated    HistoryType = "payment_created"
	HistoryPaymentProcessing HistoryType = "payment_processing"
	HistoryPaymentSucceeded  HistoryType = "payment_succeeded"
	HistoryPaymentFailed     HistoryType = "payment_failed"
	HistoryPaymentCanceled   HistoryType = "payment_canceled"
	HistoryCheckoutCompleted HistoryType = "checkout_completed"
	HistoryCheckoutExpired   HistoryType = "checkout_expired"
	HistoryRefundCreated     HistoryType = "refund_created"
	HistoryRefundUpdated     HistoryType = "refund_updated"
	HistoryRefundFailed      HistoryType = "refund_failed"
	HistoryDisputeCreated    HistoryType = "dispute_created"
	HistoryDisputeUpdated    HistoryType = "dispute_updated"
	HistoryDisputeClosed     HistoryType = "dispute_closed"
	HistoryStatusChanged     HistoryType = "status_changed"
)

var historyTypes = map[HistoryType]bool{
	HistoryPaymentCreated: true, HistoryPaymentProcessing: true, HistoryPaymentSucceeded: true,
	HistoryPaymentFailed: true, HistoryPaymentCanceled: true, HistoryCheckoutCompleted: true,
	HistoryCheckoutExpired: true, HistoryRefundCreated: true, HistoryRefundUpdated: true,
	HistoryRefundFailed: true, HistoryDisputeCreated: true, HistoryDisputeUpdated: true, HistoryDisputeClosed: true,
	HistoryStatusChanged: true,
}

// Valid reports whether t is a known history type.
func (t HistoryType) Valid() bool { return historyTypes[t] }

// History sources.
const (
	SourceAPI       = "api"
	SourceWebhook   = "webhook"
	SourceReconcile = "reconcile"
)

// HistoryEntry is one row of a payment's timeline.
type HistoryEntry struct {
	ID              string          `json:"id"`
	PaymentID       string          `json:"paymentId"`
	PaymentIntentID string          `json:"paymentIntentId"`
	EventType       HistoryType     `json:"eventType"`
	FromStatus      Status          `json:"fromStatus"`
	ToStatus        Status          `json:"toStatus"`
	Amount          int64           `json:"amount"`
	Currency        string          `json:"currency"`
	StripeEventID   string          `json:"stripeEventId"`
	Source          string          `json:"source"`
	Data            json.RawMessage `json:"data"`
	CreatedAt       time.Time       `json:"createdAt"`

	// Callback, when set, is queued to the merchant in the same
	// transaction as this entry.
	Callback *Callback `json:"-"`
}

// PaymentWithHistory is a payment with its timeline, oldest first.
type PaymentWithHistory struct {
	*Payment
	History []HistoryEntry `json:"history"`
}

// history builds a history entry for the payment as it is now, as the
// merchant is told of it (statusShown).
func (p *Payment) history(t HistoryType, from Status, source string, amount int64, data any, now time.Time) HistoryEntry {
	raw, _ := json.Marshal(data)
	if data == nil {
		raw = json.RawMessage("{}")
	}
	return HistoryEntry{
		PaymentID:       p.ID,
		PaymentIntentID: p.PaymentIntentID,
		EventType:       t,
		FromStatus:      from,
		ToStatus:        p.statusShown(),
		Amount:          amount,
		Currency:        p.Currency,
		Source:          source,
		Data:            raw,
		CreatedAt:       now,
	}
}

// statusHistoryType names the history entry for a move to status s.
func statusHistoryType(s Status) HistoryType {
	switch s {
	case StatusProcessing:
		return HistoryPaymentProcessing
	case StatusSucceeded:
		return HistoryPaymentSucceeded
	case StatusFailed:
		return HistoryPaymentFailed
	case StatusCanceled:
		return HistoryPaymentCanceled
	case StatusExpired:
		return HistoryCheckoutExpired
	}
	return HistoryStatusChanged
}

// Id formats. Our ids are a prefix and 24 characters of [0-9a-z]; Stripe's
// are a prefix and up to 255 alphanumerics (plus _ in some test fixtures).
var (
	paymentIDPattern = regexp.MustCompile(`^pay_[0-9a-zA-Z]{1,64}$`)
	intentIDPattern  = regexp.MustCompile(`^pi_[0-9a-zA-Z_]{1,255}$`)
)

const idAlphabet = "0123456789abcdefghijklmnopqrstuvwxyz"

// newID returns prefix_ followed by 24 random characters (~124 bits).
func newID(prefix string) string {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("paygate: crypto/rand failed: %v", err)) // cannot happen on supported platforms
	}
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return prefix + "_" + string(b[:])
}

// MetadataKey is the metadata key carrying our payment id on every Stripe
// object paygate creates.
const MetadataKey = "paygate_payment_id"

// metadataRefundKey carries our refund id on refunds.
const metadataRefundKey = "paygate_refund_id"

// GetPayment returns the payment with id (pay_…) and its history, oldest first.
// It returns a *Error of code not_found when there is none, invalid_request
// when id is malformed.
func (g *Gateway) GetPayment(ctx context.Context, id string) (*PaymentWithHistory, error) {
	if !paymentIDPattern.MatchString(id) {
		return nil, invalidParam("id", "id must be a payment id (pay_…)")
	}
	p, err := g.store.GetPayment(ctx, id)
	if err != nil {
		return nil, err
	}
	h, err := g.store.PaymentHistory(ctx, id)
	if err != nil {
		return nil, err
	}
	return &PaymentWithHistory{Payment: p, History: h}, nil
}

// ListPayments returns one page of payments matching f, newest first.
func (g *Gateway) ListPayments(ctx context.Context, f PaymentFilter) (*Page[Payment], error) {
	if f.Status != "" && !f.Status.Valid() {
		return nil, invalidParam("status", "status must be one of pending, processing, succeeded, failed, canceled, expired, partially_refunded, refunded")
	}
	if f.Method != "" && !f.Method.Valid() {
		return nil, invalidParam("method", "method must be one of link, intent, checkout")
	}
	if f.CustomerEmail != "" && (len(f.CustomerEmail) > maxEmailLen || !utf8.ValidString(f.CustomerEmail) || hasControl(f.CustomerEmail)) {
		return nil, invalidParam("customerEmail", "customerEmail must be an email address")
	}
	if !f.CreatedFrom.IsZero() && !f.CreatedTo.IsZero() && !f.CreatedFrom.Before(f.CreatedTo) {
		return nil, invalidParam("createdTo", "createdTo must be after createdFrom")
	}
	if err := checkPage(&f.PageParams); err != nil {
		return nil, err
	}
	return g.store.ListPayments(ctx, f)
}

// ListHistory returns one page of payment history entries, newest first.
func (g *Gateway) ListHistory(ctx context.Context, f HistoryFilter) (*Page[HistoryEntry], error) {
	if f.PaymentID != "" && !paymentIDPattern.MatchString(f.PaymentID) {
		return nil, invalidParam("paymentId", "paymentId must be a payment id (pay_…)")
	}
	if f.PaymentIntentID != "" && !intentIDPattern.MatchString(f.PaymentIntentID) {
		return nil, invalidParam("paymentIntentId", "paymentIntentId must be a PaymentIntent id (pi_…)")
	}
	if f.EventType != "" && !f.EventType.Valid() {
		return nil, invalidParam("eventType", "eventType %q is not a history event type", truncate(string(f.EventType), 40))
	}
	if err := checkPage(&f.PageParams); err != nil {
		return nil, err
	}
	return g.store.ListHistory(ctx, f)
}

// Paging limits (API.md §1).
const (
	DefaultPageLimit = 50
	MaxPageLimit     = 100
	maxOffset        = 1_000_000
)

// checkPage applies the default limit, clamps it to the maximum, and
// validates offset and cursor.
func checkPage(p *PageParams) error {
	switch {
	case p.Limit == 0:
		p.Limit = DefaultPageLimit
	case p.Limit < 0:
		return invalidParam("limit", "limit must be between 1 and %d", MaxPageLimit)
	case p.Limit > MaxPageLimit:
		p.Limit = MaxPageLimit
	}
	if p.Offset < 0 || p.Offset > maxOffset {
		return invalidParam("offset", "offset must be between 0 and %d", maxOffset)
	}
	if len(p.Cursor) > 200 {
		return invalidParam("cursor", "cursor is malformed")
	}
	return nil
}

// PaymentLinkParams are the inputs of CreatePaymentLink (generate-url).
type PaymentLinkParams struct {
	// Amount is the unit price in major units of Currency (required).
	Amount Decimal `json:"amount"`
	// Currency defaults to the Gateway's default currency.
	Currency string `json:"currency"`
	// ProductName is shown on the payment page; default "Payment".
	ProductName string `json:"productName"`
	Description string `json:"description"`
	// Quantity defaults to 1; the payment's amount is Amount × Quantity.
	Quantity      *int64   `json:"quantity"`
	CustomerEmail string   `json:"customerEmail"`
	Metadata      Metadata `json:"metadata"`
	// SuccessURL, if set, is where the customer is sent after paying.
	SuccessURL string `json:"successUrl"`
	// IdempotencyKey makes the call safe to retry: the same key always
	// names the same payment (or refund) and the same Stripe objects. The
	// HTTP API sets it from the Idempotency-Key header, scoped per API key.
	IdempotencyKey string `json:"-"`
}

// CreatePaymentLink creates a payment backed by a Stripe Payment Link: a
// Price with an inline product, and a link limited to one completed session
// so that one link is one payment. The payment row is stored before Stripe is
// called. It returns the payment with its PaymentURL.
func (g *Gateway) CreatePaymentLink(ctx context.Context, in PaymentLinkParams) (*Payment, error) {
	p, err := g.newPayment(MethodLink, in.IdempotencyKey, in.Amount, in.Currency, in.Quantity, in.ProductName, in.Description, in.CustomerEmail, in.Metadata)
	if err != nil {
		return nil, err
	}
	if in.SuccessURL != "" {
		if err := checkURL("successUrl", in.SuccessURL); err != nil {
			return nil, err
		}
	}
	var resumed bool
	if p, resumed, err = g.insertPayment(ctx, p, in.IdempotencyKey); err != nil {
		return nil, err
	}
	if p.PaymentLinkID != "" {
		return p, nil // a retry of a request that completed
	}
	api, err := g.stripeAPI()
	if err != nil {
		return nil, g.abandon(ctx, p, resumed, err)
	}

	unit := p.Amount / p.Quantity
	priceParams := &stripe.PriceParams{
		Currency:    stripe.String(p.Currency),
		UnitAmount:  stripe.Int64(unit),
		ProductData: &stripe.PriceProductDataParams{Name: stripe.String(p.ProductName)},
	}
	g.stripeParams(ctx, &priceParams.Params, p, "price")
	price, err := api.Prices.New(priceParams)
	if err != nil {
		return nil, g.abandon(ctx, p, resumed, err)
	}

	linkParams := &stripe.PaymentLinkParams{
		LineItems: []*stripe.PaymentLinkLineItemParams{{Price: stripe.String(price.ID), Quantity: stripe.Int64(p.Quantity)}},
		Restrictions: &stripe.PaymentLinkRestrictionsParams{
			CompletedSessions: &stripe.PaymentLinkRestrictionsCompletedSessionsParams{Limit: stripe.Int64(1)},
		},
		PaymentIntentData: &stripe.PaymentLinkPaymentIntentDataParams{Metadata: stripeMetadata(p)},
	}
	if p.Description != "" {
		linkParams.PaymentIntentData.Description = stripe.String(p.Description)
	}
	if in.SuccessURL != "" {
		linkParams.AfterCompletion = &stripe.PaymentLinkAfterCompletionParams{
			Type:     stripe.String(string(stripe.PaymentLinkAfterCompletionTypeRedirect)),
			Redirect: &stripe.PaymentLinkAfterCompletionRedirectParams{URL: stripe.String(in.SuccessURL)},
		}
	}
	g.stripeParams(ctx, &linkParams.Params, p, "payment_link")
	link, err := api.PaymentLinks.New(linkParams)
	if err != nil {
		return nil, g.abandon(ctx, p, resumed, err)
	}
	return g.attach(ctx, p.ID, func(p *Payment) {
		p.PriceID = price.ID
		p.PaymentLinkID = link.ID
		p.PaymentURL = link.URL
		p.Livemode = link.Livemode
	})
}

// newPayment validates the inputs shared by every way of creating a payment
// and returns the payment to insert.
func (g *Gateway) newPayment(m Method, idemKey string, amount Decimal, currency string, quantity *int64, productName, description, email string, metadata map[string]string) (*Payment, error) {
	if currency == "" {
		currency = g.cfg.DefaultCurrency
	}
	cur, err := LookupCurrency(currency)
	if err != nil {
		return nil, err
	}
	unit, err := cur.ParseAmount(string(amount))
	if err != nil {
		return nil, err
	}
	qty := int64(1)
	if quantity != nil {
		qty = *quantity
		if qty < 1 || qty > maxQuantity {
			return nil, invalidParam("quantity", "quantity must be between 1 and %d", maxQuantity)
		}
	}
	if unit > cur.Max/qty {
		return nil, invalidParam("amount", "amount × quantity exceeds the maximum of %s %s", cur.FormatAmount(cur.Max), strings.ToUpper(cur.Code))
	}
	if productName == "" {
		productName = "Payment"
	}
	if err := checkText("productName", productName, 250); err != nil {
		return nil, err
	}
	if err := checkText("description", description, 1000); err != nil {
		return nil, err
	}
	if email != "" {
		if err := checkEmail("customerEmail", email); err != nil {
			return nil, err
		}
	}
	if err := checkMetadata(metadata); err != nil {
		return nil, err
	}
	if metadata == nil {
		metadata = map[string]string{}
	}
	now := g.now()
	return &Payment{
		ID:            idFor("pay", idemKey),
		Method:        m,
		Status:        StatusPending,
		Amount:        unit * qty,
		Currency:      cur.Code,
		Description:   description,
		ProductName:   productName,
		Quantity:      qty,
		CustomerEmail: email,
		Metadata:      metadata,
		Refunds:       []Refund{},
		CreatedAt:     now,
		UpdatedAt:     now,
	}, nil
}

// maxQuantity bounds a line item's quantity.
const maxQuantity = 10_000

// insertPayment stores a new payment. With an idempotency key, the
// payment's id is derived from the key; if a retry finds it already stored
// (the first attempt failed after inserting it) and it describes the same
// request, the stored payment is resumed: Stripe is asked again with the
// same idempotency keys and answers with the objects it already made
// (resumed reports it: its first call's outcome was unknown).
func (g *Gateway) insertPayment(ctx context.Context, p *Payment, idemKey string) (_ *Payment, resumed bool, err error) {
	err = g.store.InsertPayment(ctx, p)
	if err == nil {
		return p, false, nil
	}
	if idemKey == "" || !errors.Is(err, ErrConflict) {
		return nil, false, fmt.Errorf("insert payment: %w", err)
	}
	old, gerr := g.store.GetPayment(ctx, p.ID)
	if gerr != nil {
		return nil, false, gerr
	}
	if old.Method != p.Method || old.Amount != p.Amount || old.Currency != p.Currency || old.Quantity != p.Quantity {
		return nil, false, &Error{Code: CodeIdempotency, Message: "this Idempotency-Key was already used for a different request"}
	}
	return old, true, nil
}

// idFor returns a new random id, or with an idempotency key an id derived
// from it, so that a retried request names the same object.
func idFor(prefix, idemKey string) string {
	if idemKey == "" {
		return newID(prefix)
	}
	sum := sha256.Sum256([]byte(prefix + "\x00" + idemKey))
	b := make([]byte, 24)
	for i := range b {
		b[i] = idAlphabet[int(sum[i])%len(idAlphabet)]
	}
	return prefix + "_" + string(b)
}

// abandon handles a failed Stripe call made to create a payment's object.
// When Stripe definitely refused, no object exists and the pending row is
// removed; when the outcome is unknown (network, 5xx, a 4xx to a call sent
// more than once) the row stays pending, since an object carrying its id
// may exist and its webhooks must match, and the answer is a 502 (so the
// Idempotency-Key is not spent on it). A resumed payment's first call had
// an unknown outcome: what its retry is answered proves nothing of that
// one, so it too stays pending.
func (g *Gateway) abandon(ctx context.Context, p *Payment, resumed bool, err error) error {
	var e *Error
	if !errors.As(err, &e) {
		e = g.stripeError(ctx, err)
	}
	if !resumed && (errors.As(err, new(*Error)) || stripeRefused(err)) {
		if derr := g.store.DeletePayment(context.WithoutCancel(ctx), p.ID); derr != nil {
			g.log.LogAttrs(ctx, slog.LevelError, "paygate: removing refused payment", attrErr(derr), attrPayment(p.ID))
		}
		return e
	}
	g.log.LogAttrs(ctx, slog.LevelWarn, "paygate: stripe outcome unknown; payment left pending", attrErr(e), attrPayment(p.ID))
	return unknownOutcome(e)
}

// attach stores the Stripe ids of a newly created payment and writes its
// payment_created history entry.
func (g *Gateway) attach(ctx context.Context, id string, set func(p *Payment)) (*Payment, error) {
	now := g.now()
	p, err := g.store.UpdatePayment(context.WithoutCancel(ctx), id, func(p *Payment) ([]HistoryEntry, error) {
		attached := p.PaymentLinkID != "" || p.CheckoutSessionID != "" || p.PaymentIntentID != ""
		set(p)
		if attached {
			return nil, nil // a resumed request: created before
		}
		p.UpdatedAt = now
		return []HistoryEntry{p.history(HistoryPaymentCreated, "", SourceAPI, p.Amount, map[string]any{"method": p.Method}, now)}, nil
	})
	if err == nil {
		g.syslog(ctx, LevelInfo, SourcePayment, "payment created", map[string]any{"paymentId": p.ID, "method": p.Method, "amount": p.Amount, "currency": p.Currency})
	}
	return p, err
}

// stripeMetadata is the metadata every Stripe object of p carries: the
// caller's plus paygate_payment_id.
func stripeMetadata(p *Payment) map[string]string {
	m := make(map[string]string, len(p.Metadata)+1)
	for k, v := range p.Metadata {
		m[k] = v
	}
	m[MetadataKey] = p.ID
	return m
}

// stripeParams sets what every creating Stripe call carries: the context,
// the payment's metadata and an idempotency key derived from the payment id
// and the operation, so that a retried call never creates a second object.
// The call is not canceled when the caller goes away (it is bounded by the
// Stripe client's timeout): an object half made is an unknown outcome.
func (g *Gateway) stripeParams(ctx context.Context, sp *stripe.Params, p *Payment, op string) {
	sp.Context = context.WithoutCancel(ctx)
	sp.SetIdempotencyKey(idempotencyKey(p.ID, op))
	for k, v := range stripeMetadata(p) {
		sp.AddMetadata(k, v)
	}
}

// idempotencyKey derives the Stripe idempotency key of an operation on a payment.
func idempotencyKey(paymentID, op string) string {
	return "paygate:" + paymentID + ":" + op
}

func (p *PaymentLinkParams) setIdempotencyKey(k string) { p.IdempotencyKey = k }
