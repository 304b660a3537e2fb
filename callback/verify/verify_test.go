package verify_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/numedapp/paygate/callback/verify"
)

// The Standard Webhooks specification's published test vector.
const (
	vecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecTS     = 1614265330
	vecBody   = `{"test": 2432232314}`
	vecSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

const secret = "whsec_c2VjcmV0LWtleS1mb3ItcGF5Z2F0ZS10ZXN0cy0xMjM0NTY="

func headers(id string, ts time.Time, sig string) http.Header {
	h := http.Header{}
	h.Set(verify.HeaderID, id)
	h.Set(verify.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(verify.HeaderSignature, sig)
	return h
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func TestSpecVector(t *testing.T) {
	key, err := verify.ParseSecret(vecSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := verify.Signature(key, vecID, time.Unix(vecTS, 0), []byte(vecBody)); got != vecSig {
		t.Fatalf("Signature = %q, want %q", got, vecSig)
	}
	h := headers(vecID, time.Unix(vecTS, 0), vecSig)
	if err := verify.VerifyAt(vecSecret, h, []byte(vecBody), time.Unix(vecTS+10, 0), verify.DefaultTolerance); err != nil {
		t.Fatalf("VerifyAt(vector) = %v", err)
	}
}

// The reference library verifies what we sign, and we verify what it signs.
func TestReferenceLibraryBothWays(t *testing.T) {
	body := []byte(`{"eventId":"evt_1","action":"payment_succeeded","data":{"paymentId":"pay_1"}}`)
	now := time.Now()
	ref, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := verify.ParseSecret(secret)
	ours := headers("cb_123", now, verify.Signature(key, "cb_123", now, body))
	if err := ref.Verify(body, ours); err != nil {
		t.Fatalf("reference library rejects our signature: %v", err)
	}
	// A tampered body must fail there too, or the check above proves nothing.
	if err := ref.Verify([]byte(`{"eventId":"evt_2"}`), ours); err == nil {
		t.Fatal("reference library accepts a tampered body")
	}

	refSig, err := ref.Sign("cb_456", now, body)
	if err != nil {
		t.Fatal(err)
	}
	theirs := headers("cb_456", now, refSig)
	if err := verify.Verify(secret, theirs, body); err != nil {
		t.Fatalf("Verify rejects the reference library's signature: %v", err)
	}
	if p, err := verify.Parse(secret, theirs, body); err != nil || p.Data.PaymentID != "pay_1" || p.Action != verify.ActionPaymentSucceeded {
		t.Fatalf("Parse = %+v, %v", p, err)
	}
}

func TestRefusals(t *testing.T) {
	other := "whsec_b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXktMDAwMDA="
	body := []byte(`{"a":1}`)
	now := time.Unix(1_700_000_000, 0)
	sign := func(sec string, at time.Time) http.Header {
		k, err := verify.ParseSecret(sec)
		if err != nil {
			t.Fatal(err)
		}
		return headers("cb_1", at, verify.Signature(k, "cb_1", at, body))
	}
	rot := sign(other, now)
	rot.Set(verify.HeaderSignature, "v2,ignored "+rot.Get(verify.HeaderSignature)+" "+sign(secret, now).Get(verify.HeaderSignature))
	badTS := sign(secret, now)
	badTS.Set(verify.HeaderTimestamp, "yesterday")
	for _, tc := range []struct {
		name   string
		secret string
		h      http.Header
		body   []byte
		want   error
	}{
		{"valid", secret, sign(secret, now), body, nil},
		{"rotation: a later signature matches", secret, rot, body, nil},
		{"other secret", secret, sign(other, now), body, verify.ErrNoMatchSignature},
		{"body changed", secret, sign(secret, now), []byte(`{"a":2}`), verify.ErrNoMatchSignature},
		{"too old", secret, sign(secret, now.Add(-6*time.Minute)), body, verify.ErrTimestampTooOld},
		{"future", secret, sign(secret, now.Add(6*time.Minute)), body, verify.ErrTimestampFuture},
		{"bad timestamp", secret, badTS, body, verify.ErrBadTimestamp},
		{"no headers", secret, http.Header{}, body, verify.ErrMissingHeaders},
		{"bad secret", "whsec_c2hvcnQ=", sign(secret, now), body, verify.ErrBadSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := verify.VerifyAt(tc.secret, tc.h, tc.body, now, verify.DefaultTolerance); err != tc.want {
				t.Fatalf("VerifyAt = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := verify.Parse(secret, http.Header{}, body); !errors.Is(err, verify.ErrMissingHeaders) {
		t.Fatalf("Parse without headers = %v", err)
	}
}

// oldPayload and oldData are the root package's callback types before they
// moved here, field for field: the JSON paygate sends must not change.
type oldPayload struct {
	EventID   string  `json:"eventId"`
	EventType string  `json:"eventType"`
	Action    string  `json:"action"`
	Message   string  `json:"message"`
	Data      oldData `json:"data"`
	PaymentID string  `json:"paymentId"`
	Sequence  int64   `json:"sequence"`
	Timestamp string  `json:"timestamp"`
}

type oldData struct {
	PaymentID       string            `json:"paymentId"`
	SessionID       *string           `json:"sessionId,omitempty"`
	PaymentIntentID string            `json:"paymentIntentId"`
	Amount          int64             `json:"amount"`
	AmountTotal     *int64            `json:"amountTotal,omitempty"`
	AmountRefunded  *int64            `json:"amountRefunded,omitempty"`
	Currency        string            `json:"currency"`
	Status          string            `json:"status"`
	PaymentStatus   *string           `json:"paymentStatus,omitempty"`
	RefundID        *string           `json:"refundId,omitempty"`
	RefundStatus    *string           `json:"refundStatus,omitempty"`
	Metadata        map[string]string `json:"metadata"`
}

func TestPayloadJSONUnchanged(t *testing.T) {
	s, n := func(v string) *string { return &v }, func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		name string
		old  oldPayload
		new  verify.Payload
	}{
		{"payment", oldPayload{EventID: "evt_1", EventType: "payment_intent.succeeded", Action: "payment_succeeded", Message: "Payment succeeded",
			Data:      oldData{PaymentID: "pay_1", PaymentIntentID: "pi_1", Amount: 1999, Currency: "usd", Status: "succeeded", Metadata: map[string]string{"orderId": "1234"}},
			PaymentID: "pay_1", Sequence: 2, Timestamp: "2024-01-31T00:00:00Z"},
			verify.Payload{EventID: "evt_1", EventType: "payment_intent.succeeded", Action: "payment_succeeded", Message: "Payment succeeded",
				Data:      verify.Data{PaymentID: "pay_1", PaymentIntentID: "pi_1", Amount: 1999, Currency: "usd", Status: "succeeded", Metadata: map[string]string{"orderId": "1234"}},
				PaymentID: "pay_1", Sequence: 2, Timestamp: "2024-01-31T00:00:00Z"}},
		{"checkout and refund", oldPayload{Action: "refund_created",
			Data: oldData{PaymentID: "pay_1", SessionID: s("cs_1"), AmountTotal: n(500), AmountRefunded: n(100), Currency: "usd", Status: "partially_refunded",
				PaymentStatus: s("paid"), RefundID: s("re_1"), RefundStatus: s("pending"), Metadata: map[string]string{}}},
			verify.Payload{Action: "refund_created",
				Data: verify.Data{PaymentID: "pay_1", SessionID: s("cs_1"), AmountTotal: n(500), AmountRefunded: n(100), Currency: "usd", Status: "partially_refunded",
					PaymentStatus: s("paid"), RefundID: s("re_1"), RefundStatus: s("pending"), Metadata: map[string]string{}}}},
	} {
		if diff := cmp.Diff(string(mustJSON(tc.old)), string(mustJSON(tc.new))); diff != "" {
			t.Errorf("%s: JSON changed (-old +new):\n%s", tc.name, diff)
		}
	}
}

// The kit compiles the standard library and nothing else.
func TestImportsStandardLibraryOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "github.com/numedapp/paygate/callback/verify").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if got := strings.Fields(string(out)); !cmp.Equal(got, []string{"github.com/numedapp/paygate/callback/verify"}) {
		t.Fatalf("callback/verify depends on more than the standard library: %q", got)
	}
}
