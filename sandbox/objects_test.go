package sandbox

import (
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// rawCall makes an API request with the test key and returns status and body.
func rawCall(t *testing.T, sb *Sandbox, method, path string, form url.Values, header map[string]string) (int, []byte) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, sb.URL()+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Sandbox") != "paygate" {
		t.Errorf("%s %s: no Sandbox: paygate header", method, path)
	}
	return resp.StatusCode, b
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// everyFlow drives the sandbox through every state it can produce.
func everyFlow(t *testing.T, sb *Sandbox, api *client.API) {
	t.Helper()
	// Link: declined, then paid in a second session; refunded in part.
	link := newLink(t, api, "pay_link", 1000, "https://shop.example/thanks")
	if _, err := sb.PayLink(link.ID, "4000000000000002"); err == nil {
		t.Fatal("decline did not fail")
	}
	_, err := sb.PayLink(link.ID, "4242424242424242")
	must(t, err)
	tr := sb.Truth("pay_link")
	rp := &stripe.RefundParams{PaymentIntent: stripe.String(tr.Succeeded), Amount: stripe.Int64(300), Reason: stripe.String("requested_by_customer")}
	rp.AddMetadata(MetadataPaymentKey, "pay_link")
	rp.AddMetadata(MetadataRefundKey, "rf_1")
	_, err = api.Refunds.New(rp)
	must(t, err)

	// Checkout: bank debit that settles, one that fails, one that expires.
	cs := newCheckout(t, api, "pay_debit_ok", 5000)
	must(t, sb.PaySession(cs.ID, "pm_usBankAccount_success"))
	cs2 := newCheckout(t, api, "pay_debit_fail", 5000)
	must(t, sb.PaySession(cs2.ID, "pm_usBankAccount_failure"))
	cs3 := newCheckout(t, api, "pay_expire", 700)
	_ = sb.PaySession(cs3.ID, "4000000000009995")

	// PaymentIntents: 3DS completed, 3DS failed, canceled, pending and
	// failing refunds, disputes won and lost.
	pi := newIntent(t, api, "pay_3ds", 1200)
	_, err = api.PaymentIntents.Confirm(pi.ID, &stripe.PaymentIntentConfirmParams{PaymentMethod: stripe.String("pm_card_authenticationRequired"), ReturnURL: stripe.String("https://shop.example/back")})
	must(t, err)
	must(t, sb.Authenticate(pi.ID, true))
	pi2 := newIntent(t, api, "pay_3ds_fail", 1200)
	must(t, sb.PayIntent(pi2.ID, "4000002500003155"))
	must(t, sb.Authenticate(pi2.ID, false))
	pi3 := newIntent(t, api, "pay_cancel", 900)
	_, err = api.PaymentIntents.Cancel(pi3.ID, &stripe.PaymentIntentCancelParams{CancellationReason: stripe.String("requested_by_customer")})
	must(t, err)
	pi4 := newIntent(t, api, "pay_refunds", 4000)
	must(t, sb.PayIntent(pi4.ID, "4000000000005126"))
	_, err = sb.Refund(pi4.ID, 1000, "")
	must(t, err)
	pi5 := newIntent(t, api, "pay_pending_refund", 4000)
	must(t, sb.PayIntent(pi5.ID, "pm_card_pendingRefund"))
	_, err = sb.Refund(pi5.ID, 0, "duplicate")
	must(t, err)
	pi6 := newIntent(t, api, "pay_dispute_won", 3000)
	must(t, sb.PayIntent(pi6.ID, "4000000000000259"))
	dps := sb.Truth("pay_dispute_won").Disputes
	must(t, sb.UpdateDispute(dps[0].ID, "signed receipt"))
	must(t, sb.CloseDispute(dps[0].ID, true))
	pi7 := newIntent(t, api, "pay_dispute_lost", 3000)
	must(t, sb.PayIntent(pi7.ID, "4242424242424242"))
	dp, err := sb.Dispute(pi7.ID, "product_not_received")
	must(t, err)
	must(t, sb.CloseDispute(dp, false))

	// Time: debits settle, refunds settle and fail, sessions expire.
	sb.Advance(73 * time.Hour)
	newCheckout(t, api, "pay_open", 100)
}

// TestObjectsMatchSpec walks every object the sandbox made in every flow,
// as the API returns it (and as events carry it), and validates each
// against Stripe's OpenAPI spec.
func TestObjectsMatchSpec(t *testing.T) {
	sp := loadSpec(t)
	sb := newTestSandbox(t, Config{})
	api := stripeAPI(t, sb, testKey)
	everyFlow(t, sb, api)

	retrieve := map[string]string{
		"product": "/v1/products/", "price": "/v1/prices/", "payment_link": "/v1/payment_links/",
		"checkout.session": "/v1/checkout/sessions/", "payment_intent": "/v1/payment_intents/", "charge": "/v1/charges/",
		"refund": "/v1/refunds/", "dispute": "/v1/disputes/", "event": "/v1/events/",
	}
	expand := map[string]string{
		"checkout.session": "?expand[]=line_items&expand[]=payment_intent.latest_charge&expand[]=payment_link",
		"payment_intent":   "?expand[]=latest_charge", "charge": "?expand[]=refunds&expand[]=payment_intent",
		"refund": "?expand[]=charge", "dispute": "?expand[]=charge", "price": "?expand[]=product",
		"payment_link": "?expand[]=line_items",
	}
	sb.mu.Lock()
	types := map[string][]string{}
	for typ, ids := range sb.byType {
		types[typ] = append([]string(nil), ids...)
	}
	sb.mu.Unlock()
	var names []string
	for typ := range types {
		names = append(names, typ)
	}
	sort.Strings(names)
	seenStates := map[string]bool{}
	for _, typ := range names {
		prefix, ok := retrieve[typ]
		if !ok {
			t.Errorf("object type %s has no retrieve route in this test", typ)
			continue
		}
		for _, id := range types[typ] {
			for _, q := range []string{"", expand[typ]} {
				status, body := rawCall(t, sb, "GET", prefix+id+q, nil, nil)
				if status != 200 {
					t.Fatalf("GET %s%s%s: %d %s", prefix, id, q, status, body)
				}
				v := decodeJSON(t, body).(map[string]any)
				for _, e := range sp.validate(typ, v) {
					t.Errorf("%s %s%s: %s", typ, id, q, e)
				}
				if st, ok := v["status"].(string); ok {
					seenStates[typ+":"+st] = true
				}
			}
			if typ == "event" {
				status, body := rawCall(t, sb, "GET", prefix+id, nil, nil)
				if status != 200 {
					t.Fatal(status)
				}
				ev := decodeJSON(t, body).(map[string]any)
				obj := ev["data"].(map[string]any)["object"].(map[string]any)
				for _, e := range sp.validate(obj["object"].(string), obj) {
					t.Errorf("event %s (%s) data.object: %s", id, ev["type"], e)
				}
			}
		}
	}
	// Every state the flows reach, so the walk above saw each of them.
	for _, st := range []string{
		"payment_intent:succeeded", "payment_intent:requires_payment_method", "payment_intent:canceled",
		"charge:succeeded", "charge:failed", "refund:succeeded", "refund:failed",
		"dispute:won", "dispute:lost", "checkout.session:complete", "checkout.session:expired", "checkout.session:open",
	} {
		if !seenStates[st] {
			t.Errorf("no object reached %s", st)
		}
	}
	// Lists, the webhook endpoint, line items and error objects.
	for _, path := range []string{"/v1/events?limit=3", "/v1/refunds?payment_intent=" + sb.Truth("pay_refunds").Succeeded,
		"/v1/checkout/sessions?limit=2&expand[]=data.payment_intent", "/v1/webhook_endpoints", "/v1/charges?limit=100", "/v1/disputes"} {
		status, body := rawCall(t, sb, "GET", path, nil, nil)
		if status != 200 {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		l := decodeJSON(t, body).(map[string]any)
		if l["object"] != "list" || l["url"] == nil || l["has_more"] == nil {
			t.Errorf("GET %s: not a list: %s", path, body)
		}
		for i, it := range l["data"].([]any) {
			m := it.(map[string]any)
			for _, e := range sp.validate(m["object"].(string), m) {
				t.Errorf("GET %s data[%d]: %s", path, i, e)
			}
		}
	}
	declined := newIntent(t, api, "pay_declined", 100)
	for _, path := range []string{"/v1/payment_intents/pi_nope", "/v1/refunds?limit=1000", "/v1/nothing",
		"POST /v1/payment_intents/" + declined.ID + "/confirm?payment_method=pm_card_chargeDeclined"} {
		method := "GET"
		if m, p, ok := strings.Cut(path, " "); ok {
			method, path = m, p
		}
		status, body := rawCall(t, sb, method, path, url.Values{}, nil)
		if status < 400 {
			t.Fatalf("GET %s: %d", path, status)
		}
		e := decodeJSON(t, body).(map[string]any)["error"]
		for _, msg := range sp.validate("api_errors", e) {
			t.Errorf("GET %s error: %s", path, msg)
		}
	}
}
