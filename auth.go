package paygate

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strings"
)

// AuthFunc authenticates an API request. It returns an identifier of the
// caller (never the credential itself; idempotency keys are scoped by it)
// and ok=false when the request must be refused with a 401.
type AuthFunc func(r *http.Request) (caller string, ok bool)

// MinAPIKeyLen is the shortest API key BearerKeys accepts.
const MinAPIKeyLen = 16

// BearerKeys returns an AuthFunc that accepts "Authorization: Bearer <key>"
// for any of keys (several keys allow rotation). Keys are compared in
// constant time, by their SHA-256, against every configured key. The caller
// identifier is "key_" and 12 hex digits of the key's SHA-256. It returns an
// error when no key is given or a key is shorter than MinAPIKeyLen or
// contains white space.
func BearerKeys(keys ...string) (AuthFunc, error) {
	if len(keys) == 0 {
		return nil, errors.New("paygate: BearerKeys needs at least one key")
	}
	sums := make([][32]byte, len(keys))
	for i, k := range keys {
		if len(k) < MinAPIKeyLen || strings.ContainsAny(k, " \t\r\n") {
			return nil, errors.New("paygate: API keys must be at least 16 characters without white space")
		}
		sums[i] = sha256.Sum256([]byte(k))
	}
	return func(r *http.Request) (string, bool) {
		h := r.Header.Get("Authorization")
		scheme, token, found := strings.Cut(h, " ")
		if !found || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return "", false
		}
		sum := sha256.Sum256([]byte(token))
		match := 0
		var who [32]byte
		for _, s := range sums {
			eq := subtle.ConstantTimeCompare(sum[:], s[:])
			match |= eq
			subtle.ConstantTimeCopy(eq, who[:], s[:])
		}
		if match != 1 {
			return "", false
		}
		return "key_" + hex.EncodeToString(who[:6]), true
	}, nil
}

type callerKey struct{}

// CallerFrom returns the authenticated caller of the request's context, or "".
func CallerFrom(r *http.Request) string {
	s, _ := r.Context().Value(callerKey{}).(string)
	return s
}

// authReason says why a request was refused, for the log (never the key).
func authReason(r *http.Request) string {
	h := r.Header.Get("Authorization")
	scheme, token, found := strings.Cut(h, " ")
	switch {
	case h == "":
		return "missing Authorization header"
	case !found || token == "":
		return "malformed Authorization header"
	case !strings.EqualFold(scheme, "Bearer"):
		return "unsupported scheme"
	default:
		return "unknown API key"
	}
}

// requireAuth refuses requests that g's AuthFunc does not accept.
func (g *Gateway) requireAuth(next http.HandlerFunc) http.HandlerFunc {
	if g.cfg.Auth == nil {
		return next // InsecureNoAuth: every request is the same caller, ""
	}
	return func(w http.ResponseWriter, r *http.Request) {
		caller, ok := g.cfg.Auth(r)
		if !ok {
			g.log.LogAttrs(r.Context(), slog.LevelWarn, "paygate: unauthenticated request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path), slog.String("reason", authReason(r)))
			w.Header().Set("WWW-Authenticate", `Bearer realm="paygate"`)
			g.writeError(w, r, &Error{Code: CodeAuthentication, Message: "a valid API key is required: Authorization: Bearer <key>"})
			return
		}
		if rm, ok := r.Context().Value(reqMetaKey{}).(*reqMeta); ok {
			rm.caller = caller // for the request's system log row
		}
		next(w, r.WithContext(contextWithCaller(r, caller)))
	}
}

func contextWithCaller(r *http.Request, caller string) context.Context {
	return context.WithValue(r.Context(), callerKey{}, caller)
}
