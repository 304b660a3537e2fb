package callback_test

import (
	"net/http"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/numedapp/paygate/callback"
)

// The specification's published test vector.
const (
	vecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecTS     = 1614265330
	vecBody   = `{"test": 2432232314}`
	vecSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignSpecVector(t *testing.T) {
	s, err := callback.NewSigner(vecSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Sign(vecID, time.Unix(vecTS, 0), []byte(vecBody)); got != vecSig {
		t.Fatalf("Sign = %q, want %q", got, vecSig)
	}
	h := http.Header{}
	s.Headers(h, vecID, time.Unix(vecTS, 0), []byte(vecBody))
	if err := callback.VerifyAt(vecSecret, h, []byte(vecBody), time.Unix(vecTS+10, 0), callback.DefaultTolerance); err != nil {
		t.Fatalf("VerifyAt(vector) = %v", err)
	}
}

// Our signatures verify with the reference library, and its with our Verify.
func TestCrossCheckReferenceLibrary(t *testing.T) {
	secret := "whsec_" + "c2VjcmV0LWtleS1mb3ItcGF5Z2F0ZS10ZXN0cy0xMjM0NTY="
	body := []byte(`{"eventId":"evt_1","eventType":"payment_intent.succeeded","action":"payment_succeeded"}`)
	now := time.Now()

	ours, err := callback.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	ours.Headers(h, "cb_123", now, body)
	ref, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := ref.Verify(body, h); err != nil {
		t.Fatalf("reference library rejects our signature: %v", err)
	}

	refSig, err := ref.Sign("cb_456", now, body)
	if err != nil {
		t.Fatal(err)
	}
	h2 := http.Header{}
	h2.Set("webhook-id", "cb_456")
	h2.Set("webhook-timestamp", h.Get("webhook-timestamp"))
	h2.Set("webhook-signature", refSig)
	if err := callback.Verify(secret, h2, body); err != nil {
		t.Fatalf("our Verify rejects the reference signature: %v", err)
	}
}

func TestVerifyRefusals(t *testing.T) {
	secret := "whsec_" + "c2VjcmV0LWtleS1mb3ItcGF5Z2F0ZS10ZXN0cy0xMjM0NTY="
	other := "whsec_" + "b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXktMDAwMDA="
	body := []byte(`{"a":1}`)
	now := time.Unix(1_700_000_000, 0)
	sign := func(sec string, at time.Time) http.Header {
		s, _ := callback.NewSigner(sec)
		h := http.Header{}
		s.Headers(h, "cb_1", at, body)
		return h
	}
	rotating, _ := callback.NewSigner(other, secret)
	rot := http.Header{}
	rotating.Headers(rot, "cb_1", now, body)

	for _, tc := range []struct {
		name string
		h    http.Header
		body []byte
		want error
	}{
		{"valid", sign(secret, now), body, nil},
		{"rotation: second signature matches", rot, body, nil},
		{"other secret", sign(other, now), body, callback.ErrNoMatchSignature},
		{"body changed", sign(secret, now), []byte(`{"a":2}`), callback.ErrNoMatchSignature},
		{"too old", sign(secret, now.Add(-6*time.Minute)), body, callback.ErrTimestampTooOld},
		{"future", sign(secret, now.Add(6*time.Minute)), body, callback.ErrTimestampFuture},
		{"no headers", http.Header{}, body, callback.ErrMissingHeaders},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := callback.VerifyAt(secret, tc.h, tc.body, now, callback.DefaultTolerance); err != tc.want {
				t.Fatalf("VerifyAt = %v, want %v", err, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "whsec_", "secret", "whsec_c2hvcnQ=", "whsec_!!!notbase64!!!"} {
		if _, err := callback.NewSigner(bad); err != callback.ErrBadSecret {
			t.Errorf("NewSigner(%q) = %v, want ErrBadSecret", bad, err)
		}
	}
}
