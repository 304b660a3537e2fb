package paygate_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/numedapp/paygate"
)

const (
	whsecOld = "whsec_oldSecretValue0123456789abcdef"
	whsecNew = "whsec_newSecretValue0123456789abcdef"
)

func withWebhookSecrets(secrets ...string) envOpt {
	return func(c *paygate.Config) { c.WebhookSecrets = secrets }
}

// signed returns a Stripe-Signature header for payload made by stripe-go's
// own signer, so our verifier is checked against Stripe's reference.
func signed(payload []byte, secret string, at time.Time) string {
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: at})
	return sp.Header
}

var evtSeq atomic.Int64

// stripeEventJSON wraps obj in a full Stripe event envelope.
func stripeEventJSON(id, typ, apiVersion string, obj map[string]any) []byte {
	if id == "" {
		id = fmt.Sprintf("evt_test%08d%d", evtSeq.Add(1), time.Now().UnixNano()%1e6)
	}
	ev := map[string]any{
		"id": id, "object": "event", "api_version": apiVersion, "created": time.Now().Unix(),
		"data":     map[string]any{"object": obj, "previous_attributes": map[string]any{"status": "requires_payment_method"}},
		"livemode": false, "pending_webhooks": 2,
		"request": map[string]any{"id": "req_" + id[4:], "idempotency_key": "paygate:x"},
		"type":    typ,
	}
	b, _ := json.Marshal(ev)
	return b
}

// Realistic Stripe objects (API version 2023-10-16 shapes, all fields).

func piObject(id, status string, amount int64, payID, charge string) map[string]any {
	o := map[string]any{
		"id": id, "object": "payment_intent", "amount": amount, "amount_capturable": 0,
		"amount_details": map[string]any{"tip": map[string]any{}}, "amount_received": 0, "application": nil,
		"application_fee_amount": nil, "automatic_payment_methods": map[string]any{"allow_redirects": "always", "enabled": true},
		"canceled_at": nil, "cancellation_reason": nil, "capture_method": "automatic", "client_secret": id + "_secret_Xyz",
		"confirmation_method": "automatic", "created": 1700000000, "currency": "usd", "customer": nil, "description": "Order 7",
		"invoice": nil, "last_payment_error": nil, "latest_charge": nil, "livemode": false,
		"metadata": map[string]any{"paygate_payment_id": payID, "orderId": "7"}, "next_action": nil, "on_behalf_of": nil,
		"payment_method": "pm_1OabcDEF", "payment_method_configuration_details": nil,
		"payment_method_options": map[string]any{"card": map[string]any{"installments": nil, "mandate_options": nil, "network": nil, "request_three_d_secure": "automatic"}},
		"payment_method_types":   []string{"card"}, "processing": nil, "receipt_email": nil, "review": nil, "setup_future_usage": nil,
		"shipping": nil, "source": nil, "statement_descriptor": nil, "statement_descriptor_suffix": nil, "status": status,
		"transfer_data": nil, "transfer_group": nil,
	}
	if status == "succeeded" {
		o["amount_received"] = amount
		o["latest_charge"] = charge
	}
	if status == "requires_payment_method" {
		o["last_payment_error"] = map[string]any{"charge": charge, "code": "card_declined", "decline_code": "insufficient_funds",
			"doc_url": "https://stripe.com/docs/error-codes/card-declined", "message": "Your card has insufficient funds.", "type": "card_error"}
	}
	return o
}

func sessionObject(id, pi, link, paymentStatus, status string, amount int64, payID string) map[string]any {
	var plink any
	if link != "" {
		plink = link
	}
	return map[string]any{
		"id": id, "object": "checkout.session", "after_expiration": nil, "allow_promotion_codes": nil, "amount_subtotal": amount,
		"amount_total": amount, "automatic_tax": map[string]any{"enabled": false, "status": nil}, "billing_address_collection": nil,
		"cancel_url": "https://shop.example.com/cancel", "client_reference_id": payID, "consent": nil, "created": 1700000000,
		"currency": "usd", "custom_fields": []any{}, "customer": nil, "customer_creation": "if_required",
		"customer_details": map[string]any{"address": nil, "email": "payer@example.com", "name": "Pat Payer", "phone": nil, "tax_exempt": "none", "tax_ids": []any{}},
		"customer_email":   nil, "expires_at": 1700086400, "invoice": nil, "livemode": false, "locale": nil,
		"metadata": map[string]any{"paygate_payment_id": payID, "orderId": "7"}, "mode": "payment", "payment_intent": pi,
		"payment_link": plink, "payment_method_collection": "if_required", "payment_method_types": []string{"card"},
		"payment_status": paymentStatus, "phone_number_collection": map[string]any{"enabled": false}, "recovered_from": nil,
		"setup_intent": nil, "shipping_address_collection": nil, "shipping_cost": nil, "shipping_details": nil, "status": status,
		"submit_type": nil, "subscription": nil, "success_url": "https://shop.example.com/ok", "total_details": map[string]any{"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
		"url": nil,
	}
}

func chargeObject(id, pi string, amount, refunded int64, payID string) map[string]any {
	return map[string]any{
		"id": id, "object": "charge", "amount": amount, "amount_captured": amount, "amount_refunded": refunded,
		"application": nil, "balance_transaction": "txn_1Oabc", "billing_details": map[string]any{"email": nil, "name": nil},
		"captured": true, "created": 1700000000, "currency": "usd", "customer": nil, "description": nil, "disputed": false,
		"failure_code": nil, "failure_message": nil, "fraud_details": map[string]any{}, "livemode": false,
		"metadata": map[string]any{"paygate_payment_id": payID, "orderId": "7"},
		"outcome":  map[string]any{"network_status": "approved_by_network", "reason": nil, "risk_level": "normal", "seller_message": "Payment complete.", "type": "authorized"},
		"paid":     true, "payment_intent": pi, "payment_method": "pm_1OabcDEF",
		"payment_method_details": map[string]any{"card": map[string]any{"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030}, "type": "card"},
		"receipt_url":            "https://pay.stripe.com/receipts/x", "refunded": refunded >= amount, "status": "succeeded",
	}
}

func refundObject(id, charge, pi, status string, amount int64, metadata map[string]any) map[string]any {
	if metadata == nil {
		metadata = map[string]any{}
	}
	return map[string]any{
		"id": id, "object": "refund", "amount": amount, "balance_transaction": "txn_2", "charge": charge, "created": 1700000100,
		"currency": "usd", "destination_details": map[string]any{"card": map[string]any{"reference_status": "pending", "type": "refund"}, "type": "card"},
		"metadata": metadata, "payment_intent": pi, "reason": "requested_by_customer", "receipt_number": nil,
		"source_transfer_reversal": nil, "status": status, "transfer_reversal": nil,
	}
}

func disputeObject(id, charge, pi string, amount int64) map[string]any {
	return map[string]any{
		"id": id, "object": "dispute", "amount": amount, "balance_transactions": []any{}, "charge": charge, "created": 1700000200,
		"currency": "usd", "evidence": map[string]any{"customer_name": nil}, "evidence_details": map[string]any{"due_by": 1701000000, "has_evidence": false, "past_due": false, "submission_count": 0},
		"is_charge_refundable": false, "livemode": false, "metadata": map[string]any{}, "payment_intent": pi,
		"reason": "fraudulent", "status": "needs_response",
	}
}

// webhookPayment stores a payment with known Stripe ids, as the API would have.
func (e *env) webhookPayment(method paygate.Method, amount int64, mut ...func(*paygate.Payment)) *paygate.Payment {
	e.t.Helper()
	n := evtSeq.Add(1)
	now := time.Now().UTC().Truncate(time.Microsecond)
	p := &paygate.Payment{
		ID: fmt.Sprintf("pay_wh%d%d", n, now.UnixNano()%1e6), Method: method, Status: paygate.StatusPending, Amount: amount, Currency: "usd",
		Quantity: 1, Metadata: map[string]string{"orderId": "7"}, Refunds: []paygate.Refund{}, CreatedAt: now, UpdatedAt: now,
	}
	switch method {
	case paygate.MethodIntent:
		p.PaymentIntentID = fmt.Sprintf("pi_wh%d", n)
	case paygate.MethodCheckout:
		p.CheckoutSessionID = fmt.Sprintf("cs_test_wh%d", n)
	case paygate.MethodLink:
		p.PaymentLinkID = fmt.Sprintf("plink_wh%d", n)
	}
	for _, f := range mut {
		f(p)
	}
	if err := e.store.InsertPayment(context.Background(), p); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// send posts a signed event and returns the response.
func (e *env) send(payload []byte, hdr ...string) *response {
	e.t.Helper()
	if len(hdr) == 0 {
		hdr = []string{"Stripe-Signature", signed(payload, whsecNew, time.Now())}
	}
	return e.do("POST", "/api/webhooks/stripe", string(payload), append(hdr, "Authorization", "")...)
}

func (e *env) payment(id string) *paygate.PaymentWithHistory {
	e.t.Helper()
	p, err := e.gw.GetPayment(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) eventCount() int {
	e.t.Helper()
	pg, err := e.store.ListWebhookEvents(context.Background(), paygate.WebhookEventFilter{PageParams: paygate.PageParams{Limit: 1}})
	if err != nil {
		e.t.Fatal(err)
	}
	if !pg.TotalEstimated {
		return pg.Total
	}
	n := 0 // past the exact count's limit: page through them all
	for pp := (paygate.PageParams{Limit: 100}); ; {
		pg, err := e.store.ListWebhookEvents(context.Background(), paygate.WebhookEventFilter{PageParams: pp})
		if err != nil {
			e.t.Fatal(err)
		}
		n += len(pg.Items)
		if pg.NextCursor == nil {
			return n
		}
		pp.Cursor = *pg.NextCursor
	}
}

func TestWebhookSignatureRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookSecrets(whsecOld, whsecNew))
	p := e.webhookPayment(paygate.MethodIntent, 1000)
	payload := stripeEventJSON("", "payment_intent.succeeded", "2023-10-16", piObject(p.PaymentIntentID, "succeeded", 1000, p.ID, "ch_1"))
	now := time.Now()
	good := signed(payload, whsecNew, now)
	tampered := append([]byte(nil), payload...)
	tampered[len(tampered)/2] ^= 0x01
	sigHex := good[strings.Index(good, "v1=")+3:]

	for _, tc := range []struct {
		name, body, header string
		status             int
		reason             string
	}{
		{"wrong secret", string(payload), signed(payload, "whsec_someoneElse0123456789", now), 400, "no signature matches"},
		{"missing header", string(payload), "", 400, "missing Stripe-Signature"},
		{"only unknown schemes", string(payload), fmt.Sprintf("t=%d,v0=%s,v2=%s", now.Unix(), sigHex, sigHex), 400, "no v1 signature"},
		{"no timestamp", string(payload), "v1=" + sigHex, 400, "malformed"},
		{"garbage header", string(payload), "garbage", 400, "malformed"},
		{"one byte changed", string(tampered), good, 400, "no signature matches"},
		{"stale timestamp", string(payload), signed(payload, whsecNew, now.Add(-360*time.Second)), 400, "older than the tolerance"},
		{"future timestamp", string(payload), signed(payload, whsecNew, now.Add(360*time.Second)), 400, "future"},
		{"signed non-JSON", "not json at all", signed([]byte("not json at all"), whsecNew, now), 400, "not a JSON event"},
		{"signed JSON without id", `{"type": "payment_intent.succeeded"}`, signed([]byte(`{"type": "payment_intent.succeeded"}`), whsecNew, now), 400, "id and type"},
		{"signed JSON without type", `{"id": "evt_123"}`, signed([]byte(`{"id": "evt_123"}`), whsecNew, now), 400, "id and type"},
		{"signed JSON array", `[1]`, signed([]byte(`[1]`), whsecNew, now), 400, "not a JSON event"},
		{"signed invalid UTF-8", "{\"id\": \"evt_u\", \"type\": \"x\", \"v\": \"\xff\"}", signed([]byte("{\"id\": \"evt_u\", \"type\": \"x\", \"v\": \"\xff\"}"), whsecNew, now), 400, "UTF-8"},
		{"signed NUL escape", `{"id": "evt_n", "type": "x", "data": {"object": {"id": "cus_\u0000"}}}`, signed([]byte(`{"id": "evt_n", "type": "x", "data": {"object": {"id": "cus_\u0000"}}}`), whsecNew, now), 400, "NUL"},
		{"signed bad api_version", `{"id": "evt_v", "type": "x", "api_version": "2023\n10"}`, signed([]byte(`{"id": "evt_v", "type": "x", "api_version": "2023\n10"}`), whsecNew, now), 400, "not a Stripe event"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/api/webhooks/stripe", tc.body, "Stripe-Signature", tc.header, "Authorization", "")
			if r.Status != tc.status || !strings.Contains(r.Message, tc.reason) {
				t.Fatalf("got %d %q, want %d containing %q", r.Status, r.Message, tc.status, tc.reason)
			}
		})
	}
	big := `{"id": "evt_big", "type": "x", "pad": "` + strings.Repeat("a", 1<<20) + `"}`
	if r := e.do("POST", "/api/webhooks/stripe", big, "Stripe-Signature", signed([]byte(big), whsecNew, now)); r.Status != 413 {
		t.Fatalf("body over 1 MiB: %d", r.Status)
	}
	if n := e.eventCount(); n != 0 {
		t.Fatalf("refused webhooks stored %d events", n)
	}
	if got := e.payment(p.ID); got.Status != paygate.StatusPending || len(got.History) != 0 {
		t.Fatalf("refused webhooks changed the payment: %+v", got.Payment)
	}
	for _, reason := range []string{"no signature matches", "older than the tolerance", "future", "missing Stripe-Signature", "body over 1 MiB"} {
		if !strings.Contains(e.logs.String(), reason) {
			t.Errorf("no log line names %q", reason)
		}
	}

	// The old secret of a rotation still verifies.
	r := e.send(payload, "Stripe-Signature", signed(payload, whsecOld, now))
	if r.Status != 200 {
		t.Fatalf("old secret of a rotation: %s", r.Raw)
	}
	// Stripe's own rolling: a header with two v1 signatures, one of them ours.
	payload2 := stripeEventJSON("", "payment_intent.processing", "2023-10-16", piObject(p.PaymentIntentID, "processing", 1000, p.ID, ""))
	s2 := signed(payload2, whsecNew, now)
	hdr := s2 + ",v1=" + hex.EncodeToString(make([]byte, 32))
	if r := e.send(payload2, "Stripe-Signature", hdr); r.Status != 200 {
		t.Fatalf("two v1 signatures: %s", r.Raw)
	}
}

func TestWebhookNotConfigured(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	payload := stripeEventJSON("", "payment_intent.succeeded", "2023-10-16", piObject("pi_x", "succeeded", 1000, "pay_x", "ch_1"))
	r := e.send(payload)
	if r.Status != 503 || r.Error.Type != "unavailable" {
		t.Fatalf("no secret: %s", r.Raw)
	}
	if e.eventCount() != 0 {
		t.Fatal("stored an event without a secret")
	}
	var cfg paygate.WebhookConfig
	e.do("GET", "/api/webhooks/config", "").must(t, 200, &cfg)
	if cfg.SecretConfigured || cfg.APIVersion != "2023-10-16" || cfg.URL != "/api/webhooks/stripe" || cfg.ToleranceSeconds != 300 || len(cfg.Events) != 16 {
		t.Fatalf("config = %+v", cfg)
	}
}

func TestWebhookEveryHandledType(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookSecrets(whsecNew))
	type check func(t *testing.T, p *paygate.PaymentWithHistory)
	statusIs := func(s paygate.Status, h paygate.HistoryType) check {
		return func(t *testing.T, p *paygate.PaymentWithHistory) {
			t.Helper()
			if p.Status != s || len(p.History) != 1 || p.History[0].EventType != h || p.History[0].Source != "webhook" || p.History[0].StripeEventID == "" {
				t.Fatalf("status %s, history %+v; want %s with one %s row", p.Status, p.History, s, h)
			}
		}
	}
	for _, tc := range []struct {
		typ    string
		method paygate.Method
		setup  func(p *paygate.Payment)
		obj    func(p *paygate.Payment) map[string]any
		check  check
	}{
		{typ: "payment_intent.succeeded", method: paygate.MethodIntent,
			obj: func(p *paygate.Payment) map[string]any {
				return piObject(p.PaymentIntentID, "succeeded", p.Amount, p.ID, "ch_s1")
			},
			check: func(t *testing.T, p *paygate.PaymentWithHistory) {
				statusIs(paygate.StatusSucceeded, "payment_succeeded")(t, p)
				if p.ChargeID != "ch_s1" {
					t.Fatal("charge not recorded")
				}
			}},
		{typ: "payment_intent.payment_failed", method: paygate.MethodIntent,
			obj: func(p *paygate.Payment) map[string]any {
				return piObject(p.PaymentIntentID, "requires_payment_method", p.Amount, p.ID, "ch_f1")
			},
			check: func(t *testing.T, p *paygate.PaymentWithHistory) {
				statusIs(paygate.StatusFailed, "payment_failed")(t, p)
				if !strings.Contains(string(p.History[0].Data), "insufficient_funds") {
					t.Fatalf("failure reason not in history: %s", p.History[0].Data)
				}
			}},
		{typ: "payment_intent.processing", method: paygate.MethodIntent,
			obj: func(p *paygate.Payment) map[string]any {
				return piObject(p.PaymentIntentID, "processing", p.Amount, p.ID, "")
			},
			check: statusIs(paygate.StatusProcessing, "payment_processing")},
		{typ: "payment_intent.canceled", method: paygate.MethodIntent,
			obj: func(p *paygate.Payment) map[string]any {
				return piObject(p.PaymentIntentID, "canceled", p.Amount, p.ID, "")
			},
			check: statusIs(paygate.StatusCanceled, "payment_canceled")},
		{typ: "checkout.session.completed", method: paygate.MethodCheckout,
			obj: func(p *paygate.Payment) map[string]any {
				return sessionObject(p.CheckoutSessionID, "pi_from_cs"+p.ID[7:], "", "paid", "complete", p.Amount, p.ID)
			},
			check: func(t *testing.T, p *paygate.PaymentWithHistory) {
				statusIs(paygate.StatusSucceeded, "checkout_completed")(t, p)
				if !strings.HasPrefix(p.PaymentIntentID, "pi_from_cs") || p.CustomerEmail != "payer@example.com" {
					t.Fatalf("session's payment intent/email not recorded: %+v", p.Payment)
				}
			}},
		{typ: "checkout.session.completed", method: paygate.MethodLink,
			obj: func(p *paygate.Payment) map[string]any {
				return sessionObject("cs_test_link"+p.ID[7:], "pi_link"+p.ID[7:], p.PaymentLinkID, "paid", "complete", p.Amount, "")
			},
			check: func(t *testing.T, p *paygate.PaymentWithHistory) {
				statusIs(paygate.StatusSucceeded, "checkout_completed")(t, p)
				if !strings.HasPrefix(p.CheckoutSessionID, "cs_test_link") || !strings.HasPrefix(p.PaymentIntentID, "pi_link") {
					t.Fatalf("payment link's session not recorded: %+v", p.Payment)
				}
			}},
		{typ: "checkout.session.completed", method: paygate.MethodCheckout,
			obj: func(p *paygate.Payment) map[string]any {
				return sessionObject(p.CheckoutSessionID, "pi_unpaid"+p.ID[7:], "", "unpaid", "complete", p.Amount, p.ID)
			},
			check: statusIs(paygate.StatusProcessing, "checkout_completed")},
		{typ: "checkout.session.async_payment_succeeded", method: paygate.MethodCheckout,
			obj: func(p *paygate.Payment) map[string]any {
				return sessionObject(p.CheckoutSessionID, "pi_async"+p.ID[7:], "", "paid", "complete", p.Amount, p.ID)
			},
			check: statusIs(paygate.StatusSucceeded, "payment_succeeded")},
		{typ: "checkout.session.async_payment_failed", method: paygate.MethodCheckout,
			obj: func(p *paygate.Payment) map[string]any {
				return sessionObject(p.CheckoutSessionID, "pi_asyncf"+p.ID[7:], "", "unpaid", "complete", p.Amount, p.ID)
			},
			check: statusIs(paygate.StatusFailed, "payment_failed")},
		{typ: "checkout.session.expired", method: paygate.MethodCheckout,
			obj: func(p *paygate.Payment) map[string]any {
				return sessionObject(p.CheckoutSessionID, "", "", "unpaid", "expired", p.Amount, p.ID)
			},
			check: statusIs(paygate.StatusExpired, "checkout_expired")},
		{typ: "checkout.session.expired", method: paygate.MethodLink,
			obj: func(p *paygate.Payment) map[string]any {
				return sessionObject("cs_test_exp"+p.ID[7:], "", p.PaymentLinkID, "unpaid", "expired", p.Amount, "")
			},
			check: func(t *testing.T, p *paygate.PaymentWithHistory) {
				if p.Status != paygate.StatusPending || len(p.History) != 0 {
					t.Fatalf("an expired session of a payment link ended the payment: %+v", p.Payment)
				}
			}},
		{typ: "charge.refunded", method: paygate.MethodIntent,
			obj: func(p *paygate.Payment) map[string]any {
				return chargeObject("ch_r"+p.ID[7:], p.PaymentIntentID, p.Amount, 400, p.ID)
			},
			check: func(t *testing.T, p *paygate.PaymentWithHistory) {
				// The refund implies the payment succeeded: both are told, once.
				if p.Status != paygate.StatusPartiallyRefunded || p.AmountRefunded != 400 || len(p.History) != 2 ||
					p.History[0].EventType != "payment_succeeded" || p.History[1].EventType != "refund_created" {
					t.Fatalf("refund before success: %+v %+v", p.Payment, p.History)
				}
			}},
		{typ: "charge.refund.updated", method: paygate.MethodIntent,
			setup: func(p *paygate.Payment) { p.ChargeID = "ch_u" + p.ID[7:] },
			obj: func(p *paygate.Payment) map[string]any {
				return refundObject("re_u"+p.ID[7:], p.ChargeID, p.PaymentIntentID, "succeeded", 300, nil)
			},
			check: func(t *testing.T, p *paygate.PaymentWithHistory) {
				// First known from this event: the refund is created.
				if p.AmountRefunded != 300 || len(p.Refunds) != 1 || p.Refunds[0].Status != paygate.RefundSucceeded || len(p.History) != 2 ||
					p.History[0].EventType != "payment_succeeded" || p.History[1].EventType != "refund_created" {
					t.Fatalf("refund updated: %+v %+v", p.Payment, p.History)
				}
			}},
		{typ: "charge.dispute.created", method: paygate.MethodIntent,
			setup: func(p *paygate.Payment) { p.ChargeID = "ch_d" + p.ID[7:] },
			obj: func(p *paygate.Payment) map[string]any {
				return disputeObject("dp_"+p.ID[7:], p.ChargeID, "", p.Amount)
			},
			check: func(t *testing.T, p *paygate.PaymentWithHistory) {
				if len(p.History) != 2 || p.History[1].EventType != "dispute_created" || !strings.Contains(string(p.History[1].Data), "fraudulent") {
					t.Fatalf("dispute: %+v", p.History)
				}
			}},
	} {
		t.Run(tc.typ+"/"+string(tc.method), func(t *testing.T) {
			p := e.webhookPayment(tc.method, 1000)
			if tc.setup != nil {
				if _, err := e.store.UpdatePayment(context.Background(), p.ID, func(q *paygate.Payment) ([]paygate.HistoryEntry, error) {
					tc.setup(q)
					*p = *q
					return nil, nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			var res paygate.WebhookResult
			e.send(stripeEventJSON("", tc.typ, "2023-10-16", tc.obj(p))).must(t, 200, &res)
			if res.Status != paygate.EventProcessed || res.PaymentID != p.ID || res.Duplicate {
				t.Fatalf("result = %+v", res)
			}
			tc.check(t, e.payment(p.ID))
		})
	}
}

func TestWebhookDuplicates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookSecrets(whsecNew))
	p := e.webhookPayment(paygate.MethodIntent, 1000)
	payload := stripeEventJSON("evt_dup_once", "payment_intent.succeeded", "2023-10-16", piObject(p.PaymentIntentID, "succeeded", 1000, p.ID, "ch_1"))
	var first, second paygate.WebhookResult
	e.send(payload).must(t, 200, &first)
	e.send(payload).must(t, 200, &second)
	if first.Duplicate || !second.Duplicate || second.Status != paygate.EventProcessed {
		t.Fatalf("first %+v, second %+v", first, second)
	}

	// Ten concurrent deliveries of another event: one effect.
	q := e.webhookPayment(paygate.MethodIntent, 1000)
	payload = stripeEventJSON("evt_dup_concurrent", "payment_intent.succeeded", "2023-10-16", piObject(q.PaymentIntentID, "succeeded", 1000, q.ID, "ch_2"))
	var wg sync.WaitGroup
	var dups atomic.Int32
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var res paygate.WebhookResult
			r := e.send(payload)
			if r.Status != 200 {
				t.Errorf("concurrent delivery: %s", r.Raw)
				return
			}
			_ = json.Unmarshal(r.Data, &res)
			if res.Duplicate {
				dups.Add(1)
			}
		}()
	}
	wg.Wait()
	if got := e.payment(q.ID); len(got.History) != 1 || got.Status != paygate.StatusSucceeded {
		t.Fatalf("history after 10 deliveries: %+v", got.History)
	}
	ev, err := e.gw.GetWebhookEvent(context.Background(), "evt_dup_concurrent")
	if err != nil || ev.ReceivedCount != 10 || dups.Load() != 9 {
		t.Fatalf("event %+v (%v), duplicates %d", ev, err, dups.Load())
	}
}

// For one payment's events, every order of arrival ends in the same state.
func TestWebhookOrderIndependence(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookSecrets(whsecNew))
	events := func(p *paygate.Payment) [][]byte {
		ch := "ch_perm" + p.ID[6:]
		return [][]byte{
			stripeEventJSON("", "payment_intent.processing", "2023-10-16", piObject(p.PaymentIntentID, "processing", 2000, p.ID, "")),
			stripeEventJSON("", "payment_intent.payment_failed", "2023-10-16", piObject(p.PaymentIntentID, "requires_payment_method", 2000, p.ID, ch)),
			stripeEventJSON("", "payment_intent.succeeded", "2023-10-16", piObject(p.PaymentIntentID, "succeeded", 2000, p.ID, ch)),
			stripeEventJSON("", "charge.refunded", "2023-10-16", chargeObject(ch, p.PaymentIntentID, 2000, 500, p.ID)),
			stripeEventJSON("", "charge.refunded", "2023-10-16", chargeObject(ch, p.PaymentIntentID, 2000, 2000, p.ID)),
		}
	}
	var perms [][]int
	var permute func(a []int, k int)
	permute = func(a []int, k int) {
		if k == len(a) {
			perms = append(perms, append([]int(nil), a...))
			return
		}
		for i := k; i < len(a); i++ {
			a[k], a[i] = a[i], a[k]
			permute(a, k+1)
			a[k], a[i] = a[i], a[k]
		}
	}
	permute([]int{0, 1, 2, 3, 4}, 0)
	if len(perms) != 120 {
		t.Fatalf("%d permutations", len(perms))
	}
	type final struct {
		Status         paygate.Status
		AmountRefunded int64
		ChargeID       bool
	}
	want := final{paygate.StatusRefunded, 2000, true}
	for _, perm := range perms {
		p := e.webhookPayment(paygate.MethodIntent, 2000)
		evs := events(p)
		for _, i := range perm {
			if r := e.send(evs[i]); r.Status != 200 {
				t.Fatalf("perm %v: %s", perm, r.Raw)
			}
		}
		got := e.payment(p.ID)
		if f := (final{got.Status, got.AmountRefunded, got.ChargeID != ""}); f != want {
			t.Fatalf("order %v ends in %+v, want %+v", perm, f, want)
		}
	}
}

// Two different events for one change make one history row.
func TestWebhookSameChangeOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookSecrets(whsecNew))
	p := e.webhookPayment(paygate.MethodCheckout, 1500)
	pi := "pi_same" + p.ID[6:]
	e.send(stripeEventJSON("", "checkout.session.completed", "2023-10-16", sessionObject(p.CheckoutSessionID, pi, "", "paid", "complete", 1500, p.ID))).must(t, 200, nil)
	e.send(stripeEventJSON("", "payment_intent.succeeded", "2023-10-16", piObject(pi, "succeeded", 1500, p.ID, "ch_same"))).must(t, 200, nil)
	got := e.payment(p.ID)
	if len(got.History) != 1 || got.Status != paygate.StatusSucceeded || got.ChargeID != "ch_same" {
		t.Fatalf("history %+v, payment %+v", got.History, got.Payment)
	}
	// A late failure never downgrades success.
	e.send(stripeEventJSON("", "payment_intent.payment_failed", "2023-10-16", piObject(pi, "requires_payment_method", 1500, p.ID, "ch_same"))).must(t, 200, nil)
	if got := e.payment(p.ID); got.Status != paygate.StatusSucceeded || len(got.History) != 1 {
		t.Fatalf("late failure: %+v", got.Payment)
	}
}

// A refund made through the API is confirmed by webhooks without counting twice.
func TestWebhookConfirmsAPIRefund(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookSecrets(whsecNew))
	pi := createIntent(t, e, "20.00")
	e.succeed(pi.PaymentID)
	var rf paygate.CreatedRefund
	e.do("POST", "/api/payments/refund", `{"paymentIntentId": "`+pi.PaymentIntentID+`", "amount": "5.00"}`).must(t, 201, &rf)
	ourID := e.rec.Calls()[len(e.rec.Calls())-1].Form.Get("metadata[paygate_refund_id]")
	e.send(stripeEventJSON("", "charge.refund.updated", "2023-10-16", refundObject(rf.RefundID, "ch_api", pi.PaymentIntentID, "succeeded", 500,
		map[string]any{"paygate_payment_id": pi.PaymentID, "paygate_refund_id": ourID}))).must(t, 200, nil)
	e.send(stripeEventJSON("", "charge.refunded", "2023-10-16", chargeObject("ch_api", pi.PaymentIntentID, 2000, 500, pi.PaymentID))).must(t, 200, nil)
	got := e.payment(pi.PaymentID)
	if got.AmountRefunded != 500 || len(got.Refunds) != 1 || got.Refunds[0].Status != paygate.RefundSucceeded || got.Status != paygate.StatusPartiallyRefunded {
		t.Fatalf("after webhooks: %+v", got.Payment)
	}
}

// TestWebhookEventParsing: an event's envelope and data.object are read in
// one pass, and when anything does not fit, the envelope alone: an object
// paygate cannot read makes a handled event failed (stored, 200, Stripe stops
// resending), never a refusal, and an envelope that is not an event is a 400
// naming the body.
func TestWebhookEventParsing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookSecrets(whsecNew))
	event := func(envelope, typ, obj string) []byte {
		id := fmt.Sprintf("evt_parse%08d", evtSeq.Add(1))
		return []byte(`{"id":"` + id + `","object":"event","type":"` + typ + `","api_version":"2023-10-16",` + envelope +
			`"data":{"object":` + obj + `,"previous_attributes":{}},"pending_webhooks":1}`)
	}
	const good = `"created":1700000000,"livemode":false,`
	for _, tc := range []struct {
		name, envelope, typ, obj string
		want                     paygate.EventStatus // "" = refused with 400
	}{
		{"readable object", good, "payment_intent.succeeded", `{"id":"pi_parse1","object":"payment_intent","status":"succeeded","amount":100,"currency":"usd"}`, paygate.EventUnmatched},
		{"amount is text", good, "payment_intent.succeeded", `{"id":"pi_parse2","amount":"ten"}`, paygate.EventFailed},
		{"expandable id is a number", good, "payment_intent.succeeded", `{"id":"pi_parse3","latest_charge":{"id":5}}`, paygate.EventFailed},
		{"metadata is a list", good, "charge.refunded", `{"id":"ch_parse4","metadata":["a"]}`, paygate.EventFailed},
		{"object is null", good, "charge.refunded", `null`, paygate.EventFailed},
		{"object has no id", good, "charge.refunded", `{"amount":5}`, paygate.EventFailed},
		{"unhandled type, odd object", good, "customer.created", `{"id":"cus_1","amount":"ten"}`, paygate.EventIgnored},
		{"created is text", `"created":"yesterday","livemode":false,`, "payment_intent.succeeded", `{"id":"pi_parse5"}`, ""},
		{"livemode is text, object odd too", `"created":1700000000,"livemode":"no",`, "payment_intent.succeeded", `{"id":"pi_parse6","amount":"ten"}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.send(event(tc.envelope, tc.typ, tc.obj))
			if tc.want == "" {
				if r.Status != 400 || !strings.Contains(string(r.Raw), `"param":"body"`) {
					t.Fatalf("want a 400 naming body, got %d %s", r.Status, r.Raw)
				}
				return
			}
			var res paygate.WebhookResult
			r.must(t, 200, &res)
			if res.Status != tc.want {
				t.Fatalf("status %q, want %q: %s", res.Status, tc.want, r.Raw)
			}
		})
	}
}

func TestWebhookIgnoredUnmatchedAndVersions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookSecrets(whsecNew))
	p := e.webhookPayment(paygate.MethodIntent, 1000)

	var res paygate.WebhookResult
	e.send(stripeEventJSON("evt_customer", "customer.created", "2023-10-16", map[string]any{"id": "cus_1", "object": "customer"})).must(t, 200, &res)
	if res.Status != paygate.EventIgnored {
		t.Fatalf("unknown type: %+v", res)
	}
	e.send(stripeEventJSON("evt_elsewhere", "payment_intent.succeeded", "2023-10-16", piObject("pi_elsewhere", "succeeded", 1000, "", "ch_x"))).must(t, 200, &res)
	if res.Status != paygate.EventUnmatched || res.PaymentID != "" {
		t.Fatalf("unknown payment: %+v", res)
	}
	e.send(stripeEventJSON("evt_broken", "payment_intent.succeeded", "2023-10-16", nil)).must(t, 200, &res)
	if res.Status != paygate.EventFailed {
		t.Fatalf("unreadable object: %+v", res)
	}
	// An older API version's event is accepted, applied and its version recorded.
	e.send(stripeEventJSON("evt_oldversion", "payment_intent.succeeded", "2020-08-27", piObject(p.PaymentIntentID, "succeeded", 1000, p.ID, "ch_old"))).must(t, 200, &res)
	if res.Status != paygate.EventProcessed || e.payment(p.ID).Status != paygate.StatusSucceeded {
		t.Fatalf("api version mismatch: %+v", res)
	}

	var ev paygate.WebhookEvent
	e.do("GET", "/api/webhooks/events/evt_oldversion", "").must(t, 200, &ev)
	if ev.APIVersion != "2020-08-27" || ev.PaymentID != p.ID || ev.ProcessedAt == nil || !strings.Contains(string(ev.Payload), `"latest_charge":"ch_old"`) {
		t.Fatalf("event = %+v", ev)
	}
	var page paygate.Page[paygate.WebhookEvent]
	e.do("GET", "/api/webhooks/events", "").must(t, 200, &page)
	if page.Total != 4 || page.Items[0].ID != "evt_oldversion" || page.Items[0].Payload != nil {
		t.Fatalf("events = %+v", page)
	}
	e.do("GET", "/api/webhooks/events?status=unmatched", "").must(t, 200, &page)
	if page.Total != 1 || page.Items[0].ID != "evt_elsewhere" {
		t.Fatalf("status filter = %+v", page)
	}
	e.do("GET", "/api/webhooks/events?type=customer.created&limit=1", "").must(t, 200, &page)
	if page.Total != 1 || page.Items[0].Status != paygate.EventIgnored {
		t.Fatalf("type filter = %+v", page)
	}
	e.do("GET", "/api/webhooks/events?limit=2", "").must(t, 200, &page)
	var next paygate.Page[paygate.WebhookEvent]
	e.do("GET", "/api/webhooks/events?limit=2&cursor="+*page.NextCursor, "").must(t, 200, &next)
	if len(next.Items) != 2 || next.NextCursor != nil || next.Items[0].ID == page.Items[1].ID {
		t.Fatalf("cursor paging: %+v then %+v", page.Items, next.Items)
	}
	for _, bad := range []struct{ path, param string }{
		{"/api/webhooks/events?status=bogus", "status"},
		{"/api/webhooks/events?type=DROP%20TABLE", "type"},
		{"/api/webhooks/events?limit=0", "limit"},
		{"/api/webhooks/events?cursor=zzz", "cursor"},
		{"/api/webhooks/events/not_an_event", "id"},
	} {
		if r := e.do("GET", bad.path, ""); r.Status != 400 || r.param() != bad.param {
			t.Errorf("%s: %d %s", bad.path, r.Status, r.Raw)
		}
	}
	if r := e.do("GET", "/api/webhooks/events/evt_nope", ""); r.Status != http.StatusNotFound {
		t.Errorf("unknown event: %s", r.Raw)
	}
}

// WebhookHandler serves Stripe's requests apart from the API handler.
func TestWebhookHandlerStandalone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookSecrets(whsecNew))
	p := e.webhookPayment(paygate.MethodIntent, 1000)
	payload := stripeEventJSON("", "payment_intent.succeeded", "2023-10-16", piObject(p.PaymentIntentID, "succeeded", 1000, p.ID, "ch_1"))
	h := e.gw.WebhookHandler()
	req, _ := http.NewRequest("POST", "/stripe", strings.NewReader(string(payload)))
	req.Header.Set("Stripe-Signature", signed(payload, whsecNew, time.Now()))
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	if rr.Code != 200 || e.payment(p.ID).Status != paygate.StatusSucceeded {
		t.Fatalf("standalone handler: %d %s", rr.Code, rr.Body.String())
	}
	// And the Go method, without HTTP.
	q := e.webhookPayment(paygate.MethodIntent, 1000)
	payload = stripeEventJSON("", "payment_intent.canceled", "2023-10-16", piObject(q.PaymentIntentID, "canceled", 1000, q.ID, ""))
	res, err := e.gw.HandleWebhook(context.Background(), payload, signed(payload, whsecNew, time.Now()))
	if err != nil || res.Status != paygate.EventProcessed || e.payment(q.ID).Status != paygate.StatusCanceled {
		t.Fatalf("HandleWebhook = %+v, %v", res, err)
	}
}

// An event naming a Stripe id that already belongs to another payment is
// stored as failed (200, so Stripe stops resending), not a 500 forever.
func TestWebhookIDClashIsAFailedEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookSecrets(whsecNew))
	taken := e.webhookPayment(paygate.MethodIntent, 1000)
	p := e.webhookPayment(paygate.MethodCheckout, 1000)
	var res paygate.WebhookResult
	e.send(stripeEventJSON("evt_clash", "checkout.session.completed", "2023-10-16",
		sessionObject(p.CheckoutSessionID, taken.PaymentIntentID, "", "paid", "complete", 1000, p.ID))).must(t, 200, &res)
	if res.Status != paygate.EventFailed {
		t.Fatalf("result = %+v", res)
	}
	ev, err := e.gw.GetWebhookEvent(context.Background(), "evt_clash")
	if err != nil || ev.Status != paygate.EventFailed || !strings.Contains(ev.Error, "another payment") {
		t.Fatalf("event = %+v, %v", ev, err)
	}
	if got := e.payment(p.ID); got.Status != paygate.StatusPending || got.PaymentIntentID != "" {
		t.Fatalf("payment changed: %+v", got.Payment)
	}
}

// Webhooks go one batch at a time, but a batch held up (here by a payment's
// row lock, as a long API transaction would hold it) does not hold up the
// events that arrive after it: a second batch starts beside it.
func TestWebhookBatchStuckOnALockDoesNotStopOthers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookSecrets(whsecNew))
	if e.pool == nil {
		t.Skip("PostgreSQL row locks; the embedded store has a single writer")
	}
	a, b := e.webhookPayment(paygate.MethodIntent, 1000), e.webhookPayment(paygate.MethodIntent, 2000)
	ctx := context.Background()
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM paygate_payments WHERE id = $1 FOR UPDATE`, a.ID); err != nil {
		t.Fatal(err)
	}
	post := func(p *paygate.Payment) (int, error) {
		payload := stripeEventJSON("", "payment_intent.succeeded", "2023-10-16", piObject(p.PaymentIntentID, "succeeded", p.Amount, p.ID, "ch_"+p.ID))
		req, _ := http.NewRequest("POST", e.srv.URL+"/api/webhooks/stripe", bytes.NewReader(payload))
		req.Header.Set("Stripe-Signature", signed(payload, whsecNew, time.Now()))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	type answer struct {
		status int
		err    error
	}
	first := make(chan answer, 1)
	go func() { s, err := post(a); first <- answer{s, err} }()
	// Once the first batch waits for the lock, the next event goes at once:
	// a second batch starts when the first has waited ingestStall (50 ms),
	// by a timer, though nothing arrives after it.
	e.waitForALockWait()
	select {
	case got := <-first:
		t.Fatalf("the event for the locked payment was answered while locked: %+v", got)
	default:
	}
	if s, err := post(b); err != nil || s != 200 {
		t.Fatalf("the event after the stuck batch: %d %v", s, err)
	}
	if got := e.payment(b.ID); got.Status != paygate.StatusSucceeded {
		t.Fatalf("payment b: %s", got.Status)
	}
	select {
	case got := <-first:
		t.Fatalf("the event for the locked payment was answered while locked: %+v", got)
	default:
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got := <-first; got.err != nil || got.status != 200 {
		t.Fatalf("the event for the locked payment: %+v", got)
	}
	if got := e.payment(a.ID); got.Status != paygate.StatusSucceeded {
		t.Fatalf("payment a: %s", got.Status)
	}
}

// A batch starts beside a stuck one (see TestWebhookBatchStuckOnALock…),
// which cannot see what the stuck one has not committed. An event of it
// whose payment is named only by a Stripe id that the stuck batch adds must
// not be taken for an event of another service: it waits for that batch
// and is applied, as it would have been one batch after the other.
func TestWebhookBatchWaitsForTheIDsAStuckBatchAdds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookSecrets(whsecNew))
	if e.pool == nil {
		t.Skip("PostgreSQL row locks; the embedded store has a single writer")
	}
	p := e.webhookPayment(paygate.MethodIntent, 1000)
	ctx := context.Background()
	charge := fmt.Sprintf("ch_stuck%d", evtSeq.Add(1))
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM paygate_payments WHERE id = $1 FOR UPDATE`, p.ID); err != nil {
		t.Fatal(err)
	}
	post := e.postWebhookAsync
	// The first event gives the payment its charge; its batch waits for the lock.
	first := post(stripeEventJSON("", "payment_intent.succeeded", "2023-10-16", piObject(p.PaymentIntentID, "succeeded", 1000, p.ID, charge)))
	e.waitForALockWait()
	// The second names the payment only by that charge: no metadata, no
	// PaymentIntent. Its batch starts beside the stuck one (after 50 ms).
	refundID := fmt.Sprintf("evt_stuck_refund%d", evtSeq.Add(1))
	refund := chargeObject(charge, "", 1000, 300, "")
	delete(refund, "metadata")
	second := post(stripeEventJSON(refundID, "charge.refunded", "2023-10-16", refund))
	select {
	case got := <-second:
		t.Fatalf("the refund was answered (%d) before the batch that adds its charge id committed", got)
	case <-time.After(300 * time.Millisecond):
	}
	// An event of another service (ids no batch in flight names) does not
	// wait for the stuck batch, nor for the refund's batch waiting on it.
	foreignID := fmt.Sprintf("evt_stuck_foreign%d", evtSeq.Add(1))
	foreign := post(stripeEventJSON(foreignID, "payment_intent.succeeded", "2023-10-16",
		piObject(fmt.Sprintf("pi_foreign%d", evtSeq.Add(1)), "succeeded", 500, "", fmt.Sprintf("ch_foreign%d", evtSeq.Add(1)))))
	select {
	case got := <-foreign:
		if got != 200 {
			t.Fatalf("another service's event: %d", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("another service's event waited for the stuck batch")
	}
	if ev, err := e.gw.GetWebhookEvent(ctx, foreignID); err != nil || ev.Status != paygate.EventUnmatched {
		t.Fatalf("another service's event = %+v, %v; want unmatched", ev, err)
	}
	select {
	case got := <-first:
		t.Fatalf("the stuck event was answered (%d) while its payment was locked", got)
	default:
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got := <-first; got != 200 {
		t.Fatalf("first event: %d", got)
	}
	if got := <-second; got != 200 {
		t.Fatalf("second event: %d", got)
	}
	ev, err := e.gw.GetWebhookEvent(ctx, refundID)
	if err != nil || ev.Status != paygate.EventProcessed || ev.PaymentID != p.ID {
		t.Fatalf("refund event = %+v, %v; want processed for %s", ev, err, p.ID)
	}
	if got := e.payment(p.ID); got.Status != paygate.StatusPartiallyRefunded || got.ChargeID != charge || got.AmountRefunded != 300 {
		t.Fatalf("payment = %s, charge %q, refunded %d; want partially refunded (300) by the charge's event", got.Status, got.ChargeID, got.AmountRefunded)
	}
}

// waitForALockWait waits (10 s at most) until a session of the test's
// database waits for a lock: a webhook batch held up by a row lock.
func (e *env) waitForALockWait() {
	e.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var waiting int
		if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`).Scan(&waiting); err != nil {
			e.t.Fatal(err)
		}
		if waiting > 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatal("the first batch never waited for the lock")
		}
	}
}

// postWebhookAsync posts payload, signed, to the webhook endpoint and
// sends the answer's status on the channel it returns (0 on a transport
// error, which fails the test).
func (e *env) postWebhookAsync(payload []byte) <-chan int {
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", e.srv.URL+"/api/webhooks/stripe", bytes.NewReader(payload))
		req.Header.Set("Stripe-Signature", signed(payload, whsecNew, time.Now()))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			e.t.Error(err)
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	return done
}
