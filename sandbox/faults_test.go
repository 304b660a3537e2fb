package sandbox

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
)

func TestFaults(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, Config{})
	api := stripeAPI(t, sb, testKey)

	sb.FailNext(Fault{Count: 2, Path: "/v1/payment_intents"})
	for i := 0; i < 2; i++ {
		_, err := api.PaymentIntents.New(&stripe.PaymentIntentParams{Amount: stripe.Int64(100), Currency: stripe.String("usd")})
		if se, ok := err.(*stripe.Error); !ok || se.HTTPStatusCode != 500 || se.Type != "api_error" {
			t.Fatalf("fault %d: %v", i, err)
		}
	}
	// Other paths are untouched, and the fault is used up.
	it := api.Events.List(&stripe.EventListParams{})
	for it.Next() {
	}
	must(t, it.Err())
	newIntent(t, api, "pay_f", 100)
	if len(sb.Truth("pay_f").PaymentIntents) != 1 {
		t.Fatal("the faults did not stop")
	}

	sb.FailNext(Fault{Status: 429})
	_, err := api.PaymentIntents.Get("pi_x", nil)
	if se, ok := err.(*stripe.Error); !ok || se.HTTPStatusCode != 429 || se.Code != "rate_limit" {
		t.Fatalf("429: %v", err)
	}

	// A hang holds the call until the client gives up.
	sb.FailNext(Fault{Hang: true, Method: "GET"})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	p := &stripe.PaymentIntentParams{}
	p.Context = ctx
	start := time.Now()
	_, err = api.PaymentIntents.Get("pi_x", p)
	if err == nil || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("hang: %v after %v", err, time.Since(start))
	}

	// AfterExecute: Stripe made the refund, the client heard a 500; the
	// idempotent retry gets the real answer and no second refund is made.
	pi := newIntent(t, api, "pay_g", 1000)
	must(t, sb.PayIntent(pi.ID, "4242424242424242"))
	sb.FailNext(Fault{Path: "/v1/refunds", AfterExecute: true})
	rp := refundParams(pi.ID, "rf_g", 400)
	_, err = api.Refunds.New(rp)
	if se, ok := err.(*stripe.Error); !ok || se.HTTPStatusCode != 500 {
		t.Fatalf("after-execute fault: %v", err)
	}
	re, err := api.Refunds.New(refundParams(pi.ID, "rf_g", 400))
	must(t, err)
	if tr := sb.Truth("pay_g"); len(tr.Refunds) != 1 || tr.Refunds[0].ID != re.ID {
		t.Fatalf("truth after the retry: %+v", tr.Refunds)
	}

	// Remember: the 500 is kept under the key; the same key gets it again,
	// a fresh key executes.
	sb.FailNext(Fault{Path: "/v1/refunds", Remember: true})
	for i := 0; i < 2; i++ {
		_, err = api.Refunds.New(refundParams(pi.ID, "rf_h", 100))
		if se, ok := err.(*stripe.Error); !ok || se.HTTPStatusCode != 500 {
			t.Fatalf("remembered 500, try %d: %v", i, err)
		}
	}
	_, err = api.Refunds.New(refundParams(pi.ID, "rf_i", 100))
	must(t, err)

	// A slow call: it hangs, then executes.
	sb.FailNext(Fault{Hang: true, HangFor: 100 * time.Millisecond, Path: "/v1/charges"})
	start = time.Now()
	_, err = api.Charges.Get(sb.Truth("pay_g").Charges[0].ID, nil)
	must(t, err)
	if time.Since(start) < 100*time.Millisecond {
		t.Fatal("slow fault was not slow")
	}
	// A late 503.
	sb.FailNext(Fault{Hang: true, HangFor: 50 * time.Millisecond, Status: 503, Path: "/v1/charges"})
	_, err = api.Charges.Get(sb.Truth("pay_g").Charges[0].ID, nil)
	if se, ok := err.(*stripe.Error); !ok || se.HTTPStatusCode != 503 {
		t.Fatalf("late 503: %v", err)
	}

	// The control API injects the same faults.
	req, _ := http.NewRequest("POST", sb.URL()+"/_sandbox/faults", stringsReader(`{"count":1,"status":503,"path":"/v1/charges"}`))
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	_, err = api.Charges.Get("ch_x", nil)
	if se, ok := err.(*stripe.Error); !ok || se.HTTPStatusCode != 503 {
		t.Fatalf("control fault: %v", err)
	}
}
