package paygate

import (
	"context"
	"net/http"

	"github.com/stripe/stripe-go/v76"
)

// PaymentIntentParams are the inputs of CreatePaymentIntent.
type PaymentIntentParams struct {
	// Amount in major units of Currency (required).
	Amount        Decimal  `json:"amount"`
	Currency      string   `json:"currency"`
	Description   string   `json:"description"`
	CustomerEmail string   `json:"customerEmail"`
	Metadata      Metadata `json:"metadata"`
	// IdempotencyKey makes the call safe to retry: the same key always
	// names the same payment (or refund) and the same Stripe objects. The
	// HTTP API sets it from the Idempotency-Key header, scoped per API key.
	IdempotencyKey string `json:"-"`
}

// CreatedIntent is the result of CreatePaymentIntent: what a payment page
// needs to confirm the payment with Stripe Elements.
type CreatedIntent struct {
	// ClientSecret lets its holder confirm the payment: hand it only to the
	// paying customer's page.
	ClientSecret    string `json:"clientSecret"`
	PaymentIntentID string `json:"paymentIntentId"`
	PaymentID       string `json:"paymentId"`
	Amount          int64  `json:"amount"`
	Currency        string `json:"currency"`
	Status          string `json:"status"` // Stripe's PaymentIntent status
}

// CreatePaymentIntent creates a payment backed by a PaymentIntent with
// automatic payment methods. The payment row is stored before Stripe is called.
func (g *Gateway) CreatePaymentIntent(ctx context.Context, in PaymentIntentParams) (*CreatedIntent, error) {
	p, err := g.newPayment(MethodIntent, in.IdempotencyKey, in.Amount, in.Currency, nil, "", in.Description, in.CustomerEmail, in.Metadata)
	if err != nil {
		return nil, err
	}
	p.ProductName = ""
	var resumed bool
	if p, resumed, err = g.insertPayment(ctx, p, in.IdempotencyKey); err != nil {
		return nil, err
	}
	api, err := g.stripeAPI()
	if err != nil {
		return nil, g.abandon(ctx, p, resumed, err)
	}
	params := &stripe.PaymentIntentParams{
		Amount:                  stripe.Int64(p.Amount),
		Currency:                stripe.String(p.Currency),
		AutomaticPaymentMethods: &stripe.PaymentIntentAutomaticPaymentMethodsParams{Enabled: stripe.Bool(true)},
	}
	if p.Description != "" {
		params.Description = stripe.String(p.Description)
	}
	if p.CustomerEmail != "" {
		params.ReceiptEmail = stripe.String(p.CustomerEmail)
	}
	g.stripeParams(ctx, &params.Params, p, "payment_intent")
	// What paymentintent.Client.New does, decoded into the four fields read
	// here rather than a stripe.PaymentIntent (see newIntent).
	pi := &newIntent{}
	if err := api.PaymentIntents.B.Call(http.MethodPost, "/v1/payment_intents", api.PaymentIntents.Key, params, pi); err != nil {
		return nil, g.abandon(ctx, p, resumed, err)
	}
	if _, err := g.attach(ctx, p.ID, func(p *Payment) {
		p.PaymentIntentID = pi.ID
		p.Livemode = pi.Livemode
	}); err != nil {
		return nil, err
	}
	return &CreatedIntent{
		ClientSecret:    pi.ClientSecret,
		PaymentIntentID: pi.ID,
		PaymentID:       p.ID,
		Amount:          p.Amount,
		Currency:        p.Currency,
		Status:          string(pi.Status),
	}, nil
}

// newIntent is what CreatePaymentIntent reads of the PaymentIntent Stripe
// returns. Decoding into stripe.PaymentIntent instead would make
// encoding/json build, and keep for the life of the process, its field
// tables for every type reachable from it: about 1 MB of heap that every
// garbage collection scans.
type newIntent struct {
	stripe.APIResource
	ID           string                     `json:"id"`
	ClientSecret string                     `json:"client_secret"`
	Livemode     bool                       `json:"livemode"`
	Status       stripe.PaymentIntentStatus `json:"status"`
}

// IntentStatus is a PaymentIntent's state at Stripe merged with the stored payment.
type IntentStatus struct {
	PaymentIntentID string            `json:"paymentIntentId"`
	PaymentID       string            `json:"paymentId"`
	Status          string            `json:"status"`        // Stripe's
	PaymentStatus   Status            `json:"paymentStatus"` // ours
	Amount          int64             `json:"amount"`
	AmountReceived  int64             `json:"amountReceived"`
	Currency        string            `json:"currency"`
	Metadata        map[string]string `json:"metadata"`
}

// GetPaymentIntent fetches a PaymentIntent of a payment this service created
// from Stripe, and moves the stored payment's status forward through the
// state machine when Stripe's is ahead (a missed webhook). It returns a *Error
// of code not_found for a PaymentIntent this service did not create.
func (g *Gateway) GetPaymentIntent(ctx context.Context, paymentIntentID string) (*IntentStatus, error) {
	readAt := g.now()
	p, pi, err := g.fetchIntent(ctx, paymentIntentID)
	if err != nil {
		return nil, err
	}
	var events []eventObject
	if e, ok := intentEvent(pi); ok {
		events = append(events, e)
	}
	if e, ok, err := g.sessionFailed(ctx, p, pi); err != nil {
		return nil, err
	} else if ok {
		events = append(events, e)
	}
	for _, e := range events {
		e.asOf = readAt
		// Stripe may be ahead of the webhooks: catch up through the same
		// path, with the same history and callbacks, as the webhook that
		// reports it (which then changes nothing).
		if p, err = g.update(ctx, p, e, SourceReconcile); err != nil {
			return nil, err
		}
	}
	return &IntentStatus{
		PaymentIntentID: pi.ID,
		PaymentID:       p.ID,
		Status:          string(pi.Status),
		PaymentStatus:   p.Status,
		Amount:          p.Amount,
		AmountReceived:  pi.AmountReceived,
		Currency:        p.Currency,
		Metadata:        p.Metadata,
	}, nil
}

// IntentSession is what a payment page needs to mount Stripe Elements.
type IntentSession struct {
	ClientSecret   string `json:"clientSecret"`
	PublishableKey string `json:"publishableKey"`
	Amount         int64  `json:"amount"`
	Currency       string `json:"currency"`
	Status         string `json:"status"` // Stripe's
	PaymentID      string `json:"paymentId"`
}

// PaymentIntentSession returns the client secret of a PaymentIntent this
// service created, with the publishable key. The client secret is fetched
// from Stripe each time; it is never stored.
func (g *Gateway) PaymentIntentSession(ctx context.Context, paymentIntentID string) (*IntentSession, error) {
	p, pi, err := g.fetchIntent(ctx, paymentIntentID)
	if err != nil {
		return nil, err
	}
	return &IntentSession{
		ClientSecret:   pi.ClientSecret,
		PublishableKey: g.cfg.StripePublishableKey,
		Amount:         p.Amount,
		Currency:       p.Currency,
		Status:         string(pi.Status),
		PaymentID:      p.ID,
	}, nil
}

// fetchIntent loads the stored payment of a PaymentIntent id and the
// PaymentIntent from Stripe.
func (g *Gateway) fetchIntent(ctx context.Context, id string) (*Payment, *stripe.PaymentIntent, error) {
	if !intentIDPattern.MatchString(id) {
		return nil, nil, invalidParam("id", "id must be a PaymentIntent id (pi_…)")
	}
	p, err := g.store.GetPaymentByStripeID(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	api, err := g.stripeAPI()
	if err != nil {
		return nil, nil, err
	}
	params := &stripe.PaymentIntentParams{}
	params.Context = ctx
	pi, err := api.PaymentIntents.Get(id, params)
	if err != nil {
		return nil, nil, g.stripeError(ctx, err)
	}
	return p, pi, nil
}

// sessionFailed reads, for a PaymentIntent whose delayed payment may have
// failed (requires_payment_method with a last_payment_error), the Checkout
// Session that opened it, if the payment knows one, and returns the event
// the sweep would add for it (see asyncPaymentFailed): without it the read
// leaves a failed bank debit processing.
func (g *Gateway) sessionFailed(ctx context.Context, p *Payment, pi *stripe.PaymentIntent) (eventObject, bool, error) {
	if pi.Status != stripe.PaymentIntentStatusRequiresPaymentMethod || pi.LastPaymentError == nil {
		return eventObject{}, false, nil
	}
	sid := ""
	for _, a := range p.Attempts {
		if a.PaymentIntentID == pi.ID {
			sid = a.CheckoutSessionID
		}
	}
	if sid == "" {
		return eventObject{}, false, nil
	}
	api, err := g.stripeAPI()
	if err != nil {
		return eventObject{}, false, err
	}
	params := &stripe.CheckoutSessionParams{}
	params.Context = ctx
	s, err := api.CheckoutSessions.Get(sid, params)
	if err != nil {
		return eventObject{}, false, g.stripeError(ctx, err)
	}
	e, ok := asyncPaymentFailed(s, pi)
	return e, ok, nil
}

// intentEvent is the event that reports a PaymentIntent's state as Stripe
// returned it; ok is false when the state says nothing the state machine
// can use (requires_payment_method before any try, requires_confirmation).
func intentEvent(pi *stripe.PaymentIntent) (eventObject, bool) {
	o := &stripeObject{ID: pi.ID, Object: "payment_intent", Status: string(pi.Status), Amount: pi.Amount,
		AmountReceived: pi.AmountReceived, Currency: string(pi.Currency), Created: pi.Created, Metadata: pi.Metadata}
	if pi.LatestCharge != nil {
		o.LatestCharge = expandable(pi.LatestCharge.ID)
	}
	if e := pi.LastPaymentError; e != nil {
		o.LastPaymentError = &lastPaymentError{Charge: e.ChargeID, Code: string(e.Code), DeclineCode: string(e.DeclineCode), Message: e.Msg}
	}
	typ := ""
	switch pi.Status {
	case stripe.PaymentIntentStatusSucceeded:
		typ = "payment_intent.succeeded"
	case stripe.PaymentIntentStatusProcessing, stripe.PaymentIntentStatusRequiresCapture:
		typ = "payment_intent.processing"
	case stripe.PaymentIntentStatusCanceled:
		typ = "payment_intent.canceled"
	case stripe.PaymentIntentStatusRequiresPaymentMethod:
		if pi.LastPaymentError != nil {
			typ = "payment_intent.payment_failed"
		}
	}
	return eventObject{typ: typ, obj: o}, typ != ""
}

func (p *PaymentIntentParams) setIdempotencyKey(k string) { p.IdempotencyKey = k }
