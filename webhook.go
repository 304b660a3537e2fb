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

	"github.com/numedapp/paygate/callback"
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
	"refund.created",
	"refund.updated",
	"refund.failed",
	"charge.dispute.created",
	"charge.dispute.updated",
	"charge.dispute.closed",
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

// StripeIDs returns the Stripe ids of r that are set, in the order they
// are tried.
func (r PaymentRefs) StripeIDs() []string {
	var ids []string
	for _, id := range []string{r.PaymentLinkID, r.CheckoutSessionID, r.PaymentIntentID, r.ChargeID} {
		if id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

// EventOutcome is what applying a webhook event decided: the event's
// status (and error message), and the history entries of the payment's
// changes (each with its callback, if any).
type EventOutcome struct {
	Status  EventStatus
	Error   string
	History []HistoryEntry
}

// webhookStore is the part of Store that webhook processing uses.
type webhookStore interface {
	// RecordWebhookEvent stores ev once, keyed by its id. For an event seen
	// before it only increments its receivedCount, and returns the stored
	// event with duplicate true (nothing else changes). For a new event, in
	// one transaction, it finds the payment refs name (by id, else by any
	// of its Stripe ids, see [Payment.StripeIDs]), locks its row and calls
	// apply with it, or with nil when refs name no payment; then it stores
	// the payment's changes, the outcome's history entries and callbacks,
	// and the event with the outcome's status, all committed together. An
	// error from apply rolls everything back and is returned. With a nil
	// apply the event is stored with ev.Status (ignored when empty).
	//
	// If the payment's changes give it a Stripe id that already names
	// another payment, nothing is stored and the error wraps
	// ErrStripeIDTaken. apply may run more than once (retried
	// transactions), so it must not do I/O.
	RecordWebhookEvent(ctx context.Context, ev *WebhookEvent, refs PaymentRefs, apply func(p *Payment) (EventOutcome, error)) (stored *WebhookEvent, duplicate bool, err error)
	// ListWebhookEvents returns one page of events, newest received first.
	ListWebhookEvents(ctx context.Context, f WebhookEventFilter) (*Page[WebhookEvent], error)
	// GetWebhookEvent returns one event with its payload.
	GetWebhookEvent(ctx context.Context, id string) (*WebhookEvent, error)
}

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

// stripeEvent is the part of a Stripe event paygate reads, with its
// data.object as O: stripeObject to read the object in the same pass,
// json.RawMessage to leave it unread. Parsing only these fields makes events
// of any API version acceptable.
type stripeEvent[O any] struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	APIVersion string `json:"api_version"`
	Created    int64  `json:"created"`
	Livemode   bool   `json:"livemode"`
	Data       struct {
		Object O `json:"object"`
	} `json:"data"`
}

// parseEvent reads a Stripe event and its data.object in one pass. When
// anything in the payload does not fit (objOK false), it reads the envelope
// alone: an event whose object paygate cannot read is still an event, stored
// as failed if its type is one paygate handles. ok is false when the payload
// is not a JSON event at all.
func parseEvent(payload []byte) (ev stripeEvent[stripeObject], objOK, ok bool) {
	if !bytes.HasPrefix(bytes.TrimSpace(payload), []byte("{")) {
		return ev, false, false
	}
	if ev, ok := fastEvent(payload); ok {
		return ev, ev.Data.Object.ID != "", true
	}
	if err := json.Unmarshal(payload, &ev); err == nil {
		return ev, ev.Data.Object.ID != "", true
	}
	var env stripeEvent[json.RawMessage]
	if err := json.Unmarshal(payload, &env); err != nil {
		return ev, false, false
	}
	ev = stripeEvent[stripeObject]{ID: env.ID, Type: env.Type, APIVersion: env.APIVersion, Created: env.Created, Livemode: env.Livemode}
	return ev, false, true
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
		var o stripeID
		err := json.Unmarshal(b, &o)
		*e = expandable(o.ID)
		return err
	}
}

// stripeObject holds the fields of every object type paygate handles:
// PaymentIntent, Checkout Session, Charge, Refund and Dispute.
type stripeObject struct {
	ID               string                    `json:"id"`
	Object           string                    `json:"object"`
	Status           string                    `json:"status"`
	Amount           int64                     `json:"amount"`
	AmountReceived   int64                     `json:"amount_received"`
	AmountRefunded   int64                     `json:"amount_refunded"`
	AmountTotal      int64                     `json:"amount_total"`
	Created          int64                     `json:"created"`
	Currency         string                    `json:"currency"`
	Metadata         map[string]string         `json:"metadata"`
	PaymentIntent    expandable                `json:"payment_intent"`
	PaymentLink      expandable                `json:"payment_link"`
	PaymentStatus    string                    `json:"payment_status"`
	Charge           expandable                `json:"charge"`
	LatestCharge     expandable                `json:"latest_charge"`
	Reason           string                    `json:"reason"`
	CustomerEmail    string                    `json:"customer_email"`
	LastPaymentError *lastPaymentError         `json:"last_payment_error"`
	Refunds          *stripeList[stripeObject] `json:"refunds"`
	// Charges is a PaymentIntent's charges in API versions before
	// 2022-11-15 (no latest_charge then).
	Charges         *stripeList[stripeID] `json:"charges"`
	CustomerDetails *customerDetails      `json:"customer_details"`
}

type lastPaymentError struct {
	Charge      string `json:"charge"`
	Code        string `json:"code"`
	DeclineCode string `json:"decline_code"`
	Message     string `json:"message"`
}

// stripeList is a Stripe list object: its data, the rest unread.
type stripeList[T any] struct {
	Data []T `json:"data"`
}

type stripeID struct {
	ID string `json:"id"`
}

type customerDetails struct {
	Email string `json:"email"`
}

// refs names the payment an object belongs to.
func (o *stripeObject) refs() PaymentRefs {
	r := PaymentRefs{PaymentID: o.Metadata[MetadataKey], PaymentIntentID: string(o.PaymentIntent)}
	switch o.Object {
	case "payment_intent":
		r.PaymentIntentID = o.ID
		r.ChargeID = o.intentCharge() // every id the event can add to its payment
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
//
// payload is read until the event is recorded, which, when ctx is canceled
// first, is after HandleWebhook has returned: do not reuse its bytes.
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
	ev, objOK, ok := parseEvent(payload)
	if !ok {
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
		CreatedAt: time.Unix(ev.Created, 0).UTC(), ReceivedAt: now, Payload: json.RawMessage(withoutClientSecrets(payload)),
	}
	var refs PaymentRefs
	var apply func(p *Payment) (EventOutcome, error)
	queued := 0 // callbacks the transaction queued
	if handledTypes[ev.Type] {
		if !objOK {
			stored.Status, stored.Error = EventFailed, "data.object is not a readable Stripe object"
		} else {
			refs, apply = g.applier(&ev, source, now, &queued)
		}
	}
	res, dup, claimed, err := g.recordWebhookEvent(ctx, stored, refs, apply)
	if errors.Is(err, ErrStripeIDTaken) {
		// The event names a Stripe object already recorded on another
		// payment. Retrying cannot help: store the event as failed, so
		// Stripe stops resending it and an operator can see it.
		stored.Status, stored.Error = EventFailed, "a Stripe id in this event already belongs to another payment"
		queued = 0
		res, dup, err = g.store.RecordWebhookEvent(ctx, stored, PaymentRefs{}, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("record webhook event %s: %w", ev.ID, err)
	}
	if len(claimed.cbs) > 0 {
		claimed.engine.Deliver(claimed.cbs) // committed claimed: send now
	}
	if queued > len(claimed.cbs) && !dup && g.cfg.OnCallbacksQueued != nil {
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

// applier returns the refs that name the payment of ev (an event of a
// handled type with a readable object) and the function that applies it to
// that payment through the state machine, counting in *queued the
// callbacks it queues.
func (g *Gateway) applier(ev *stripeEvent[stripeObject], source string, now time.Time, queued *int) (PaymentRefs, func(p *Payment) (EventOutcome, error)) {
	obj := &ev.Data.Object
	e := eventObject{id: ev.ID, typ: ev.Type, created: time.Unix(ev.Created, 0).UTC(), obj: obj}
	return obj.refs(), func(p *Payment) (EventOutcome, error) {
		if p == nil {
			return EventOutcome{Status: EventUnmatched}, nil
		}
		hist := g.change(p, e, source, now)
		*queued = 0
		for _, h := range hist {
			if h.Callback != nil {
				*queued++
			}
		}
		return EventOutcome{Status: EventProcessed, History: hist}, nil
	}
}

// recordWebhookEvent records an event through the batcher when the Store
// can record events in batches (group commit), else on its own.
//
// When Run's callback engine can send at once, the callbacks the event
// queues may be committed already claimed by it (see
// callback.Engine.ClaimToken); claimed returns those, for the caller to
// hand to the engine.
func (g *Gateway) recordWebhookEvent(ctx context.Context, ev *WebhookEvent, refs PaymentRefs, apply func(p *Payment) (EventOutcome, error)) (stored *WebhookEvent, dup bool, claimed claimedCallbacks, err error) {
	if g.ingest == nil {
		stored, dup, err = g.store.RecordWebhookEvent(ctx, ev, refs, apply)
		return stored, dup, claimed, err
	}
	rec := &WebhookRecord{Event: ev, Refs: refs, Apply: apply}
	if apply != nil && g.cfg.CallbackURL != "" {
		if claimed.engine = g.engine.Load(); claimed.engine != nil {
			rec.ClaimToken, rec.ClaimUntil = claimed.engine.ClaimToken()
		}
	}
	if err := g.ingest.record(ctx, rec); err != nil {
		return nil, false, claimed, err
	}
	if rec.Err != nil {
		return nil, false, claimed, rec.Err
	}
	claimed.cbs = rec.Claimed
	return rec.Stored, rec.Duplicate, claimed, nil
}

// deliverLeft sends the callbacks committed claimed for a webhook request
// that went away before its batch committed (see batcher.left): nobody
// else would, before their lease ends.
func (g *Gateway) deliverLeft(rec *WebhookRecord) {
	if e := g.engine.Load(); e != nil && len(rec.Claimed) > 0 {
		e.Deliver(rec.Claimed)
	}
}

// claimedCallbacks are callbacks committed claimed by engine.
type claimedCallbacks struct {
	engine *callback.Engine
	cbs    []Callback
}

var handledTypes = func() map[string]bool {
	m := map[string]bool{}
	for _, t := range HandledEventTypes {
		m[t] = true
	}
	return m
}()

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
