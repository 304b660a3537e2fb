package paygate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"path"
	"reflect"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Body limits (API.md §1).
const (
	MaxAPIBodyBytes     = 64 << 10
	MaxWebhookBodyBytes = 1 << 20
)

// Route is one entry of the API's route table.
type Route struct {
	// Pattern is a net/http pattern: "GET /api/payments/{id}".
	Pattern string
	// Public routes need no API key (API.md §1).
	Public  bool
	handler http.HandlerFunc
}

// Routes returns the API's route table: every route Handler serves.
func (g *Gateway) Routes() []Route {
	routes := []Route{
		{Pattern: "GET /api/health", Public: true, handler: g.handleHealth},
		{Pattern: "GET /api/health/live", Public: true, handler: g.handleLive},
		{Pattern: "GET /api/health/ready", Public: true, handler: g.handleReady},
		{Pattern: "GET /api/payments/config", Public: true, handler: g.handleConfig},
		{Pattern: "POST /api/payments/generate-url", handler: g.idempotent(g.handleGenerateURL)},
		{Pattern: "POST /api/payments/payment-intent", handler: g.idempotent(g.handleCreateIntent)},
		{Pattern: "GET /api/payments/payment-intent/{id}", handler: g.handleGetIntent},
		{Pattern: "GET /api/payments/payment-intent/{id}/session", handler: g.handleIntentSession},
		{Pattern: "POST /api/payments/checkout-session", handler: g.idempotent(g.handleCheckout)},
		{Pattern: "POST /api/payments/refund", handler: g.idempotent(g.handleRefund)},
		{Pattern: "GET /api/payments", handler: g.handleListPayments},
		{Pattern: "GET /api/payments/history", handler: g.handleHistory},
		{Pattern: "GET /api/payments/{id}", handler: g.handleGetPayment},
		{Pattern: "POST " + WebhookPath, Public: true, handler: g.handleStripeWebhook},
		{Pattern: "GET /api/webhooks/config", handler: g.handleWebhookConfig},
		{Pattern: "GET /api/webhooks/events", handler: g.handleListEvents},
		{Pattern: "GET /api/webhooks/events/{id}", handler: g.handleGetEvent},
		{Pattern: "GET /api/webhooks/callbacks", handler: g.handleListCallbacks},
		{Pattern: "POST /api/webhooks/callbacks/{id}/retry", handler: g.handleRetryCallback},
		{Pattern: "GET /api/logs/logs", handler: g.handleLogs},
		{Pattern: "GET /api/openapi.json", Public: true, handler: g.handleOpenAPI},
	}
	if !g.cfg.DisableDocs {
		routes = append(routes, Route{Pattern: "GET /docs", Public: true, handler: g.handleDocs})
	}
	return routes
}

// Handler returns the HTTP API of API.md: every route of Routes, with the
// envelope, request ids, body limits, strict JSON and panic recovery.
// Unknown routes are a 404 and wrong methods a 405, in the envelope.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range g.Routes() {
		if rt.Public {
			mux.HandleFunc(rt.Pattern, rt.handler)
		} else {
			mux.HandleFunc(rt.Pattern, g.requireAuth(g.limitRate(rt.handler)))
		}
	}
	if g.metrics != nil {
		mux.Handle("GET /metrics", g.MetricsHandler())
	}
	for p := range postOnly {
		mux.HandleFunc(p, http.NotFound) // never served: see dispatch
	}
	return g.withRequestID(g.observe(g.recoverPanics(dispatch(mux, g))))
}

// postOnly are patterns registered only so that a GET of a POST route whose
// path would match GET /api/payments/{id} (GET /api/payments/refund) is a
// 405, not a 400 about an id: dispatch answers them as unmatched.
var postOnly = map[string]bool{
	"GET /api/payments/generate-url":     true,
	"GET /api/payments/payment-intent":   true,
	"GET /api/payments/checkout-session": true,
	"GET /api/payments/refund":           true,
}

// checkQuery refuses a malformed query string and a parameter given more
// than once (a handler reads the first; a second, invalid one would be
// silently dropped), each a 400 naming it.
func checkQuery(raw string) error {
	if raw == "" {
		return nil // every webhook: nothing to parse
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return invalidParam("query", "the query string is malformed")
	}
	for k, v := range q {
		if len(v) > 1 {
			return invalidParam(k, "%s is given more than once", truncate(k, 40))
		}
	}
	return nil
}

// dispatch serves a request through mux, answering unmatched requests with
// a 404 or a 405 (with Allow) in the envelope instead of mux's plain text.
func dispatch(mux *http.ServeMux, g *Gateway) http.Handler {
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p != "/" && path.Clean(p) != p {
			// mux would answer a redirect to the clean path (a 307 that
			// a client follows with its POST): not a route.
			g.writeError(w, r, &Error{Code: CodeNotFound, Message: "no such route (the path is not in its clean form)"})
			return
		}
		if _, pattern := mux.Handler(r); pattern != "" && !postOnly[pattern] {
			if err := checkQuery(r.URL.RawQuery); err != nil {
				g.writeError(w, r, err)
				return
			}
			mux.ServeHTTP(w, r)
			return
		}
		var allow []string
		for _, m := range methods {
			r2 := r.Clone(r.Context())
			r2.Method = m
			if _, p := mux.Handler(r2); p != "" && !postOnly[p] {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			g.writeError(w, r, &Error{Code: CodeInvalid, Status: http.StatusMethodNotAllowed, Message: "method " + r.Method + " is not allowed here"})
			return
		}
		g.writeError(w, r, &Error{Code: CodeNotFound, Message: "no such route"})
	})
}

// envelope is every response's shape (API.md §1).
type envelope struct {
	Status  bool       `json:"status"`
	Code    int        `json:"code"`
	Message string     `json:"message"`
	Data    any        `json:"data"`
	Error   *errorBody `json:"error,omitempty"`
}

type errorBody struct {
	Type      ErrorCode `json:"type"`
	Param     *string   `json:"param"`
	RequestID string    `json:"requestId"`
}

func writeEnvelope(w http.ResponseWriter, status int, env envelope) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(env); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"status":false,"code":500,"message":"internal error","data":null,"error":{"type":"internal","param":null,"requestId":""}}` + "\n")
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (g *Gateway) writeOK(w http.ResponseWriter, status int, message string, data any) {
	writeEnvelope(w, status, envelope{Status: true, Code: status, Message: message, Data: data})
}

func (g *Gateway) logError(r *http.Request, msg string, err error) {
	g.log.LogAttrs(r.Context(), slog.LevelError, msg, attrErr(err))
}

// writeError answers with err's status and safe message. Errors that are
// not a client's fault (5xx) are logged with their cause; the client gets
// only the generic message.
func (g *Gateway) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := AsError(err)
	status := e.HTTPStatus()
	reqID := RequestIDFrom(r.Context())
	if status >= 500 {
		attrs := []slog.Attr{slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", status)}
		if e.Err != nil {
			attrs = append(attrs, attrErr(e.Err))
		}
		g.log.LogAttrs(r.Context(), slog.LevelError, "paygate: request failed", attrs...)
		fields := map[string]any{"status": status, "type": e.Code}
		if e.Err != nil {
			fields["error"] = truncate(e.Err.Error(), 500)
		}
		g.syslog(r.Context(), LevelError, SourceError, e.Message, fields)
	}
	if status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "5")
	}
	body := &errorBody{Type: e.Code, RequestID: reqID}
	if e.Param != "" {
		body.Param = &e.Param
	}
	writeEnvelope(w, status, envelope{Status: false, Code: status, Message: g.redact(e.Message), Data: nil, Error: body})
}

// readBody reads r's body, at most limit bytes (an *http.MaxBytesError past
// it), into a buffer sized for the declared Content-Length (up to 64 KiB, so
// that a length declared and never sent costs no more than that): one
// allocation for a typical body where io.ReadAll's 512 bytes, doubled, make
// five.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 {
		buf.Grow(int(min(n, limit, 64<<10)) + bytes.MinRead) // ReadFrom wants MinRead free before its last read
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	return buf.Bytes(), err
}

// decodeJSON reads r's body (at most limit bytes) into dst strictly: one
// JSON object, no unknown fields, no trailing data. Its errors name the field.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, dst any) error {
	body, err := readBody(w, r, limit)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &Error{Code: CodeInvalid, Status: http.StatusRequestEntityTooLarge, Param: "body", Message: fmt.Sprintf("request body exceeds %d bytes", limit)}
		}
		return &Error{Code: CodeInvalid, Param: "body", Message: "request body could not be read", Err: err}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return invalidParam("body", "request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalidParam("body", "request body must hold a single JSON object")
	}
	return exactFields(body, dst)
}

// exactFields checks the names of body's top-level fields against dst's
// (a pointer to a struct) exactly. encoding/json matches a name whatever
// its case ("AMOUNT" sets amount) and lets the last of a repeated name
// win: a body that another reader (a proxy, an audit log) takes for a
// refund of 1.00 must not refund 9.00. body is valid JSON (decoded before).
func exactFields(body []byte, dst any) error {
	t := reflect.TypeOf(dst)
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	names := jsonFieldNames(t.Elem())
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		key, _ := tok.(string)
		switch {
		case !names[key]:
			return invalidParam(key, "unknown field %q (field names are case-sensitive)", truncate(key, 40))
		case seen[key]:
			return invalidParam(key, "field %q is given more than once", key)
		}
		seen[key] = true
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil
		}
		if string(value) == "null" {
			// Not "left out": a client that sends null means something,
			// and no field of this API is nullable (openapi.json).
			return invalidParam(key, "%s must not be null; leave the field out instead", key)
		}
	}
	return nil
}

var fieldNames sync.Map // reflect.Type → map[string]bool

// jsonFieldNames returns the JSON names of struct type t's fields, as
// encoding/json names them (embedded structs' fields included).
func jsonFieldNames(t reflect.Type) map[string]bool {
	if m, ok := fieldNames.Load(t); ok {
		return m.(map[string]bool)
	}
	m := map[string]bool{}
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous && f.Tag.Get("json") == "" && f.Type.Kind() == reflect.Struct {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		m[name] = true
	}
	fieldNames.Store(t, m)
	return m
}

var unknownFieldRe = regexp.MustCompile(`^json: unknown field "(.*)"$`)

// jsonError turns encoding/json's errors into a *Error naming the field.
func jsonError(err error) *Error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var pe *Error
	switch {
	case errors.As(err, &pe):
		return pe
	case errors.As(err, &te):
		if te.Field == "" {
			return invalidParam("body", "request body must be a JSON object")
		}
		return invalidParam(te.Field, "%s has the wrong type (got %s)", te.Field, te.Value)
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
		return invalidParam("body", "request body is not valid JSON")
	}
	if m := unknownFieldRe.FindStringSubmatch(err.Error()); m != nil {
		return invalidParam(m[1], "unknown field %q", truncate(m[1], 40))
	}
	return invalidParam("body", "request body is not a valid request")
}

// queryInt parses an optional integer query parameter.
func queryInt(r *http.Request, name string, min int) (int, bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.Atoi(v)
	if errors.Is(err, strconv.ErrRange) {
		return 0, false, invalidParam(name, "%s is out of range: it must be an integer from %d to %d", name, min, math.MaxInt64)
	}
	if err != nil || n < min {
		return 0, false, invalidParam(name, "%s must be an integer of at least %d", name, min)
	}
	return n, true, nil
}

// pageParams reads limit, offset and cursor (API.md §1).
func pageParams(r *http.Request) (PageParams, error) {
	var p PageParams
	limit, ok, err := queryInt(r, "limit", 1)
	if err != nil {
		return p, err
	}
	if ok {
		p.Limit = limit
	}
	if p.Offset, _, err = queryInt(r, "offset", 0); err != nil {
		return p, err
	}
	p.Cursor = r.URL.Query().Get("cursor")
	switch r.URL.Query().Get("total") {
	case "", "exact":
	case "estimate":
		p.EstimateTotal = true
	default:
		return p, invalidParam("total", "total must be exact or estimate")
	}
	return p, nil
}

func queryTime(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, invalidParam(name, "%s must be an RFC 3339 time such as 2024-01-31T00:00:00Z", name)
	}
	// The filters take the zero time for "not given": a bound before the
	// Unix epoch (nothing paygate stores is older) would be ignored.
	if t.Before(time.Unix(0, 0)) {
		return time.Time{}, invalidParam(name, "%s must be 1970-01-01T00:00:00Z or later", name)
	}
	return t.UTC(), nil
}

func (g *Gateway) handleHealth(w http.ResponseWriter, r *http.Request) {
	h, _ := g.Health(r.Context())
	g.writeOK(w, http.StatusOK, "OK", h)
}

func (g *Gateway) handleLive(w http.ResponseWriter, r *http.Request) {
	g.writeOK(w, http.StatusOK, "OK", map[string]string{"status": "alive"})
}

func (g *Gateway) handleReady(w http.ResponseWriter, r *http.Request) {
	h, ready := g.Health(r.Context())
	if ready {
		g.writeOK(w, http.StatusOK, "OK", map[string]string{"status": "ready"})
		return
	}
	writeEnvelope(w, http.StatusServiceUnavailable, envelope{
		Status: false, Code: http.StatusServiceUnavailable, Message: "not ready",
		Data:  map[string]string{"status": "not_ready", "database": h.Checks.Database.Status, "stripe": h.Checks.Stripe.Status},
		Error: &errorBody{Type: CodeUnavailable, RequestID: RequestIDFrom(r.Context())},
	})
}

func (g *Gateway) handleConfig(w http.ResponseWriter, r *http.Request) {
	g.writeOK(w, http.StatusOK, "OK", g.PublicConfig())
}

// create is the generic runner of the creating POST routes: decode strictly,
// run, answer 201 with message.
func create[In, Out any](g *Gateway, w http.ResponseWriter, r *http.Request, message string, run func(context.Context, In) (Out, error)) {
	var in In
	if err := decodeJSON(w, r, MaxAPIBodyBytes, &in); err != nil {
		g.writeError(w, r, err)
		return
	}
	if k := idempotencyKeyFrom(r.Context()); k != "" {
		if s, ok := any(&in).(interface{ setIdempotencyKey(string) }); ok {
			s.setIdempotencyKey(k)
		}
	}
	out, err := run(r.Context(), in)
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	g.writeOK(w, http.StatusCreated, message, out)
}

func (g *Gateway) handleGenerateURL(w http.ResponseWriter, r *http.Request) {
	create(g, w, r, "Payment link created", g.CreatePaymentLink)
}

func (g *Gateway) handleCreateIntent(w http.ResponseWriter, r *http.Request) {
	create(g, w, r, "Payment intent created", g.CreatePaymentIntent)
}

func (g *Gateway) handleCheckout(w http.ResponseWriter, r *http.Request) {
	create(g, w, r, "Checkout session created", g.CreateCheckoutSession)
}

func (g *Gateway) handleRefund(w http.ResponseWriter, r *http.Request) {
	create(g, w, r, "Refund created", g.CreateRefund)
}

// read is the generic runner of the GET routes.
func read[Out any](g *Gateway, w http.ResponseWriter, r *http.Request, run func() (Out, error)) {
	out, err := run() // the query was checked by dispatch
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	g.writeOK(w, http.StatusOK, "OK", out)
}

func (g *Gateway) handleGetIntent(w http.ResponseWriter, r *http.Request) {
	read(g, w, r, func() (*IntentStatus, error) { return g.GetPaymentIntent(r.Context(), r.PathValue("id")) })
}

func (g *Gateway) handleIntentSession(w http.ResponseWriter, r *http.Request) {
	read(g, w, r, func() (*IntentSession, error) { return g.PaymentIntentSession(r.Context(), r.PathValue("id")) })
}

func (g *Gateway) handleGetPayment(w http.ResponseWriter, r *http.Request) {
	read(g, w, r, func() (*PaymentWithHistory, error) { return g.GetPayment(r.Context(), r.PathValue("id")) })
}

func (g *Gateway) handleListPayments(w http.ResponseWriter, r *http.Request) {
	read(g, w, r, func() (*Page[Payment], error) {
		q := r.URL.Query()
		f := PaymentFilter{Status: Status(q.Get("status")), Method: Method(q.Get("method")), CustomerEmail: q.Get("customerEmail")}
		var err error
		if f.PageParams, err = pageParams(r); err != nil {
			return nil, err
		}
		if f.CreatedFrom, err = queryTime(r, "createdFrom"); err != nil {
			return nil, err
		}
		if f.CreatedTo, err = queryTime(r, "createdTo"); err != nil {
			return nil, err
		}
		return g.ListPayments(r.Context(), f)
	})
}

func (g *Gateway) handleHistory(w http.ResponseWriter, r *http.Request) {
	read(g, w, r, func() (*Page[HistoryEntry], error) {
		q := r.URL.Query()
		f := HistoryFilter{PaymentID: q.Get("paymentId"), PaymentIntentID: q.Get("paymentIntentId"), EventType: HistoryType(q.Get("eventType"))}
		var err error
		if f.PageParams, err = pageParams(r); err != nil {
			return nil, err
		}
		return g.ListHistory(r.Context(), f)
	})
}

// WebhookHandler returns a handler for Stripe's webhook requests alone,
// for mounting apart from the authenticated API (it is authenticated by
// Stripe's signature). Handler serves the same route at WebhookPath.
func (g *Gateway) WebhookHandler() http.Handler {
	return g.withRequestID(g.observe(g.recoverPanics(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			g.writeError(w, r, &Error{Code: CodeInvalid, Status: http.StatusMethodNotAllowed, Message: "method " + r.Method + " is not allowed here"})
			return
		}
		g.handleStripeWebhook(w, r)
	}))))
}

// handleStripeWebhook reads the raw body once (1 MiB limit) and hands the
// exact bytes to HandleWebhook: the signature covers them.
func (g *Gateway) handleStripeWebhook(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, MaxWebhookBodyBytes)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			g.log.LogAttrs(r.Context(), slog.LevelWarn, "paygate: webhook refused", slog.String("reason", "body over 1 MiB"))
			g.webhookLog(r.Context(), LevelWarn, "webhook refused: body over 1 MiB", map[string]any{"reason": "body over 1 MiB"})
			g.metrics.webhook("refused", "body too large")
			g.writeError(w, r, &Error{Code: CodeInvalid, Status: http.StatusRequestEntityTooLarge, Param: "body", Message: "webhook body exceeds 1 MiB"})
			return
		}
		g.writeError(w, r, &Error{Code: CodeInvalid, Param: "body", Message: "request body could not be read", Err: err})
		return
	}
	res, err := g.HandleWebhook(r.Context(), body, r.Header.Get("Stripe-Signature"))
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	g.writeOK(w, http.StatusOK, "Webhook received", res)
}

func (g *Gateway) handleWebhookConfig(w http.ResponseWriter, r *http.Request) {
	g.writeOK(w, http.StatusOK, "OK", g.WebhookConfig())
}

func (g *Gateway) handleListEvents(w http.ResponseWriter, r *http.Request) {
	read(g, w, r, func() (*Page[WebhookEvent], error) {
		q := r.URL.Query()
		f := WebhookEventFilter{Type: q.Get("type"), Status: EventStatus(q.Get("status"))}
		var err error
		if f.PageParams, err = pageParams(r); err != nil {
			return nil, err
		}
		return g.ListWebhookEvents(r.Context(), f)
	})
}

func (g *Gateway) handleGetEvent(w http.ResponseWriter, r *http.Request) {
	read(g, w, r, func() (*WebhookEvent, error) { return g.GetWebhookEvent(r.Context(), r.PathValue("id")) })
}

func (g *Gateway) handleListCallbacks(w http.ResponseWriter, r *http.Request) {
	read(g, w, r, func() (*Page[CallbackAttempt], error) {
		q := r.URL.Query()
		f := CallbackFilter{WebhookEventID: q.Get("webhookEventId"), PaymentID: q.Get("paymentId")}
		switch s := q.Get("success"); s {
		case "":
		case "true", "false":
			b := s == "true"
			f.Success = &b
		default:
			return nil, invalidParam("success", "success must be true or false")
		}
		var err error
		if f.PageParams, err = pageParams(r); err != nil {
			return nil, err
		}
		return g.ListCallbacks(r.Context(), f)
	})
}

func (g *Gateway) handleRetryCallback(w http.ResponseWriter, r *http.Request) {
	c, err := g.RetryCallback(r.Context(), r.PathValue("id"))
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	g.writeOK(w, http.StatusAccepted, "Callback queued for retry", c)
}

func (g *Gateway) handleLogs(w http.ResponseWriter, r *http.Request) {
	read(g, w, r, func() (*Page[SystemLog], error) {
		q := r.URL.Query()
		f := SystemLogFilter{Level: q.Get("level"), Source: q.Get("source"), RequestID: q.Get("requestId")}
		var err error
		if f.PageParams, err = pageParams(r); err != nil {
			return nil, err
		}
		if f.From, err = queryTime(r, "from"); err != nil {
			return nil, err
		}
		if f.To, err = queryTime(r, "to"); err != nil {
			return nil, err
		}
		return g.ListSystemLogs(r.Context(), f)
	})
}

type ctxKey int

const requestIDKey ctxKey = iota

// RequestIDFrom returns the request id Handler gave the request, or "".
func RequestIDFrom(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey).(string)
	return s
}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// withRequestID accepts a well-formed X-Request-Id or makes one, puts it in
// the context and echoes it in the response.
func (g *Gateway) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !requestIDPattern.MatchString(id) {
			id = newID("req")
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

// recoverPanics turns a panic in a handler into a logged 500; the server
// keeps serving.
func (g *Gateway) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				g.log.LogAttrs(r.Context(), slog.LevelError, "paygate: panic in handler",
					slog.String("panic", fmt.Sprint(v)), slog.String("stack", string(debug.Stack())))
				g.writeError(w, r, &Error{Code: CodeInternal, Message: "internal error"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}
