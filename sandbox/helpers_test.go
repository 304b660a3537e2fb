package sandbox

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
	"github.com/stripe/stripe-go/v76/webhook"
)

const testKey = "sk_test_123abc"

// newTestSandbox starts a sandbox on loopback with a fixed real clock, and
// closes it when the test ends.
func newTestSandbox(t *testing.T, cfg Config) *Sandbox {
	t.Helper()
	if cfg.Now == nil {
		base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		cfg.Now = func() time.Time { return base }
	}
	sb, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	return sb
}

// stripeAPI is stripe-go's real HTTP backend pointed at the sandbox.
func stripeAPI(t *testing.T, sb *Sandbox, key string) *client.API {
	t.Helper()
	cfg := &stripe.BackendConfig{
		URL:               stripe.String(sb.URL()),
		MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
		HTTPClient:        &http.Client{Timeout: 10 * time.Second},
	}
	api := &client.API{}
	api.Init(key, &stripe.Backends{
		API:     stripe.GetBackendWithConfig(stripe.APIBackend, cfg),
		Connect: stripe.GetBackendWithConfig(stripe.ConnectBackend, cfg),
		Uploads: stripe.GetBackendWithConfig(stripe.UploadsBackend, cfg),
	})
	return api
}

// receiver is a webhook endpoint that verifies signatures with stripe-go
// and records the events it accepted.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret string

	mu     sync.Mutex
	events []stripe.Event
	// answer decides the status for each request (default 200).
	answer func(n int, ev stripe.Event) int
	n      int
	bad    int
}

func newReceiver(t *testing.T, sb *Sandbox) *receiver {
	t.Helper()
	rc := &receiver{t: t, secret: sb.WebhookSecret()}
	if err := sb.SetWebhook(newReceiverHTTP(t, rc), ""); err != nil {
		t.Fatal(err)
	}
	return rc
}

// newReceiverHTTP serves rc on loopback and returns its URL.
func newReceiverHTTP(t *testing.T, rc *receiver) string {
	t.Helper()
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc.srv.URL
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	// The signature is stamped with the sandbox clock: check its age
	// against that clock, as a receiver with Config.Now = sb.Now does.
	ev, err := webhook.ConstructEventWithOptions(body, r.Header.Get("Stripe-Signature"), rc.secret,
		webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true, IgnoreTolerance: true})
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err != nil {
		rc.bad++
		http.Error(w, err.Error(), 400)
		return
	}
	rc.n++
	status := 200
	if rc.answer != nil {
		status = rc.answer(rc.n, ev)
	}
	if status < 300 {
		rc.events = append(rc.events, ev)
	}
	w.WriteHeader(status)
}

func (rc *receiver) types() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make([]string, len(rc.events))
	for i, e := range rc.events {
		out[i] = string(e.Type)
	}
	return out
}

func (rc *receiver) reset() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.events = nil
}

// objectOf decodes an event's data.object.
func objectOf(t *testing.T, ev stripe.Event) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(ev.Data.Raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// metadata is paygate-style metadata for a payment.
func metadata(paymentID string) map[string]string {
	return map[string]string{MetadataPaymentKey: paymentID}
}

// newLink makes a payment link the way paygate does.
func newLink(t *testing.T, api *client.API, paymentID string, amount int64, successURL string) *stripe.PaymentLink {
	t.Helper()
	pp := &stripe.PriceParams{Currency: stripe.String("usd"), UnitAmount: stripe.Int64(amount),
		ProductData: &stripe.PriceProductDataParams{Name: stripe.String("Consultation")}}
	pp.AddMetadata(MetadataPaymentKey, paymentID)
	pp.SetIdempotencyKey(paymentID + "-price")
	price, err := api.Prices.New(pp)
	if err != nil {
		t.Fatal(err)
	}
	lp := &stripe.PaymentLinkParams{
		LineItems:         []*stripe.PaymentLinkLineItemParams{{Price: stripe.String(price.ID), Quantity: stripe.Int64(1)}},
		Restrictions:      &stripe.PaymentLinkRestrictionsParams{CompletedSessions: &stripe.PaymentLinkRestrictionsCompletedSessionsParams{Limit: stripe.Int64(1)}},
		PaymentIntentData: &stripe.PaymentLinkPaymentIntentDataParams{Metadata: metadata(paymentID), Description: stripe.String("Consultation")},
	}
	if successURL != "" {
		lp.AfterCompletion = &stripe.PaymentLinkAfterCompletionParams{Type: stripe.String("redirect"),
			Redirect: &stripe.PaymentLinkAfterCompletionRedirectParams{URL: stripe.String(successURL)}}
	}
	lp.AddMetadata(MetadataPaymentKey, paymentID)
	lp.SetIdempotencyKey(paymentID + "-link")
	link, err := api.PaymentLinks.New(lp)
	if err != nil {
		t.Fatal(err)
	}
	return link
}

// newSession makes a Checkout Session the way paygate does.
func newCheckout(t *testing.T, api *client.API, paymentID string, amount int64) *stripe.CheckoutSession {
	t.Helper()
	p := &stripe.CheckoutSessionParams{
		Mode:              stripe.String("payment"),
		ClientReferenceID: stripe.String(paymentID),
		SuccessURL:        stripe.String("https://shop.example/ok?cs={CHECKOUT_SESSION_ID}"),
		CancelURL:         stripe.String("https://shop.example/cancel"),
		LineItems: []*stripe.CheckoutSessionLineItemParams{{
			PriceData: &stripe.CheckoutSessionLineItemPriceDataParams{Currency: stripe.String("usd"), UnitAmount: stripe.Int64(amount),
				ProductData: &stripe.CheckoutSessionLineItemPriceDataProductDataParams{Name: stripe.String("Visit"), Description: stripe.String("A visit")}},
			Quantity: stripe.Int64(1),
		}},
		PaymentIntentData: &stripe.CheckoutSessionPaymentIntentDataParams{Metadata: metadata(paymentID)},
		CustomerEmail:     stripe.String("pat@example.com"),
	}
	p.AddMetadata(MetadataPaymentKey, paymentID)
	p.SetIdempotencyKey(paymentID + "-cs")
	cs, err := api.CheckoutSessions.New(p)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// newIntent makes a PaymentIntent the way paygate does.
func newIntent(t *testing.T, api *client.API, paymentID string, amount int64) *stripe.PaymentIntent {
	t.Helper()
	p := &stripe.PaymentIntentParams{Amount: stripe.Int64(amount), Currency: stripe.String("usd"),
		AutomaticPaymentMethods: &stripe.PaymentIntentAutomaticPaymentMethodsParams{Enabled: stripe.Bool(true)}}
	p.AddMetadata(MetadataPaymentKey, paymentID)
	p.SetIdempotencyKey(paymentID + "-pi")
	pi, err := api.PaymentIntents.New(p)
	if err != nil {
		t.Fatal(err)
	}
	return pi
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }
