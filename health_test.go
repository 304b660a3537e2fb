package paygate_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/numedapp/paygate"
)

// downStore fails its database round trip while told to.
type downStore struct {
	paygate.Store
	down atomic.Bool
}

func (s *downStore) Ping(ctx context.Context) error {
	if s.down.Load() {
		return errors.New("dial unix /tmp/.s.PGSQL.5432: connect: no such file or directory")
	}
	return s.Store.Ping(ctx)
}

func TestReadinessFollowsTheDatabase(t *testing.T) {
	t.Parallel()
	ds := &downStore{}
	e := newEnv(t, func(c *paygate.Config) { ds.Store = c.Store; c.Store = ds })
	var h paygate.Health
	e.do("GET", "/api/health", "").must(t, 200, &h)
	if h.Status != "ok" || h.Checks.Database.Status != "up" || h.Checks.Stripe.Status != "up" || h.Service != "paygate" {
		t.Fatalf("healthy: %+v", h)
	}
	ds.down.Store(true)
	if r := e.do("GET", "/api/health/ready", ""); r.Status != 503 {
		t.Fatalf("ready with the database down: %s", r.Raw)
	}
	e.do("GET", "/api/health", "").must(t, 200, &h)
	if h.Status != "degraded" || h.Checks.Database.Status != "down" || h.Checks.Database.Error == "" {
		t.Fatalf("health with the database down: %+v", h)
	}
	if r := e.do("GET", "/api/health/live", ""); r.Status != 200 {
		t.Fatalf("liveness depends on the database: %s", r.Raw)
	}
	ds.down.Store(false)
	if r := e.do("GET", "/api/health/ready", ""); r.Status != 200 {
		t.Fatalf("ready after recovery: %s", r.Raw)
	}
}

// Reading a PaymentIntent that Stripe reports as succeeded moves the stored
// payment forward (a missed webhook), with a history row of source reconcile.
func TestGetPaymentIntentCatchesUp(t *testing.T) {
	t.Parallel()
	e, fake, _ := newFakeEnv(t, "sk_test_123abc")
	fake.set(200, `{"id": "pi_catch", "object": "payment_intent", "status": "requires_payment_method", "client_secret": "pi_catch_secret_x", "amount": 1500}`)
	var pi paygate.CreatedIntent
	e.do("POST", "/api/payments/payment-intent", `{"amount": 15}`).must(t, 201, &pi)

	fake.set(200, `{"id": "pi_catch", "object": "payment_intent", "status": "succeeded", "amount": 1500, "amount_received": 1500}`)
	var st paygate.IntentStatus
	e.do("GET", "/api/payments/payment-intent/pi_catch", "").must(t, 200, &st)
	if st.Status != "succeeded" || st.PaymentStatus != paygate.StatusSucceeded || st.AmountReceived != 1500 {
		t.Fatalf("status = %+v", st)
	}
	p := e.payment(pi.PaymentID)
	if p.Status != paygate.StatusSucceeded || len(p.History) != 2 || p.History[1].Source != "reconcile" || p.History[1].EventType != "payment_succeeded" {
		t.Fatalf("stored: %+v %+v", p.Payment, p.History)
	}
	// Stripe behind us (a stale read) never moves it back.
	fake.set(200, `{"id": "pi_catch", "object": "payment_intent", "status": "processing", "amount": 1500}`)
	e.do("GET", "/api/payments/payment-intent/pi_catch", "").must(t, 200, &st)
	if st.PaymentStatus != paygate.StatusSucceeded || len(e.payment(pi.PaymentID).History) != 2 {
		t.Fatalf("moved back: %+v", st)
	}
}
