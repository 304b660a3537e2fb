// Package verify is the merchant's side of paygate's callbacks: [Verify]
// checks a callback's Standard Webhooks signature, [Payload] is its body,
// and the Action constants name what happened. It depends on the standard
// library only, so a merchant's receiver compiles nothing else of paygate.
//
//	body, _ := io.ReadAll(r.Body)
//	p, err := verify.Parse(secret, r.Header, body)
//	if err != nil {
//		http.Error(w, "bad signature", http.StatusUnauthorized)
//		return
//	}
//	switch p.Action {
//	case verify.ActionPaymentSucceeded:
//		// fulfil order p.Data.Metadata["orderId"]
//	}
//
// Any Standard Webhooks library (https://www.standardwebhooks.com) verifies
// the same signatures.
package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The Standard Webhooks headers every callback carries.
const (
	HeaderID        = "webhook-id"        // the callback's id (cb_…), the same on every retry
	HeaderTimestamp = "webhook-timestamp" // Unix seconds of this attempt
	HeaderSignature = "webhook-signature" // "v1,<base64 HMAC-SHA256>", space-separated during a rotation
)

// SecretPrefix starts every Standard Webhooks secret; the rest is base64.
const SecretPrefix = "whsec_"

// MinSecretBytes is the shortest signing key accepted (the specification
// recommends 24 to 64 bytes).
const MinSecretBytes = 24

// DefaultTolerance is how far a callback's timestamp may be from the
// receiver's clock, in either direction, for Verify.
const DefaultTolerance = 5 * time.Minute

// Errors returned by Verify, VerifyAt, Parse and ParseSecret.
var (
	ErrBadSecret        = errors.New("callback: secret must be whsec_ followed by base64 of at least 24 bytes")
	ErrMissingHeaders   = errors.New("callback: webhook-id, webhook-timestamp and webhook-signature headers are required")
	ErrBadTimestamp     = errors.New("callback: webhook-timestamp is not a Unix time")
	ErrTimestampTooOld  = errors.New("callback: webhook-timestamp is too old")
	ErrTimestampFuture  = errors.New("callback: webhook-timestamp is too far in the future")
	ErrNoMatchSignature = errors.New("callback: no signature matches")
)

// ParseSecret decodes a "whsec_<base64>" secret into its key. It returns
// ErrBadSecret for an empty, malformed or short secret.
func ParseSecret(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok || b64 == "" {
		return nil, ErrBadSecret
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) < MinSecretBytes {
		return nil, ErrBadSecret
	}
	return key, nil
}

// Signature returns one v1 signature, "v1,<base64 HMAC-SHA256 of
// id.timestamp.body>", made with key (from ParseSecret). paygate signs its
// callbacks with it; receivers need only Verify.
func Signature(key []byte, id string, ts time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, id, ts.Unix(), body))
}

func mac(key []byte, id string, ts int64, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.", id, ts)
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a callback: the raw body as received, the request's
// headers, and the secret (whsec_…) shared with paygate. The timestamp must
// be within DefaultTolerance of now. It returns nil when one of the v1
// signatures matches, and one of the Err values otherwise.
func Verify(secret string, h http.Header, body []byte) error {
	return VerifyAt(secret, h, body, time.Now(), DefaultTolerance)
}

// VerifyAt is Verify with an explicit clock and tolerance.
func VerifyAt(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := ParseSecret(secret)
	if err != nil {
		return err
	}
	id, tsText, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsText == "" || sigs == "" {
		return ErrMissingHeaders
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return ErrBadTimestamp
	}
	switch d := now.Sub(time.Unix(ts, 0)); {
	case d > tolerance:
		return ErrTimestampTooOld
	case d < -tolerance:
		return ErrTimestampFuture
	}
	want := mac(key, id, ts, body)
	for _, sig := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrNoMatchSignature
}

// Parse verifies a callback (as Verify does) and decodes its body. It
// returns the Verify error, or the JSON error of a body that is not a
// Payload.
func Parse(secret string, h http.Header, body []byte) (*Payload, error) {
	if err := Verify(secret, h, body); err != nil {
		return nil, err
	}
	var p Payload
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("callback: payload: %w", err)
	}
	return &p, nil
}
