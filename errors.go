package paygate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/stripe/stripe-go/v76"
)

// ErrorCode classifies an *Error. It is the envelope's error.type.
type ErrorCode string

// The error codes of the API contract (API.md §1).
const (
	CodeInvalid        ErrorCode = "invalid_request"
	CodeAuthentication ErrorCode = "authentication"
	CodeNotFound       ErrorCode = "not_found"
	CodeConflict       ErrorCode = "conflict"
	CodeIdempotency    ErrorCode = "idempotency"
	CodeRateLimited    ErrorCode = "rate_limited"
	CodeStripe         ErrorCode = "stripe_error"
	CodeUnavailable    ErrorCode = "unavailable"
	CodeInternal       ErrorCode = "internal"
)

// Sentinel errors to branch on with errors.Is. An *Error matches the
// sentinel of its code, so errors.Is(err, ErrNotFound) works for both.
var (
	ErrNotFound = errors.New("paygate: not found")
	ErrConflict = errors.New("paygate: conflict")
	ErrInvalid  = errors.New("paygate: invalid request")
	// ErrStripeIDTaken is returned by a Store asked to give a payment a
	// Stripe id that already names another payment. It matches ErrConflict.
	ErrStripeIDTaken = fmt.Errorf("%w: a Stripe id already names another payment", ErrConflict)
)

// Error is paygate's error type: a code, a message safe to show to the
// API's caller, the offending request field, and the HTTP status. Anything
// wrapped in Err is for logs only and never reaches a client.
type Error struct {
	Code    ErrorCode
	Message string
	// Param names the offending field in the API's camelCase, dotted for
	// nested fields ("metadata.orderId"). Empty when no single field is at fault.
	Param string
	// Status is the HTTP status; zero means the default for Code.
	Status int
	// Err is the underlying cause, if any.
	Err error
}

func (e *Error) Error() string {
	if e.Param != "" {
		return fmt.Sprintf("paygate: %s: %s (param %s)", e.Code, e.Message, e.Param)
	}
	return fmt.Sprintf("paygate: %s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's code.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Code == CodeNotFound
	case ErrConflict:
		return e.Code == CodeConflict
	case ErrInvalid:
		return e.Code == CodeInvalid
	}
	return false
}

// codeStatus is the one table from error codes to HTTP statuses.
var codeStatus = map[ErrorCode]int{
	CodeInvalid:        http.StatusBadRequest,
	CodeAuthentication: http.StatusUnauthorized,
	CodeNotFound:       http.StatusNotFound,
	CodeConflict:       http.StatusConflict,
	CodeIdempotency:    http.StatusUnprocessableEntity,
	CodeRateLimited:    http.StatusTooManyRequests,
	CodeStripe:         http.StatusBadGateway,
	CodeUnavailable:    http.StatusServiceUnavailable,
	CodeInternal:       http.StatusInternalServerError,
}

// HTTPStatus returns the HTTP status the error is answered with.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	if s, ok := codeStatus[e.Code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// AsError returns err as an *Error fit to show a client: an *Error in err's
// chain as it is, ErrNotFound/ErrConflict as their codes, and anything else
// as a generic internal error (whose details stay in logs).
func AsError(err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, ErrNotFound):
		return &Error{Code: CodeNotFound, Message: "not found", Err: err}
	case errors.Is(err, ErrConflict):
		return &Error{Code: CodeConflict, Message: "conflict", Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: CodeUnavailable, Message: "the request timed out", Err: err}
	case storeUnreachable(err):
		return &Error{Code: CodeUnavailable, Message: "the database is unavailable; retry later", Err: err}
	default:
		return &Error{Code: CodeInternal, Message: "internal error", Err: err}
	}
}

// storeUnreachable reports an error that says the database cannot be
// reached, is restarting or cannot serve now, rather than a bug: a network
// error, a refused or reset connection, or a server error of SQL classes
// 08 (connection exception), 53 (insufficient resources: too many
// connections, disk full), 57 (operator intervention: shutting down,
// starting up, a query canceled by an operator or a statement_timeout), 58030
// (an I/O error) or 55P03 (a lock_timeout). The embedded store gives its
// own such errors (the file locked by another program, the disk full, an
// I/O error) the same codes. Such errors are answered 503 with Retry-After,
// so that Stripe and operators can tell an outage from a defect.
func storeUnreachable(err error) bool {
	var sqlErr interface{ SQLState() string }
	if errors.As(err, &sqlErr) {
		code := sqlErr.SQLState()
		return strings.HasPrefix(code, "08") || strings.HasPrefix(code, "53") || strings.HasPrefix(code, "57") || code == "55P03" || code == "58030"
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}

func invalidParam(param, format string, args ...any) *Error {
	return &Error{Code: CodeInvalid, Param: param, Message: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) *Error {
	return &Error{Code: CodeConflict, Message: fmt.Sprintf(format, args...)}
}

// stripeParams maps Stripe's parameter names to this API's field names, for
// the param of a Stripe refusal.
var stripeParams = []struct{ stripe, ours string }{
	{"unit_amount", "amount"},
	{"amount", "amount"},
	{"currency", "currency"},
	{"success_url", "successUrl"},
	{"after_completion", "successUrl"},
	{"cancel_url", "cancelUrl"},
	{"customer_email", "customerEmail"},
	{"receipt_email", "customerEmail"},
	{"quantity", "quantity"},
	{"description", "description"},
	{"product_data", "productName"},
	{"reason", "reason"},
	{"payment_intent", "paymentIntentId"},
}

func mapStripeParam(p string) string {
	if p == "" {
		return ""
	}
	if i := strings.Index(p, "metadata["); i >= 0 {
		k := strings.TrimSuffix(p[i+len("metadata["):], "]")
		return "metadata." + k
	}
	for _, m := range stripeParams {
		if strings.Contains(p, m.stripe) {
			return m.ours
		}
	}
	return ""
}

// fromStripe turns an error from a Stripe call into an *Error as API.md §2
// says: Stripe's refusals of the request are a 400 with Stripe's message and
// the field, a failure to authenticate with Stripe is a 502 with a generic
// message (the operator's key is wrong), Stripe's rate limit a 429, and
// Stripe unreachable or failing a 502/503. The caller never sees the key.
func fromStripe(err error) *Error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &Error{Code: CodeUnavailable, Message: "the payment provider did not answer in time", Err: err}
	}
	var se *stripe.Error
	if !errors.As(err, &se) {
		return &Error{Code: CodeUnavailable, Message: "the payment provider is unreachable", Err: err}
	}
	switch {
	case se.HTTPStatusCode == http.StatusUnauthorized || se.HTTPStatusCode == http.StatusForbidden:
		return &Error{Code: CodeStripe, Status: http.StatusBadGateway, Message: "the payment provider refused this service's credentials", Err: errStripeAuth}
	case se.HTTPStatusCode == http.StatusTooManyRequests || se.Code == stripe.ErrorCodeRateLimit:
		return &Error{Code: CodeRateLimited, Message: "the payment provider is rate limiting requests; retry later", Err: err}
	case se.Type == stripe.ErrorTypeIdempotency:
		return &Error{Code: CodeConflict, Message: "a conflicting request with the same idempotency key is known to the payment provider", Err: err}
	case se.HTTPStatusCode >= 500 || se.HTTPStatusCode == 0:
		return &Error{Code: CodeStripe, Status: http.StatusBadGateway, Message: "the payment provider failed to process the request", Err: err}
	default:
		msg := se.Msg
		if msg == "" {
			msg = "the payment provider refused the request"
		}
		return &Error{Code: CodeStripe, Status: http.StatusBadRequest, Message: msg, Param: mapStripeParam(se.Param), Err: err}
	}
}

// unknownOutcome is the answer to a creating Stripe call whose outcome is
// unknown (see stripeRefused): a 502, never a 4xx, since a 4xx would be
// stored as the Idempotency-Key's final answer although Stripe may have
// made the object; the merchant retries with the same key, and the retry
// resumes the call with the same Stripe idempotency key.
func unknownOutcome(e *Error) *Error {
	if e.HTTPStatus() >= 500 {
		return e
	}
	return &Error{Code: CodeStripe, Status: http.StatusBadGateway,
		Message: "the outcome at the payment provider is unknown (" + e.Message + "); retry with the same Idempotency-Key", Err: e}
}

// errStripeAuth marks a Stripe authentication failure; health reports
// Stripe as down after one.
var errStripeAuth = errors.New("paygate: stripe authentication failed")

// stripeRefused reports whether Stripe definitely refused a request, so no
// object was created: a 4xx answer, a rate limit (429) included — Stripe
// did not process the request — but not an idempotency error, and not the
// answer to a call stripe-go retried: an earlier attempt (one that timed
// out, say) may have been carried out before the last was refused.
func stripeRefused(err error) bool {
	var se *stripe.Error
	if !errors.As(err, &se) || errors.As(err, new(*retriedCall)) {
		return false
	}
	// A 409 is a request with the same idempotency key still running at
	// Stripe (or an idempotency error): the object may well exist.
	return se.HTTPStatusCode >= 400 && se.HTTPStatusCode < 500 && se.HTTPStatusCode != http.StatusConflict &&
		se.Type != stripe.ErrorTypeIdempotency
}
