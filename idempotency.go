package paygate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Idempotency settings (API.md §1).
const (
	// IdempotencyTTL is how long a key is remembered.
	IdempotencyTTL = 24 * time.Hour
	// idempotencyStale is when a request still "in flight" is taken to have
	// died with its process; a retry may then take it over.
	idempotencyStale  = 2 * time.Minute
	maxIdempotencyKey = 255
)

// IdempotencyRecord is a stored Idempotency-Key.
type IdempotencyRecord struct {
	// Generation is when the key was first used (in this TTL period); the
	// ids of what the request creates derive from the key and it.
	Generation     time.Time
	RequestHash    []byte
	InFlight       bool
	ResponseStatus int
	ResponseBody   []byte
}

// idempotencyStore is the part of Store for Idempotency-Key records.
type idempotencyStore interface {
	// BeginIdempotent records a key as in flight and reports started=true
	// with the record's generation, or returns the record already there.
	// It takes over an expired record (a new generation), and, keeping the
	// generation, a released one or a stale in-flight one of the same request.
	BeginIdempotent(ctx context.Context, scope, key string, hash []byte, now, expires, staleBefore time.Time) (rec *IdempotencyRecord, started bool, err error)
	// FinishIdempotent stores the response of a key's request.
	FinishIdempotent(ctx context.Context, scope, key string, status int, body []byte) error
	// ReleaseIdempotent marks an in-flight key released: the same request
	// may be retried (and resumes the same generation).
	ReleaseIdempotent(ctx context.Context, scope, key string) error
	// PurgeIdempotent deletes expired keys and returns how many.
	PurgeIdempotent(ctx context.Context, now time.Time) (int64, error)
}

type idemCtxKey struct{}

// idempotent wraps a creating POST route with Idempotency-Key handling:
// the first request runs and its response is stored with a hash of the
// request; a retry with the same body replays it (Idempotent-Replayed:
// true), with another body is a 422, while the first is running a 409. A
// 5xx is not stored: the key is released so the client can retry, and the
// retry resumes the same payment or refund (their ids derive from the key
// and its generation), so Stripe sees the same idempotency keys.
func (g *Gateway) idempotent(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		if key == "" {
			next(w, r)
			return
		}
		if len(key) > maxIdempotencyKey || !printableASCII(key) {
			g.writeError(w, r, invalidParam("Idempotency-Key", "Idempotency-Key must be 1 to %d printable ASCII characters", maxIdempotencyKey))
			return
		}
		body, err := readBody(w, r, MaxAPIBodyBytes)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				g.writeError(w, r, &Error{Code: CodeInvalid, Status: http.StatusRequestEntityTooLarge, Param: "body", Message: "request body exceeds 65536 bytes"})
				return
			}
			g.writeError(w, r, invalidParam("body", "request body could not be read"))
			return
		}
		sum := sha256.Sum256([]byte(r.Method + " " + r.URL.Path + "\n" + string(body)))
		scope := CallerFrom(r)
		now := g.now()
		rec, started, err := g.store.BeginIdempotent(r.Context(), scope, key, sum[:], now, now.Add(IdempotencyTTL), now.Add(-idempotencyStale))
		if err != nil {
			g.writeError(w, r, err)
			return
		}
		if !started {
			switch {
			case !bytes.Equal(rec.RequestHash, sum[:]):
				g.writeError(w, r, &Error{Code: CodeIdempotency, Param: "Idempotency-Key", Message: "this Idempotency-Key was already used with a different request"})
			case rec.InFlight:
				g.writeError(w, r, &Error{Code: CodeConflict, Param: "Idempotency-Key", Message: "a request with this Idempotency-Key is still in progress"})
			default:
				body, err := g.restoreSecrets(r.Context(), rec.ResponseBody)
				if err != nil {
					g.writeError(w, r, err)
					return
				}
				h := w.Header()
				h.Set("Content-Type", "application/json; charset=utf-8")
				h.Set("Idempotent-Replayed", "true")
				w.WriteHeader(rec.ResponseStatus)
				_, _ = w.Write(body)
			}
			return
		}

		r.Body = io.NopCloser(bytes.NewReader(body))
		gen := strconv.FormatInt(rec.Generation.UnixMicro(), 10)
		ctx := context.WithValue(r.Context(), idemCtxKey{}, scope+"\x00"+key+"\x00"+gen)
		rw := &bufferedWriter{header: w.Header()}
		next(rw, r.WithContext(ctx))
		status := rw.status
		if status == 0 {
			status = http.StatusOK
		}
		bg := context.WithoutCancel(r.Context())
		if status >= 500 || status == http.StatusTooManyRequests {
			// Not executed (a rate limit, ours or Stripe's) or not
			// finished: a retry under the same key runs again.
			err = g.store.ReleaseIdempotent(bg, scope, key)
		} else {
			err = g.store.FinishIdempotent(bg, scope, key, status, withoutSecrets(rw.buf.Bytes()))
		}
		if err != nil {
			g.logError(r, "paygate: storing the idempotent response failed", err)
		}
		w.WriteHeader(status)
		_, _ = w.Write(rw.buf.Bytes())
	}
}

// A PaymentIntent's client secret (the payment-intent route's
// data.clientSecret) is never stored (API.md §1): a stored response keeps
// the field empty, and a replay fetches the secret from Stripe again. Only
// that field is touched, found by the JSON's structure: a caller's metadata
// may have a key of the same name, and a replay must show it as it was.

// withoutSecrets is a response body as it may be stored.
func withoutSecrets(body []byte) []byte {
	start, end, ok := dataField(body, "clientSecret")
	if !ok || end-start <= len(`:""`) {
		return body
	}
	return slices.Concat(body[:start], []byte(`:""`), body[end:])
}

// restoreSecrets puts the client secret back into a stored response body
// that had one, fetching it from Stripe.
func (g *Gateway) restoreSecrets(ctx context.Context, body []byte) ([]byte, error) {
	start, end, ok := dataField(body, "clientSecret")
	if !ok || string(bytes.TrimSpace(body[start:end])) != `:""` {
		return body, nil
	}
	var env struct {
		Data struct {
			PaymentIntentID string `json:"paymentIntentId"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Data.PaymentIntentID == "" {
		return body, nil
	}
	_, pi, err := g.fetchIntent(ctx, env.Data.PaymentIntentID)
	if err != nil {
		return nil, err
	}
	secret, _ := json.Marshal(pi.ClientSecret)
	return slices.Concat(body[:start], []byte(":"), secret, body[end:]), nil
}

// dataField finds the string value of data.<name> in a response envelope:
// body[start:end] is the colon after the field's name and its value.
func dataField(body []byte, name string) (start, end int, ok bool) {
	type frame struct {
		obj, key bool   // an object, expecting a key next
		name     string // the object's current key
	}
	var stack []frame
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		off := int(dec.InputOffset())
		tok, err := dec.Token()
		if err != nil {
			return 0, 0, false
		}
		top := len(stack) - 1
		if name, isKey := tok.(string); isKey && top >= 0 && stack[top].obj && stack[top].key {
			stack[top].key, stack[top].name = false, name
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			stack = append(stack, frame{obj: tok == json.Delim('{'), key: tok == json.Delim('{')})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:top]
			top--
		default:
			if _, isString := tok.(string); isString && len(stack) == 2 && stack[0].name == "data" && stack[1].obj && stack[1].name == name {
				return off, int(dec.InputOffset()), true
			}
		}
		if top >= 0 && stack[top].obj {
			stack[top].key = true
		}
		if len(stack) == 0 {
			return 0, 0, false
		}
	}
}

// idempotencyKeyFrom returns the scoped Idempotency-Key of the request, or "".
func idempotencyKeyFrom(ctx context.Context) string {
	s, _ := ctx.Value(idemCtxKey{}).(string)
	return s
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// bufferedWriter holds a response until it is stored.
type bufferedWriter struct {
	header http.Header
	status int
	buf    bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }

func (b *bufferedWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.buf.Write(p)
}
