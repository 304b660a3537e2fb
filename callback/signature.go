// Package callback delivers paygate's callbacks to the merchant's system:
// an outbox (a [Queue]; paygate's Store), claimed by workers with leases,
// sent outside any transaction, signed per the Standard Webhooks
// specification, retried on a schedule that outlasts a long weekend, every
// attempt logged. paygate.Gateway.Run runs an [Engine]; run one yourself
// only to deliver outside a Gateway.
//
// Merchants verify callbacks with [Verify] (Go) or any Standard Webhooks
// library (https://www.standardwebhooks.com). The package imports only the
// standard library.
package callback

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The Standard Webhooks headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// secretPrefix starts every Standard Webhooks secret; the rest is base64.
const secretPrefix = "whsec_"

// MinSecretBytes is the shortest signing key accepted (the specification
// recommends 24 to 64 bytes).
const MinSecretBytes = 24

// DefaultTolerance is how far a callback's timestamp may be from the
// receiver's clock, in either direction, for Verify.
const DefaultTolerance = 5 * time.Minute

// Errors returned by Verify and ParseSecret.
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
	b64, ok := strings.CutPrefix(secret, secretPrefix)
	if !ok || b64 == "" {
		return nil, ErrBadSecret
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) < MinSecretBytes {
		return nil, ErrBadSecret
	}
	return key, nil
}

// Signer signs callbacks with one or more secrets (several during a
// rotation: the receiver accepts any).
type Signer struct {
	keys [][]byte
}

// NewSigner returns a Signer for the secrets ("whsec_…"), or ErrBadSecret.
func NewSigner(secrets ...string) (*Signer, error) {
	if len(secrets) == 0 {
		return nil, ErrBadSecret
	}
	s := &Signer{}
	for _, sec := range secrets {
		k, err := ParseSecret(sec)
		if err != nil {
			return nil, err
		}
		s.keys = append(s.keys, k)
	}
	return s, nil
}

// Sign returns the webhook-signature header value for a message:
// "v1,<base64 HMAC-SHA256 of id.timestamp.body>", one per secret,
// separated by spaces.
func (s *Signer) Sign(id string, ts time.Time, body []byte) string {
	parts := make([]string, len(s.keys))
	for i, k := range s.keys {
		parts[i] = "v1," + base64.StdEncoding.EncodeToString(mac(k, id, ts.Unix(), body))
	}
	return strings.Join(parts, " ")
}

// Headers sets the three Standard Webhooks headers on h.
func (s *Signer) Headers(h http.Header, id string, ts time.Time, body []byte) {
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, s.Sign(id, ts, body))
}

func mac(key []byte, id string, ts int64, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.", id, ts)
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a callback the way a merchant's Go code should: the raw body
// as received, the request's headers, and the secret (whsec_…) it shares
// with paygate. The timestamp must be within DefaultTolerance of now. It
// returns nil when one of the v1 signatures matches.
//
//	body, _ := io.ReadAll(r.Body)
//	if err := callback.Verify(secret, r.Header, body); err != nil {
//		http.Error(w, "bad signature", http.StatusBadRequest)
//		return
//	}
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
