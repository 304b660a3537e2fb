package paygate

import (
	"context"

	"github.com/stripe/stripe-go/v76"
)

// CheckoutParams are the inputs of CreateCheckoutSession.
type CheckoutParams struct {
	// Amount is the unit price in major units of Currency (required).
	Amount      Decimal `json:"amount"`
	Currency    string  `json:"currency"`
	ProductName string  `json:"productName"`
	Description string  `json:"description"`
	// Quantity defaults to 1; the payment's amount is Amount × Quantity.
	Quantity *int64 `json:"quantity"`
	// SuccessURL and CancelURL are required absolute http(s) URLs.
	SuccessURL    string   `json:"successUrl"`
	CancelURL     string   `json:"cancelUrl"`
	CustomerEmail string   `json:"customerEmail"`
	Metadata      Metadata `json:"metadata"`
	// IdempotencyKey makes the call safe to retry: the same key always
	// names the same payment (or refund) and the same Stripe objects. The
	// HTTP API sets it from the Idempotency-Key header, scoped per API key.
	IdempotencyKey string `json:"-"`
}

// CreatedCheckout is the result of CreateCheckoutSession.
type CreatedCheckout struct {
	SessionID string `json:"sessionId"`
	URL       string `json:"url"` // where to redirect the customer
	PaymentID string `json:"paymentId"`
}

// CreateCheckoutSession creates a payment backed by a Checkout Session in
// payment mode. The payment row is stored before Stripe is called.
func (g *Gateway) CreateCheckoutSession(ctx context.Context, in CheckoutParams) (*CreatedCheckout, error) {
	p, err := g.newPayment(MethodCheckout, in.IdempotencyKey, in.Amount, in.Currency, in.Quantity, in.ProductName, in.Description, in.CustomerEmail, in.Metadata)
	if err != nil {
		return nil, err
	}
	if in.SuccessURL == "" {
		return nil, invalidParam("successUrl", "successUrl is required")
	}
	if err := checkURL("successUrl", in.SuccessURL); err != nil {
		return nil, err
	}
	if in.CancelURL == "" {
		return nil, invalidParam("cancelUrl", "cancelUrl is required")
	}
	if err := checkURL("cancelUrl", in.CancelURL); err != nil {
		return nil, err
	}
	var resumed bool
	if p, resumed, err = g.insertPayment(ctx, p, in.IdempotencyKey); err != nil {
		return nil, err
	}
	api, err := g.stripeAPI()
	if err != nil {
		return nil, g.abandon(ctx, p, resumed, err)
	}
	product := &stripe.CheckoutSessionLineItemPriceDataProductDataParams{Name: stripe.String(p.ProductName)}
	if p.Description != "" {
		product.Description = stripe.String(p.Description)
	}
	params := &stripe.CheckoutSessionParams{
		Mode:              stripe.String(string(stripe.CheckoutSessionModePayment)),
		ClientReferenceID: stripe.String(p.ID),
		SuccessURL:        stripe.String(in.SuccessURL),
		CancelURL:         stripe.String(in.CancelURL),
		LineItems: []*stripe.CheckoutSessionLineItemParams{{
			PriceData: &stripe.CheckoutSessionLineItemPriceDataParams{
				Currency:    stripe.String(p.Currency),
				UnitAmount:  stripe.Int64(p.Amount / p.Quantity),
				ProductData: product,
			},
			Quantity: stripe.Int64(p.Quantity),
		}},
		PaymentIntentData: &stripe.CheckoutSessionPaymentIntentDataParams{Metadata: stripeMetadata(p)},
	}
	if p.Description != "" {
		params.PaymentIntentData.Description = stripe.String(p.Description)
	}
	if p.CustomerEmail != "" {
		params.CustomerEmail = stripe.String(p.CustomerEmail)
	}
	g.stripeParams(ctx, &params.Params, p, "checkout_session")
	s, err := api.CheckoutSessions.New(params)
	if err != nil {
		return nil, g.abandon(ctx, p, resumed, err)
	}
	// The session's PaymentIntent is made when the customer pays (API
	// 2023-10-16); checkout.session.completed records it.
	if _, err := g.attach(ctx, p.ID, func(p *Payment) {
		p.CheckoutSessionID = s.ID
		p.PaymentURL = s.URL
		p.Livemode = s.Livemode
	}); err != nil {
		return nil, err
	}
	return &CreatedCheckout{SessionID: s.ID, URL: s.URL, PaymentID: p.ID}, nil
}

func (p *CheckoutParams) setIdempotencyKey(k string) { p.IdempotencyKey = k }
