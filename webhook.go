package paygate

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stripe/stripe-go/v76"
)

// DefaultWebhookTolerance is how far a Stripe-Signature timestamp may be
// from now, in the past or in the future.
const DefaultWebhookTolerance = 300 * time.Second

// WebhookPath is where Stripe sends events.
const WebhookPath = "/api/webhooks/stripe"

// HandledEventTypes are the Stripe event types that change payments
// (API.md §3). Other events are stored and marked ignored.
var HandledEventTypes = []string{
	"payment_intent.succeeded",
	"payment_intent.payment_failed",
	"payment_intent.processing",
	"payment_intent.canceled",
	"checkout.session.completed",
	"checkout.session.async_payment_succeeded",
	"checkout.session.async_payment_failed",
	"checkout.session.expired",
	"charge.refunded",
	"charge.refund.updated",
	"charge.dispute.created",
}

// EventStatus is what became of a stored webhook event.
type EventStatus string

// The event statuses.
const (
	EventProcessed EventStatus = "processed" // applied to its payment (possibly changing nothing)
	EventIgnored   EventStatus = "ignored"   // a type paygate does not handle
	EventUnmatched EventStatus = "unmatched" // no payment of this service
	EventFailed    EventStatus = "failed"    // its object could not be read
)

// Valid reports whether s is a known event status.
func (s EventStatus) Valid() bool {
	return s == EventProcessed || s == EventIgnored || s == EventUnmatched || s == EventFailed
}

// WebhookEvent is a Stripe event as stored.
type WebhookEvent struct {
	ID            string      `json:"id"` // Stripe's evt_ id
	Type          string      `json:"type"`
	APIVersion    string      `json:"apiVersion"`
	Livemode      bool        `json:"livemode"`
	Status        EventStatus `json:"status"`
	Error         string      `json:"error"`
	PaymentID     string      `json:"paymentId"`
	ReceivedCount int         `json:"receivedCount"`
	CreatedAt     time.Time   `json:"createdAt"` // Stripe's
	ReceivedAt    time.Time   `json:"receivedAt"`
	ProcessedAt   *time.Time  `json:"processedAt"`
	// Payload is the event as received; only GetWebhookEvent fills it.
	Payload json.RawMessage `json:"payload,omitempty"`
}

// WebhookEventFilter selects events for ListWebhookEvents.
type WebhookEventFilter struct {
	Type   string
	Status EventStatus
	PageParams
}

// PaymentRefs are the ways a Stripe object can name one of our payments,
// tried in this order.
type PaymentRefs struct {
	PaymentID         string // metadata paygate_payment_id
	PaymentLinkID     string
	CheckoutSessionID string
	PaymentIntentID   string
	ChargeID          string
}

// webhookStore is the part of Store that webhook processing uses.
type webhookStore interface {
	// RecordWebhookEvent stores ev once, keyed by its id. For an event seen
	// before it only increments its receivedCount, and returns the stored
	// event with duplicate true. For a new event, in the same transaction, it
	// finds the payment refs name, locks its row and calls apply: the
	// payment's changes, the history entries apply returns and the event's
	// outcome (processed; unmatched when no payment matched; failed with the
	// message when apply returns a *EventError) commit together. Other errors
	// roll everything back. With a nil apply the event is stored with
	// ev.Status (ignored when empty).
	RecordWebhookEvent(ctx context.Context, ev *WebhookEvent, refs PaymentRefs, apply func(p *Payment) ([]HistoryEntry, error)) (stored *WebhookEvent, duplicate bool, err error)
	// ListWebhookEvents returns one page of events, newest received first.
	ListWebhookEvents(ctx context.Context, f WebhookEventFilter) (*Page[WebhookEvent], error)
	// GetWebhookEvent returns one event with its payload.
	GetWebhookEvent(ctx context.Context, id string) (*WebhookEvent, error)
}

// EventError marks an event whose object cannot be applied: the event is
// stored as failed with Message, and Stripe is not asked to resend it.
type EventError struct{ Message string }

func (e *EventError) Error() string { return "paygate: event not applicable: " + e.Message }

// WebhookResult is the outcome of HandleWebhook.
type WebhookResult struct {
	EventID   string      `json:"eventId"`
	Type      string      `json:"type"`
	Status    EventStatus `json:"status"`
	Duplicate bool        `json:"duplicate"`
	PaymentID string      `json:"paymentId"`
}

// Reasons a webhook signature is refused.
var (
	ErrNoWebhookSecret      = errors.New("no webhook secret is configured")
	errSigMissing           = errors.New("missing Stripe-Signature header")
	errSigMalformed         = errors.New("malformed Stripe-Signature header")
	errSigNoV1              = errors.New("Stripe-Signature has no v1 signature")
	errSigMismatch          = errors.New("no signature matches any configured secret")
	errSigTooOld            = errors.New("signature timestamp is older than the tolerance")
	errSigFuture            = errors.New("signature timestamp is further in the future than the tolerance")
	eventIDPattern          = regexp.MustCompile(`^evt_[0-9A-Za-z_]{1,250}$`)
	eventTypePattern        = regexp.MustCompile(`^[a-z0-9_.]{1,100}$`)
	apiVersionPattern       = regexp.MustCompile(`^[0-9A-Za-z_.-]{0,64}$`)
	maxSignatureHeaderBytes = 8 << 10
)

// verifyStripeSignature checks a Stripe-Signature header ("t=…,v1=…,v1=…")
// over payload against every secret, and that its timestamp is within
// tolerance of now in either direction. A header with several v1 values
// (Stripe's own secret rolling) and several configured secrets (ours) both
// work.
func verifyStripeSignature(payload []byte, header string, secrets []string, tolerance time.Duration, now time.Time) error {
	if header == "" {
		return errSigMissing
	}
	if len(header) > maxSignatureHeaderBytes {
		return errSigMalformed
	}
	var ts int64
	haveTS := false
	var sigs [][]byte
	for _, pair := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			return errSigMalformed
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return errSigMalformed
			}
			ts, haveTS = n, true
		case "v1":
			if b, err := hex.DecodeString(v); err == nil && len(b) == sha256.Size {
				sigs = append(sigs, b)
			}
		}
	}
	if !haveTS {
		return errSigMalformed
	}
	if len(sigs) == 0 {
		return errSigNoV1
	}
	matched := false
	prefix := strconv.FormatInt(ts, 10) + "."
	for _, secret := range secrets {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(prefix))
		mac.Write(payload)
		want := mac.Sum(nil)
		for _, s := range sigs {
			if hmac.Equal(want, s) {
				matched = true
			}
		}
	}
	if !matched {
		return errSigMismatch
	}
	age := now.Sub(time.Unix(ts, 0))
	switch {
	case age > tolerance:
		return errSigTooOld
	case age < -tolerance:
		return errSigFuture
	}
	return nil
}

// stripeEvent is the part of a Stripe event paygate reads. Parsing only
// these fields makes events of any API version acceptable.
type stripeEvent struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	APIVersion string `json:"api_version"`
	Created    int64  `json:"created"`
	Livemode   bool   `json:"livemode"`
	Data       struct {
		Object json.RawMessage `json:"object"`
	} `json:"data"`
}

// expandable reads a Stripe field that is an id or an expanded object.
type expandable string

func (e *expandable) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		err := json.Unmarshal(b, &s)
		*e = expandable(s)
		return err
	default:
		var o struct {
			ID string `json:"id"`
		}
		err := json.Unmarshal(b, &o)
		*e = expandable(o.ID)
		return err
	}
}

// stripeObject holds the fields of every object type paygate handles:
// PaymentIntent, Checkout Session, Charge, Refund and Dispute.
type stripeObject struct {
	ID               string            `json:"id"`
	Object           string            `json:"object"`
	Status           string            `json:"status"`
	Amount           int64             `json:"amount"`
	AmountReceived   int64             `json:"amount_received"`
	AmountRefunded   int64             `json:"amount_refunded"`
	AmountTotal      int64             `json:"amount_total"`
	Currency         string            `json:"currency"`
	Metadata         map[string]string `json:"metadata"`
	PaymentIntent    expandable        `json:"payment_intent"`
	PaymentLink      expandable        `json:"payment_link"`
	PaymentStatus    string            `json:"payment_status"`
	Charge           expandable        `json:"charge"`
	LatestCharge     expandable        `json:"latest_charge"`
	Reason           string            `json:"reason"`
	CustomerEmail    string            `json:"customer_email"`
	LastPaymentError *struct {
		Code        string `json:"code"`
		DeclineCode string `json:"decline_code"`
		Message     string `json:"message"`
	} `json:"last_payment_error"`
	Refunds *struct {
		Data []stripeObject `json:"data"`
	} `json:"refunds"`
	CustomerDetails *struct {
		Email string `json:"email"`
	} `json:"customer_details"`
}

// refs names the payment an object belongs to.
func (o *stripeObject) refs() PaymentRefs {
	r := PaymentRefs{PaymentID: o.Metadata[MetadataKey], PaymentIntentID: string(o.PaymentIntent)}
	switch o.Object {
	case "payment_intent":
		r.PaymentIntentID = o.ID
		r.ChargeID = string(o.LatestCharge)
	case "checkout.session":
		r.CheckoutSessionID = o.ID
		r.PaymentLinkID = string(o.PaymentLink)
	case "charge":
		r.ChargeID = o.ID
	case "refund", "dispute":
		r.ChargeID = string(o.Charge)
	}
	return r
}

// HandleWebhook verifies a Stripe event (the raw request body and its
// Stripe-Signature header), stores it once, and applies it to its payment
// through the state machine, all in one transaction. It makes no Stripe call
// and no merchant call.
//
// It returns a *Error: code invalid_request naming "Stripe-Signature" when
// the signature is missing, malformed, does not match any configured secret
// or its timestamp is outside the tolerance; naming "body" when a verified
// payload is not an event; code unavailable when no secret is configured.
// Nothing is stored in those cases.
func (g *Gateway) HandleWebhook(ctx context.Context, payload []byte, signature string) (*WebhookResult, error) {
	if len(g.cfg.WebhookSecrets) == 0 {
		return nil, &Error{Code: CodeUnavailable, Message: "webhooks are not configured on this service", Err: ErrNoWebhookSecret}
	}
	now := g.now()
	if err := verifyStripeSignature(payload, signature, g.cfg.WebhookSecrets, g.cfg.WebhookTolerance, now); err != nil {
		g.log.LogAttrs(ctx, slog.LevelWarn, "paygate: webhook refused", slog.String("reason", err.Error()))
		g.webhookLog(ctx, LevelWarn, "webhook refused: "+err.Error(), map[string]any{"reason": err.Error()})
		g.metrics.webhook("refused", err.Error())
		return nil, &Error{Code: CodeInvalid, Param: "Stripe-Signature", Message: "webhook signature verification failed: " + err.Error(), Err: err}
	}
	return g.ingestEvent(ctx, payload, SourceWebhook, now)
}

// ingestEvent parses a verified Stripe event (as JSON text), stores it once
// by its evt_ id and applies it to its payment through the state machine,
// all in one transaction. Every path that learns of a Stripe event (a
// webhook, the Events API read by reconciliation) goes through it, so an
// event is applied once whichever path sees it first; source names that
// path in the history entries it writes.
func (g *Gateway) ingestEvent(ctx context.Context, payload []byte, source string, now time.Time) (*WebhookResult, error) {
	if !utf8.Valid(payload) || bytes.Contains(payload, []byte(`\u0000`)) {
		g.webhookLog(ctx, LevelWarn, "webhook refused: the payload is not valid UTF-8 text", nil)
		g.metrics.webhook("refused", "not an event")
		return nil, invalidParam("body", "the payload is not valid UTF-8 text without NUL characters")
	}
	var ev stripeEvent
	if err := json.Unmarshal(payload, &ev); err != nil || !bytes.HasPrefix(bytes.TrimSpace(payload), []byte("{")) {
		g.webhookLog(ctx, LevelWarn, "webhook refused: the payload is not a JSON event", nil)
		g.metrics.webhook("refused", "not an event")
		return nil, invalidParam("body", "the payload is not a JSON event")
	}
	if !eventIDPattern.MatchString(ev.ID) || !eventTypePattern.MatchString(ev.Type) || !apiVersionPattern.MatchString(ev.APIVersion) {
		g.webhookLog(ctx, LevelWarn, "webhook refused: not a Stripe event", nil)
		g.metrics.webhook("refused", "not an event")
		return nil, invalidParam("body", "the payload is not a Stripe event (id and type are required)")
	}

	stored := &WebhookEvent{
		ID: ev.ID, Type: ev.Type, APIVersion: ev.APIVersion, Livemode: ev.Livemode,
		CreatedAt: time.Unix(ev.Created, 0).UTC(), ReceivedAt: now, Payload: json.RawMessage(payload),
	}
	var refs PaymentRefs
	var apply func(p *Payment) ([]HistoryEntry, error)
	queued := false // whether the transaction queued callbacks
	if handledTypes[ev.Type] {
		var obj stripeObject
		if err := json.Unmarshal(ev.Data.Object, &obj); err != nil || obj.ID == "" {
			stored.Status, stored.Error = EventFailed, "data.object is not a readable Stripe object"
		} else {
			refs = obj.refs()
			apply = func(p *Payment) ([]HistoryEntry, error) {
				hist, err := applyEvent(p, ev.ID, ev.Type, &obj, source, now)
				if err != nil {
					return nil, err
				}
				g.queueCallbacks(p, ev.ID, ev.Type, &obj, hist, now)
				queued = g.cfg.CallbackURL != "" && len(hist) > 0
				return hist, nil
			}
		}
	}
	res, dup, err := g.store.RecordWebhookEvent(ctx, stored, refs, apply)
	if err != nil {
		return nil, fmt.Errorf("record webhook event %s: %w", ev.ID, err)
	}
	if queued && !dup && g.cfg.OnCallbacksQueued != nil {
		g.cfg.OnCallbacksQueued()
	}
	outcome := string(res.Status)
	if dup {
		outcome = "duplicate"
	}
	g.metrics.webhook(outcome, "")
	g.webhookLog(ctx, LevelInfo, "webhook "+ev.Type+" "+outcome,
		map[string]any{"eventId": ev.ID, "type": ev.Type, "outcome": outcome, "paymentId": res.PaymentID, "apiVersion": ev.APIVersion})
	g.log.LogAttrs(ctx, slog.LevelInfo, "paygate: webhook",
		slog.String("event_id", ev.ID), slog.String("type", ev.Type),
		slog.String("outcome", outcome), slog.String("payment_id", res.PaymentID))
	return &WebhookResult{EventID: res.ID, Type: res.Type, Status: res.Status, Duplicate: dup, PaymentID: res.PaymentID}, nil
}

var handledTypes = func() map[string]bool {
	m := map[string]bool{}
	for _, t := range HandledEventTypes {
		m[t] = true
	}
	return m
}()

// applyEvent is the state machine: it applies one event's object to the
// locked payment and returns the history entries for what changed (none when
// nothing did). Applying any set of events gives the same payment whatever
// their order: statuses only move up their ranks, refunded amounts only grow,
// refund statuses only move up theirs.
func applyEvent(p *Payment, eventID, typ string, o *stripeObject, source string, now time.Time) ([]HistoryEntry, error) {
	from := p.Status
	changed := false
	var hist []HistoryEntry
	add := func(t HistoryType, amount int64, data map[string]any) {
		h := p.history(t, from, source, amount, data, now)
		h.StripeEventID = eventID
		hist = append(hist, h)
		from = p.Status
	}
	setIf := func(dst *string, v string) {
		if *dst == "" && v != "" {
			*dst, changed = v, true
		}
	}
	moveTo := func(to Status, t HistoryType, data map[string]any) {
		if p.advance(to) {
			add(t, p.Amount, data)
		}
	}

	switch typ {
	case "payment_intent.succeeded", "payment_intent.processing", "payment_intent.canceled", "payment_intent.payment_failed":
		setIf(&p.PaymentIntentID, o.ID)
		setIf(&p.ChargeID, string(o.LatestCharge))
		data := map[string]any{"stripeStatus": o.Status}
		to := map[string]Status{
			"payment_intent.succeeded":      StatusSucceeded,
			"payment_intent.processing":     StatusProcessing,
			"payment_intent.canceled":       StatusCanceled,
			"payment_intent.payment_failed": StatusFailed,
		}[typ]
		if to == StatusFailed && o.LastPaymentError != nil {
			data["failureCode"] = o.LastPaymentError.Code
			data["declineCode"] = o.LastPaymentError.DeclineCode
			data["failureMessage"] = o.LastPaymentError.Message
		}
		moveTo(to, statusHistoryType(to), data)

	case "checkout.session.completed":
		setIf(&p.CheckoutSessionID, o.ID)
		setIf(&p.PaymentIntentID, string(o.PaymentIntent))
		if o.CustomerDetails != nil {
			setIf(&p.CustomerEmail, o.CustomerDetails.Email)
		}
		data := map[string]any{"sessionId": o.ID, "paymentStatus": o.PaymentStatus}
		switch o.PaymentStatus {
		case "paid", "no_payment_required":
			moveTo(StatusSucceeded, HistoryCheckoutCompleted, data)
		default: // unpaid: a delayed method (bank debit); the async events finish it
			moveTo(StatusProcessing, HistoryCheckoutCompleted, data)
		}

	case "checkout.session.async_payment_succeeded", "checkout.session.async_payment_failed":
		setIf(&p.CheckoutSessionID, o.ID)
		setIf(&p.PaymentIntentID, string(o.PaymentIntent))
		to := StatusSucceeded
		if typ == "checkout.session.async_payment_failed" {
			to = StatusFailed
		}
		moveTo(to, statusHistoryType(to), map[string]any{"sessionId": o.ID, "paymentStatus": o.PaymentStatus})

	case "checkout.session.expired":
		// A payment link opens a new session for each visit: one expiring
		// does not end the payment.
		if p.Method == MethodCheckout {
			moveTo(StatusExpired, HistoryCheckoutExpired, map[string]any{"sessionId": o.ID})
		}

	case "charge.refunded":
		setIf(&p.ChargeID, o.ID)
		setIf(&p.PaymentIntentID, string(o.PaymentIntent))
		before := p.AmountRefunded
		if o.AmountRefunded > p.StripeAmountRefunded {
			p.StripeAmountRefunded, changed = o.AmountRefunded, true
		}
		if o.Refunds != nil {
			for i := range o.Refunds.Data {
				if _, c := mergeRefund(p, &o.Refunds.Data[i], now); c {
					changed = true
				}
			}
		}
		p.recompute()
		if p.AmountRefunded != before || p.Status != from {
			add(HistoryRefundCreated, p.AmountRefunded-before, map[string]any{"chargeId": o.ID, "amountRefunded": p.AmountRefunded})
		}

	case "charge.refund.updated":
		setIf(&p.ChargeID, string(o.Charge))
		before := p.AmountRefunded
		r, refundChanged := mergeRefund(p, o, now)
		p.recompute()
		if refundChanged || p.AmountRefunded != before {
			t := HistoryRefundUpdated
			if r.Status == RefundFailed {
				t = HistoryRefundFailed
			}
			add(t, r.Amount, map[string]any{"refundId": r.StripeRefundID, "refundStatus": r.Status, "reason": r.Reason})
		}

	case "charge.dispute.created":
		setIf(&p.ChargeID, string(o.Charge))
		add(HistoryDisputeCreated, o.Amount, map[string]any{"disputeId": o.ID, "reason": o.Reason, "disputeStatus": o.Status})
	}
	if len(hist) > 0 || changed {
		p.UpdatedAt = now
	}
	return hist, nil
}

// refundRank orders refund statuses; a refund only moves up. failed ranks
// above succeeded because Stripe reports refunds that fail after succeeding.
var refundRank = map[RefundStatus]int{RefundPending: 0, RefundSucceeded: 1, RefundCanceled: 2, RefundFailed: 3}

// mergeRefund records a Stripe refund object on p: it matches our refund by
// paygate_refund_id or the re_ id, or adds one made outside this service.
// It reports whether anything changed.
func mergeRefund(p *Payment, o *stripeObject, now time.Time) (*Refund, bool) {
	var r *Refund
	for i := range p.Refunds {
		if (o.ID != "" && p.Refunds[i].StripeRefundID == o.ID) || (o.Metadata[metadataRefundKey] != "" && p.Refunds[i].ID == o.Metadata[metadataRefundKey]) {
			r = &p.Refunds[i]
			break
		}
	}
	st := refundStatus(stripe.RefundStatus(o.Status))
	if r == nil {
		p.Refunds = append(p.Refunds, Refund{ID: newID("rf"), StripeRefundID: o.ID, Amount: o.Amount, Status: st, Reason: o.Reason, CreatedAt: now, UpdatedAt: now})
		return &p.Refunds[len(p.Refunds)-1], true
	}
	changed := false
	if r.StripeRefundID == "" && o.ID != "" {
		r.StripeRefundID, changed = o.ID, true
	}
	if refundRank[st] > refundRank[r.Status] {
		r.Status, changed = st, true
	}
	if changed {
		r.UpdatedAt = now
	}
	return r, changed
}

// WebhookConfig is what GET /api/webhooks/config shows.
type WebhookConfig struct {
	URL                string   `json:"url"`
	SecretConfigured   bool     `json:"secretConfigured"`
	Events             []string `json:"events"`
	ToleranceSeconds   int      `json:"toleranceSeconds"`
	APIVersion         string   `json:"apiVersion"`
	CallbackConfigured bool     `json:"callbackConfigured"`
	CallbackURL        string   `json:"callbackUrl"` // scheme and host only
}

// WebhookConfig reports the webhook configuration, without secrets.
func (g *Gateway) WebhookConfig() WebhookConfig {
	return WebhookConfig{
		URL:                WebhookPath,
		SecretConfigured:   len(g.cfg.WebhookSecrets) > 0,
		Events:             HandledEventTypes,
		ToleranceSeconds:   int(g.cfg.WebhookTolerance / time.Second),
		APIVersion:         StripeAPIVersion,
		CallbackConfigured: g.cfg.CallbackURL != "",
		CallbackURL:        callbackHost(g.cfg.CallbackURL),
	}
}

// ListWebhookEvents returns one page of stored events, newest received first.
func (g *Gateway) ListWebhookEvents(ctx context.Context, f WebhookEventFilter) (*Page[WebhookEvent], error) {
	if f.Type != "" && !eventTypePattern.MatchString(f.Type) {
		return nil, invalidParam("type", "type must be a Stripe event type such as payment_intent.succeeded")
	}
	if f.Status != "" && !f.Status.Valid() {
		return nil, invalidParam("status", "status must be one of processed, ignored, unmatched, failed")
	}
	if err := checkPage(&f.PageParams); err != nil {
		return nil, err
	}
	return g.store.ListWebhookEvents(ctx, f)
}

// GetWebhookEvent returns one stored event with its payload.
func (g *Gateway) GetWebhookEvent(ctx context.Context, id string) (*WebhookEvent, error) {
	if !eventIDPattern.MatchString(id) {
		return nil, invalidParam("id", "id must be a Stripe event id (evt_…)")
	}
	return g.store.GetWebhookEvent(ctx, id)
}
