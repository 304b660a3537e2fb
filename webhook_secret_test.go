package paygate_test

import (
	"strings"
	"testing"

	"github.com/numedapp/paygate"
)

// TestWebhookEventStoredWithoutClientSecret: client secrets are never
// stored (README, "What is logged"). Stripe's payment_intent.* events carry
// the PaymentIntent's client_secret; the stored event (served by GET
// /api/webhooks/events/{id}, exported) has it replaced, and the event is
// still applied.
func TestWebhookEventStoredWithoutClientSecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookSecrets(whsecNew))
	p := e.webhookPayment(paygate.MethodIntent, 1000)
	obj := piObject(p.PaymentIntentID, "succeeded", p.Amount, p.ID, "ch_cs1")
	secret := p.PaymentIntentID + "_secret_DISTINCTwebhookClientSecret"
	obj["client_secret"] = secret
	payload := stripeEventJSON("evt_clientsecret", "payment_intent.succeeded", "2023-10-16", obj)
	e.send(payload).must(t, 200, nil)
	r := e.do("GET", "/api/webhooks/events/evt_clientsecret", "").must(t, 200, nil)
	if strings.Contains(r.Raw, "DISTINCTwebhookClientSecret") {
		t.Errorf("the stored event keeps the client secret and the API serves it: %s", truncateStr(r.Raw[strings.Index(r.Raw, "client_secret")-1:], 120))
	}
	if !strings.Contains(r.Raw, `client_secret\": \"[redacted]\"`) && !strings.Contains(r.Raw, `"client_secret":"[redacted]"`) && !strings.Contains(r.Raw, `"client_secret": "[redacted]"`) {
		t.Errorf("the stored event has no redacted client_secret: %s", truncateStr(r.Raw, 400))
	}
	var got paygate.PaymentWithHistory
	e.do("GET", "/api/payments/"+p.ID, "").must(t, 200, &got)
	if got.Status != paygate.StatusSucceeded {
		t.Errorf("the event was not applied: payment %s", got.Status)
	}
}
