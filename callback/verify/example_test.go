package verify_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/numedapp/paygate/callback/verify"
)

// A receiver verifies the raw body with the headers and the shared secret,
// then decodes it.
func ExampleVerifyAt() {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"test": 2432232314}`)
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")

	now := time.Unix(1614265330, 0).Add(30 * time.Second) // in a receiver: verify.Verify, which uses time.Now
	fmt.Println(verify.VerifyAt(secret, h, body, now, verify.DefaultTolerance))
	fmt.Println(verify.VerifyAt(secret, h, []byte(`{"test": 1}`), now, verify.DefaultTolerance))
	fmt.Println(verify.VerifyAt(secret, h, body, now.Add(time.Hour), verify.DefaultTolerance))
	// Output:
	// <nil>
	// callback: no signature matches
	// callback: webhook-timestamp is too old
}

// A receiver's handler: verify and decode, then act on the action. Answer
// 2xx once the change is applied (or was already): paygate retries anything
// else.
func ExampleParse() {
	const secret = "whsec_c2VjcmV0LWtleS1mb3ItcGF5Z2F0ZS10ZXN0cy0xMjM0NTY="
	body := []byte(`{"eventId":"evt_1","eventType":"payment_intent.succeeded","action":"payment_succeeded","message":"Payment succeeded",` +
		`"data":{"paymentId":"pay_1","paymentIntentId":"pi_1","amount":1999,"currency":"usd","status":"succeeded","metadata":{"orderId":"1234"}},` +
		`"paymentId":"pay_1","sequence":2,"timestamp":"2024-01-31T00:00:00Z"}`)
	// What paygate sends (a test would get these from the request):
	key, _ := verify.ParseSecret(secret)
	now := time.Now()
	h := http.Header{}
	h.Set(verify.HeaderID, "cb_1")
	h.Set(verify.HeaderTimestamp, fmt.Sprint(now.Unix()))
	h.Set(verify.HeaderSignature, verify.Signature(key, "cb_1", now, body))

	p, err := verify.Parse(secret, h, body)
	if err != nil {
		fmt.Println("refuse:", err)
		return
	}
	switch p.Action {
	case verify.ActionPaymentSucceeded:
		fmt.Printf("order %s paid: %d %s (payment %s, sequence %d)\n", p.Data.Metadata["orderId"], p.Data.Amount, p.Data.Currency, p.PaymentID, p.Sequence)
	case verify.ActionRefundCreated, verify.ActionRefundUpdated:
		fmt.Println("refunded so far:", *p.Data.AmountRefunded)
	}
	// Output:
	// order 1234 paid: 1999 usd (payment pay_1, sequence 2)
}
