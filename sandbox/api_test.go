package sandbox

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stripe/stripe-go/v76"
)

func TestIdempotency(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, Config{})
	api := stripeAPI(t, sb, testKey)
	params := func(amount int64) *stripe.PaymentIntentParams {
		p := &stripe.PaymentIntentParams{Amount: stripe.Int64(amount), Currency: stripe.String("usd")}
		p.AddMetadata(MetadataPaymentKey, "pay_i")
		p.SetIdempotencyKey("key-1")
		return p
	}
	a, err := api.PaymentIntents.New(params(1000))
	must(t, err)
	b, err := api.PaymentIntents.New(params(1000))
	must(t, err)
	if a.ID != b.ID || a.ClientSecret != b.ClientSecret {
		t.Fatalf("replay made a new intent: %s vs %s", a.ID, b.ID)
	}
	if b.LastResponse.Header.Get("Idempotent-Replayed") != "true" || b.LastResponse.Header.Get("Original-Request") != a.LastResponse.RequestID {
		t.Errorf("replay headers: Idempotent-Replayed %q, Original-Request %q (first request %s)",
			b.LastResponse.Header.Get("Idempotent-Replayed"), b.LastResponse.Header.Get("Original-Request"), a.LastResponse.RequestID)
	}
	if n := len(sb.Truth("pay_i").PaymentIntents); n != 1 {
		t.Fatalf("%d intents after a replay", n)
	}
	_, err = api.PaymentIntents.New(params(2000))
	se, ok := err.(*stripe.Error)
	if !ok || se.HTTPStatusCode != 400 || se.Type != "idempotency_error" {
		t.Fatalf("different params under one key: %v", err)
	}
	// The same key on another endpoint is a different request too.
	pp := &stripe.PriceParams{Currency: stripe.String("usd"), UnitAmount: stripe.Int64(1), ProductData: &stripe.PriceProductDataParams{Name: stripe.String("x")}}
	pp.SetIdempotencyKey("key-1")
	if _, err := api.Prices.New(pp); err == nil {
		t.Fatal("key reused on another endpoint accepted")
	}
	// A card decline is an answer: it is replayed, not re-run.
	pi := newIntent(t, api, "pay_j", 500)
	cp := &stripe.PaymentIntentConfirmParams{PaymentMethod: stripe.String("pm_card_chargeDeclined")}
	cp.SetIdempotencyKey("confirm-1")
	_, err1 := api.PaymentIntents.Confirm(pi.ID, cp)
	_, err2 := api.PaymentIntents.Confirm(pi.ID, cp)
	e1, _ := err1.(*stripe.Error)
	e2, _ := err2.(*stripe.Error)
	if e1 == nil || e2 == nil || e1.ChargeID == "" || e1.ChargeID != e2.ChargeID || e2.DeclineCode != "generic_decline" {
		t.Fatalf("decline replay: %v / %v", err1, err2)
	}
	if n := len(sb.Truth("pay_j").Charges); n != 1 {
		t.Fatalf("%d charges after a replayed decline", n)
	}
}

func TestPagination(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, Config{})
	api := stripeAPI(t, sb, testKey)
	var made []string
	for i := 0; i < 25; i++ {
		made = append([]string{newIntent(t, api, "pay_"+string(rune('a'+i)), 100).ID}, made...) // newest first
	}
	p := &stripe.PaymentIntentListParams{}
	p.Limit = stripe.Int64(10)
	it := api.PaymentIntents.List(p)
	var got []string
	pages := map[bool]int{}
	for it.Next() {
		got = append(got, it.PaymentIntent().ID)
		pages[it.Meta().HasMore]++
	}
	must(t, it.Err())
	if diff := cmp.Diff(made, got); diff != "" {
		t.Fatalf("auto-paged list (-want +got):\n%s", diff)
	}
	// A raw page: limit, has_more, url, starting_after.
	status, body := rawCall(t, sb, "GET", "/v1/payment_intents?limit=3&starting_after="+made[20], nil, nil)
	var l struct {
		Object  string `json:"object"`
		URL     string `json:"url"`
		HasMore bool   `json:"has_more"`
		Data    []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	must(t, json.Unmarshal(body, &l))
	if status != 200 || l.Object != "list" || l.URL != "/v1/payment_intents" || !l.HasMore || len(l.Data) != 3 || l.Data[0].ID != made[21] {
		t.Fatalf("page: %d %s", status, body)
	}
	status, body = rawCall(t, sb, "GET", "/v1/payment_intents?limit=10&starting_after="+made[20], nil, nil)
	must(t, json.Unmarshal(body, &l))
	if l.HasMore || len(l.Data) != 4 {
		t.Fatalf("last page: %s", body)
	}
	status, _ = rawCall(t, sb, "GET", "/v1/payment_intents?limit=101", nil, nil)
	if status != 400 {
		t.Fatalf("limit=101: %d", status)
	}
	// Events: type, types[], created[gte], starting_after.
	sb.Advance(time.Hour)
	newIntent(t, api, "pay_late", 100)
	ep := &stripe.EventListParams{Types: stripe.StringSlice([]string{"payment_intent.created"})}
	ep.Filters.AddFilter("created", "gte", strconv.FormatInt(sb.Now().Unix(), 10))
	eit := api.Events.List(ep)
	n := 0
	for eit.Next() {
		n++
		if eit.Event().Type != "payment_intent.created" {
			t.Errorf("filtered list has %s", eit.Event().Type)
		}
	}
	must(t, eit.Err())
	if n != 1 {
		t.Fatalf("events since the clock moved: %d", n)
	}
	ep2 := &stripe.EventListParams{Type: stripe.String("payment_intent.*")}
	eit = api.Events.List(ep2)
	n = 0
	for eit.Next() {
		n++
	}
	must(t, eit.Err())
	if n != 26 {
		t.Fatalf("payment_intent.* events: %d", n)
	}
}

func TestExpand(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, Config{})
	api := stripeAPI(t, sb, testKey)
	cs := newCheckout(t, api, "pay_e", 3100)
	must(t, sb.PaySession(cs.ID, "4242424242424242"))
	p := &stripe.CheckoutSessionParams{}
	p.AddExpand("payment_intent.latest_charge")
	p.AddExpand("line_items")
	got, err := api.CheckoutSessions.Get(cs.ID, p)
	must(t, err)
	if got.PaymentIntent == nil || got.PaymentIntent.Status != "succeeded" || got.PaymentIntent.LatestCharge == nil || got.PaymentIntent.LatestCharge.Amount != 3100 {
		t.Fatalf("expanded: %+v", got.PaymentIntent)
	}
	if got.LineItems == nil || len(got.LineItems.Data) != 1 || got.LineItems.Data[0].Description != "Visit" {
		t.Fatalf("line items: %+v", got.LineItems)
	}
	lit := api.CheckoutSessions.ListLineItems(&stripe.CheckoutSessionListLineItemsParams{Session: stripe.String(cs.ID)})
	n := 0
	for lit.Next() {
		if lit.LineItem().AmountTotal != 3100 {
			t.Errorf("line item %+v", lit.LineItem())
		}
		n++
	}
	must(t, lit.Err())
	if n != 1 {
		t.Fatalf("%d line items", n)
	}
	p2 := &stripe.CheckoutSessionParams{}
	p2.AddExpand("customer")
	_, err = api.CheckoutSessions.Get(cs.ID, p2)
	if se, ok := err.(*stripe.Error); !ok || se.HTTPStatusCode != 400 || se.Param != "expand" {
		t.Fatalf("expand an unexpandable field: %v", err)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, Config{})
	api := stripeAPI(t, sb, testKey)
	_, err := api.PaymentIntents.Get("pi_missing", nil)
	se, ok := err.(*stripe.Error)
	if !ok || se.HTTPStatusCode != 404 || se.Code != "resource_missing" || se.Type != "invalid_request_error" || se.Param != "intent" {
		t.Fatalf("unknown id: %#v", err)
	}
	for _, tc := range []struct {
		form  url.Values
		param string
	}{
		{url.Values{"currency": {"usd"}}, "amount"},
		{url.Values{"amount": {"12.5"}, "currency": {"usd"}}, "amount"},
		{url.Values{"amount": {"100"}, "currency": {"dollars"}}, "currency"},
		{url.Values{"amount": {"100"}, "currency": {"usd"}, "colour": {"red"}}, "colour"},
		{url.Values{"amount": {"49"}, "currency": {"usd"}}, "amount"},
		{url.Values{"amount": {"999"}, "currency": {"thb"}}, "amount"},
		{url.Values{"amount": {"100000000"}, "currency": {"usd"}}, "amount"},
		{url.Values{"amount": {"100"}, "currency": {"usd"}, "automatic_payment_methods[enabled]": {"maybe"}}, "automatic_payment_methods[enabled]"},
	} {
		status, body := rawCall(t, sb, "POST", "/v1/payment_intents", tc.form, nil)
		var e struct {
			Error struct{ Type, Param, Message string }
		}
		must(t, json.Unmarshal(body, &e))
		if status != 400 || e.Error.Type != "invalid_request_error" || e.Error.Param != tc.param || e.Error.Message == "" {
			t.Errorf("%v: %d %s", tc.form, status, body)
		}
	}
	status, body := rawCall(t, sb, "GET", "/v1/customers", nil, nil)
	if status != 404 || !strings.Contains(string(body), "Unrecognized request URL") {
		t.Errorf("unknown route: %d %s", status, body)
	}
	// Canceling a Checkout-made intent is refused, as at Stripe.
	cs := newCheckout(t, api, "pay_c", 100)
	_ = sb.PaySession(cs.ID, "4000000000000002")
	_, err = api.PaymentIntents.Cancel(sb.SessionIntent(cs.ID), nil)
	if se, ok := err.(*stripe.Error); !ok || se.HTTPStatusCode != 400 {
		t.Fatalf("cancel a Checkout intent: %v", err)
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, Config{})
	for _, key := range []string{"sk_live_123abc", "rk_live_123abc"} {
		_, err := stripeAPI(t, sb, key).PaymentIntents.Get("pi_x", nil)
		se, ok := err.(*stripe.Error)
		if !ok || se.HTTPStatusCode != 401 || !strings.Contains(se.Msg, "refuses live keys") {
			t.Errorf("%s: %v", key, err)
		}
	}
	_, err := stripeAPI(t, sb, "pk_test_123").PaymentIntents.Get("pi_x", nil)
	if se, ok := err.(*stripe.Error); !ok || se.HTTPStatusCode != 401 {
		t.Errorf("publishable key: %v", err)
	}
	status, _ := rawCall(t, sb, "GET", "/v1/events", nil, map[string]string{"Authorization": ""})
	if status != 401 {
		t.Errorf("no key: %d", status)
	}
	if _, err := New(Config{APIKey: "sk_live_abc"}); err == nil {
		t.Error("New took a live key")
	}
	only := newTestSandbox(t, Config{APIKey: "sk_test_only"})
	if _, err := stripeAPI(t, only, "sk_test_other").Events.Get("evt_x", nil); err == nil || err.(*stripe.Error).HTTPStatusCode != 401 {
		t.Errorf("wrong test key: %v", err)
	}
}

func TestWebhookEnabledEvents(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, Config{WebhookEvents: []string{"payment_intent.succeeded", "charge.refunded"}})
	rc := newReceiver(t, sb)
	api := stripeAPI(t, sb, testKey)
	pi := newIntent(t, api, "pay_en", 100)
	must(t, sb.PayIntent(pi.ID, "4242424242424242"))
	_, err := sb.Refund(pi.ID, 0, "")
	must(t, err)
	wantEvents(t, sb, rc, "payment_intent.succeeded", "charge.refunded")
	if n := len(sb.Events()); n != 5 {
		t.Fatalf("%d events listed; every event is listed, enabled or not", n)
	}
}

func TestWebhookEndpointList(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, Config{WebhookURL: "https://pay.example/webhooks/stripe"})
	api := stripeAPI(t, sb, testKey)
	it := api.WebhookEndpoints.List(&stripe.WebhookEndpointListParams{})
	var eps []*stripe.WebhookEndpoint
	for it.Next() {
		eps = append(eps, it.WebhookEndpoint())
	}
	must(t, it.Err())
	if len(eps) != 1 || eps[0].APIVersion != APIVersion || eps[0].URL != "https://pay.example/webhooks/stripe" || eps[0].Status != "enabled" || eps[0].EnabledEvents[0] != "*" {
		t.Fatalf("endpoints: %+v", eps)
	}
}

func TestPaymentLinkDeactivated(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, Config{})
	rc := newReceiver(t, sb)
	api := stripeAPI(t, sb, testKey)
	link := newLink(t, api, "pay_off", 500, "")
	got, err := api.PaymentLinks.Update(link.ID, &stripe.PaymentLinkParams{Active: stripe.Bool(false)})
	must(t, err)
	if got.Active {
		t.Fatal("still active")
	}
	wantEvents(t, sb, rc, "payment_link.updated")
	resp, err := http.Get(link.URL)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone {
		t.Fatalf("visiting a deactivated link: %d", resp.StatusCode)
	}
	if len(sb.LinkSessions(link.ID)) != 0 {
		t.Fatal("a deactivated link opened a session")
	}
}

func TestUntagged(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, Config{})
	api := stripeAPI(t, sb, testKey)
	newLink(t, api, "pay_t", 500, "")
	cs := newCheckout(t, api, "pay_t2", 500)
	must(t, sb.PaySession(cs.ID, "4242424242424242"))
	pi := newIntent(t, api, "pay_t3", 500)
	must(t, sb.PayIntent(pi.ID, "4242424242424242"))
	_, err := api.Refunds.New(refundParams(pi.ID, "rf_t", 100))
	must(t, err)
	_, err = sb.Refund(pi.ID, 100, "") // the Dashboard's: not checked
	must(t, err)
	if u := sb.Untagged(); len(u) != 0 {
		t.Fatalf("untagged: %v", u)
	}
	bare, err := api.PaymentIntents.New(&stripe.PaymentIntentParams{Amount: stripe.Int64(500), Currency: stripe.String("usd")})
	must(t, err)
	_, err = api.Refunds.New(&stripe.RefundParams{PaymentIntent: stripe.String(pi.ID), Amount: stripe.Int64(50)})
	must(t, err)
	u := sb.Untagged()
	if len(u) != 3 || !strings.Contains(u[0], bare.ID) {
		t.Fatalf("untagged: %v", u)
	}
}
