// Package callback delivers paygate's callbacks to the merchant's system:
// an outbox (a [Queue]; paygate's Store), claimed by workers with leases,
// sent outside any transaction, signed per the Standard Webhooks
// specification, retried on a schedule that outlasts a long weekend, every
// attempt logged. paygate.Gateway.Run runs an [Engine]; run one yourself
// only to deliver outside a Gateway.
//
// Merchants verify callbacks with the package
// [github.com/numedapp/paygate/callback/verify] (Go; Verify, Parse, Payload)
// or any Standard Webhooks library (https://www.standardwebhooks.com). This
// package imports only the standard library and callback/verify (which
// imports only the standard library).
package callback

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/numedapp/paygate/callback/verify"
)

// The Standard Webhooks headers.
const (
	HeaderID        = verify.HeaderID
	HeaderTimestamp = verify.HeaderTimestamp
	HeaderSignature = verify.HeaderSignature
)

// MinSecretBytes is the shortest signing key accepted (the specification
// recommends 24 to 64 bytes).
const MinSecretBytes = verify.MinSecretBytes

// DefaultTolerance is how far a callback's timestamp may be from the
// receiver's clock, in either direction, for Verify.
const DefaultTolerance = verify.DefaultTolerance

// Errors returned by Verify and ParseSecret: the verify package's, so that
// errors.Is works across both.
var (
	ErrBadSecret        = verify.ErrBadSecret
	ErrMissingHeaders   = verify.ErrMissingHeaders
	ErrBadTimestamp     = verify.ErrBadTimestamp
	ErrTimestampTooOld  = verify.ErrTimestampTooOld
	ErrTimestampFuture  = verify.ErrTimestampFuture
	ErrNoMatchSignature = verify.ErrNoMatchSignature
)

// ParseSecret decodes a "whsec_<base64>" secret into its key. It returns
// ErrBadSecret for an empty, malformed or short secret.
func ParseSecret(secret string) ([]byte, error) { return verify.ParseSecret(secret) }

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
		parts[i] = verify.Signature(k, id, ts, body)
	}
	return strings.Join(parts, " ")
}

// Headers sets the three Standard Webhooks headers on h.
func (s *Signer) Headers(h http.Header, id string, ts time.Time, body []byte) {
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, s.Sign(id, ts, body))
}

// Verify checks a callback the way a merchant's Go code should; it is
// [verify.Verify], which merchants should import instead: that package
// depends on the standard library only.
func Verify(secret string, h http.Header, body []byte) error {
	return verify.Verify(secret, h, body)
}

// VerifyAt is Verify with an explicit clock and tolerance ([verify.VerifyAt]).
func VerifyAt(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	return verify.VerifyAt(secret, h, body, now, tolerance)
}

// Payload is a callback's body ([verify.Payload]).
type Payload = verify.Payload

// Data is a callback's data ([verify.Data]).
type Data = verify.Data
