package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Error is a Stripe error as the sandbox answers it: Stripe's error object
// plus the HTTP status. Control methods return it too (a *Error with Type
// "card_error" and a DeclineCode for a decline), so tests can branch with
// errors.As.
type Error struct {
	Status        int            // HTTP status: 400, 401, 402, 404, 429, 500
	Type          string         // invalid_request_error, card_error, idempotency_error, api_error
	Code          string         // e.g. resource_missing, card_declined, amount_too_large
	DeclineCode   string         // for card_error: generic_decline, insufficient_funds
	Message       string         // for people
	Param         string         // the parameter at fault, if one is
	PaymentIntent map[string]any // for a decline: the PaymentIntent as it is now
	Charge        string         // for a decline: the failed charge
}

// Error returns "type: message".
func (e *Error) Error() string { return e.Type + ": " + e.Message }

func (e *Error) body() obj {
	m := obj{"type": e.Type, "message": e.Message}
	if e.Code != "" {
		m["code"] = e.Code
		m["doc_url"] = "https://stripe.com/docs/error-codes/" + strings.ReplaceAll(e.Code, "_", "-")
	}
	if e.DeclineCode != "" {
		m["decline_code"] = e.DeclineCode
	}
	if e.Param != "" {
		m["param"] = e.Param
	}
	if e.Charge != "" {
		m["charge"] = e.Charge
	}
	if e.PaymentIntent != nil {
		m["payment_intent"] = e.PaymentIntent
	}
	return obj{"error": m}
}

func notFound(typ, param, id string) *Error {
	return &Error{Status: 404, Type: "invalid_request_error", Code: "resource_missing", Param: param,
		Message: fmt.Sprintf("No such %s: '%s'", typ, id)}
}

func invalid(param, msg string) *Error {
	return &Error{Status: 400, Type: "invalid_request_error", Param: param, Message: msg}
}

func stateErr(msg string) *Error {
	return &Error{Status: 400, Type: "invalid_request_error", Code: "payment_intent_unexpected_state", Message: msg}
}

// idemEntry is a remembered answer to an idempotent request.
type idemEntry struct {
	reqID  string // the request that made the answer
	route  string
	params string
	status int
	body   []byte
}

// apiFunc handles one API call with the sandbox locked. It returns the
// object to answer with (rendered and expanded by the caller).
type apiFunc func(r *http.Request, f form) (obj, *Error)

// Handler returns the sandbox's whole HTTP surface: the Stripe API under
// /v1/, the hosted pages, /sandbox.js, and the control API under
// /_sandbox/.
func (s *Sandbox) Handler() http.Handler {
	mux := http.NewServeMux()
	api := func(pattern string, h apiFunc) { mux.Handle(pattern, s.apiHandler(h)) }
	api("POST /v1/products", s.createProduct)
	api("GET /v1/products/{id}", s.retrieve("product", "id"))
	api("POST /v1/prices", s.createPrice)
	api("GET /v1/prices/{id}", s.retrieve("price", "id"))
	api("POST /v1/payment_links", s.createPaymentLink)
	api("GET /v1/payment_links/{id}", s.retrieve("payment_link", "id"))
	api("POST /v1/payment_links/{id}", s.updatePaymentLink)
	api("POST /v1/checkout/sessions", s.createSession)
	api("GET /v1/checkout/sessions", s.listSessions)
	api("GET /v1/checkout/sessions/{id}", s.retrieve("checkout.session", "session"))
	api("POST /v1/checkout/sessions/{id}/expire", s.apiExpireSession)
	api("GET /v1/checkout/sessions/{id}/line_items", s.listLineItems("checkout.session", "session"))
	api("GET /v1/payment_links/{id}/line_items", s.listLineItems("payment_link", "payment_link"))
	api("POST /v1/payment_intents", s.createIntent)
	api("GET /v1/payment_intents", s.listOf("payment_intent", nil))
	api("GET /v1/payment_intents/{id}", s.retrieve("payment_intent", "intent"))
	api("POST /v1/payment_intents/{id}", s.updateIntent)
	api("POST /v1/payment_intents/{id}/confirm", s.apiConfirmIntent)
	api("POST /v1/payment_intents/{id}/cancel", s.apiCancelIntent)
	api("GET /v1/charges", s.listOf("charge", []string{"payment_intent"}))
	api("GET /v1/charges/{id}", s.retrieve("charge", "charge"))
	api("POST /v1/refunds", s.apiCreateRefund)
	api("GET /v1/refunds", s.listOf("refund", []string{"payment_intent", "charge"}))
	api("GET /v1/refunds/{id}", s.retrieve("refund", "refund"))
	api("GET /v1/disputes", s.listOf("dispute", []string{"payment_intent", "charge"}))
	api("GET /v1/disputes/{id}", s.retrieve("dispute", "dispute"))
	api("GET /v1/events", s.listEvents)
	api("GET /v1/events/{id}", s.retrieveEvent)
	api("GET /v1/webhook_endpoints", s.listWebhookEndpoints)
	api("GET /v1/webhook_endpoints/{id}", s.retrieveWebhookEndpoint)
	mux.Handle("/v1/", s.apiHandler(func(r *http.Request, f form) (obj, *Error) {
		return nil, &Error{Status: 404, Type: "invalid_request_error",
			Message: fmt.Sprintf("Unrecognized request URL (%s: %s). The sandbox implements only the parts of Stripe's API paygate uses.", r.Method, r.URL.Path)}
	}))
	s.pageRoutes(mux)
	s.controlRoutes(mux)
	return sandboxHeader(mux)
}

// sandboxHeader marks every response as the sandbox's.
func sandboxHeader(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Sandbox", "paygate")
		next.ServeHTTP(w, r)
	})
}

func (s *Sandbox) apiHandler(h apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqID := "req_" + randomString(14)
		w.Header().Set("Request-Id", reqID)
		w.Header().Set("Stripe-Version", APIVersion)
		key, aerr := s.authKey(r)
		if aerr != nil {
			writeJSON(w, aerr.Status, aerr.body())
			return
		}
		fault := s.takeFault(r)
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			writeJSON(w, 400, invalid("", "Could not read the request body.").body())
			return
		}
		vals, err := url.ParseQuery(string(raw))
		if err != nil {
			writeJSON(w, 400, invalid("", "Invalid form body: "+err.Error()).body())
			return
		}
		for k, v := range r.URL.Query() {
			vals[k] = append(vals[k], v...)
		}
		f, perr := parseForm(vals)
		if perr != nil {
			writeJSON(w, 400, perr.(*Error).body())
			return
		}
		idemKey := r.Header.Get("Idempotency-Key")
		route := r.Method + " " + r.URL.Path
		if fault != nil && !fault.AfterExecute {
			proceed, status, body := s.applyFault(w, r, fault)
			if !proceed {
				if fault.Remember && status >= 500 && r.Method == http.MethodPost && idemKey != "" {
					s.mu.Lock()
					if _, ok := s.idem[key+"\x00"+idemKey]; !ok {
						s.idem[key+"\x00"+idemKey] = &idemEntry{reqID: reqID, route: route, params: f.canonical(), status: status, body: body}
					}
					s.mu.Unlock()
				}
				return
			}
			fault = nil
		}
		s.mu.Lock()
		if r.Method == http.MethodPost && idemKey != "" {
			if e, ok := s.idem[key+"\x00"+idemKey]; ok {
				s.mu.Unlock()
				if e.route != route || e.params != f.canonical() {
					ae := &Error{Status: 400, Type: "idempotency_error",
						Message: fmt.Sprintf("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '%s' if you meant to execute a different request.", idemKey)}
					writeJSON(w, 400, ae.body())
					return
				}
				w.Header().Set("Idempotent-Replayed", "true")
				w.Header().Set("Original-Request", e.reqID)
				writeRaw(w, e.status, e.body)
				return
			}
		}
		s.tick()
		s.curReq = obj{"id": reqID, "idempotency_key": nilIfEmpty(idemKey)}
		o, ae := h(r, f)
		s.curReq = nil
		status, out := 200, obj(nil)
		if ae != nil {
			status, out = ae.Status, ae.body()
		} else if out, ae = s.expandResponse(o, f.strings("expand")); ae != nil {
			status, out = ae.Status, ae.body()
		}
		body, _ := json.MarshalIndent(out, "", "  ")
		if r.Method == http.MethodPost && idemKey != "" && (ae == nil || ae.Type != "invalid_request_error") {
			s.idem[key+"\x00"+idemKey] = &idemEntry{reqID: reqID, route: route, params: f.canonical(), status: status, body: body}
		}
		s.mu.Unlock()
		s.wake()
		if fault != nil {
			if proceed, _, _ := s.applyFault(w, r, fault); !proceed {
				return
			}
		}
		if idemKey != "" {
			w.Header().Set("Idempotency-Key", idemKey)
		}
		writeRaw(w, status, body)
	})
}

// wake nudges the background deliverer.
func (s *Sandbox) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Sandbox) authKey(r *http.Request) (string, *Error) {
	h := r.Header.Get("Authorization")
	key, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		if u, _, basic := r.BasicAuth(); basic {
			key, ok = u, true
		}
	}
	if !ok || key == "" {
		return "", &Error{Status: 401, Type: "invalid_request_error",
			Message: "You did not provide an API key. Provide it as 'Authorization: Bearer sk_test_...'."}
	}
	if isLiveKey(key) {
		return "", &Error{Status: 401, Type: "invalid_request_error", Code: "api_key_expired",
			Message: "This is the paygate sandbox: it refuses live keys (sk_live_/rk_live_). Use a test key (sk_test_...)."}
	}
	if s.cfg.APIKey != "" && key != s.cfg.APIKey {
		return "", &Error{Status: 401, Type: "invalid_request_error",
			Message: "Invalid API Key provided: " + redact(key)}
	}
	if s.cfg.APIKey == "" && !strings.HasPrefix(key, "sk_test_") && !strings.HasPrefix(key, "rk_test_") {
		return "", &Error{Status: 401, Type: "invalid_request_error",
			Message: "Invalid API Key provided: " + redact(key) + " (the sandbox takes sk_test_ and rk_test_ keys)"}
	}
	return key, nil
}

func redact(k string) string {
	if len(k) <= 12 {
		return strings.Repeat("*", len(k))
	}
	return k[:8] + strings.Repeat("*", len(k)-12) + k[len(k)-4:]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// expandable names the fields of each object type that expand[] may name.
var expandable = map[string]map[string]bool{
	"price":            {"product": true},
	"payment_link":     {"line_items": true},
	"checkout.session": {"payment_intent": true, "payment_link": true, "line_items": true},
	"payment_intent":   {"latest_charge": true},
	"charge":           {"payment_intent": true, "refunds": true},
	"refund":           {"charge": true, "payment_intent": true},
	"dispute":          {"charge": true, "payment_intent": true},
}

// expandResponse renders o with expand paths applied. Callers hold mu.
func (s *Sandbox) expandResponse(o obj, paths []string) (obj, *Error) {
	out := render(o)
	for _, p := range paths {
		if err := s.expandPath(out, o, strings.Split(p, "."), p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// expandPath replaces the id at path in out with the rendered object. src
// is the stored object out was rendered from (for internal lists).
func (s *Sandbox) expandPath(out obj, src obj, path []string, full string) *Error {
	typ, _ := out["object"].(string)
	if typ == "list" || typ == "search_result" {
		if path[0] != "data" || len(path) < 2 {
			return invalid("expand", "This property cannot be expanded ("+full+").")
		}
		items, _ := out["data"].([]any)
		for _, it := range items {
			m, _ := it.(obj)
			if m == nil {
				continue
			}
			if err := s.expandPath(m, s.objs[fmt.Sprint(m["id"])], path[1:], full); err != nil {
				return err
			}
		}
		return nil
	}
	field := path[0]
	if !expandable[typ][field] {
		return invalid("expand", "This property cannot be expanded ("+full+").")
	}
	var val obj
	switch {
	case field == "line_items":
		val = s.lineItemList(src)
	case field == "refunds" && typ == "charge":
		val = s.chargeRefundList(src)
	default:
		switch v := out[field].(type) {
		case string:
			stored := s.objs[v]
			if stored == nil {
				return nil
			}
			val, src = render(stored), stored
		case obj:
			val = v
			src = s.objs[fmt.Sprint(v["id"])]
		default:
			return nil
		}
	}
	out[field] = val
	if len(path) > 1 {
		return s.expandPath(val, src, path[1:], full)
	}
	return nil
}

// retrieve answers GET /v1/<type>/{id}; an unknown id is a 404
// resource_missing naming param.
func (s *Sandbox) retrieve(typ, param string) apiFunc {
	return func(r *http.Request, f form) (obj, *Error) {
		c := &checker{f: f}
		if c.allow(); c.err != nil {
			return nil, c.err
		}
		id := r.PathValue("id")
		o := s.get(typ, id)
		if o == nil {
			return nil, notFound(typ, param, id)
		}
		return o, nil
	}
}

// listOf answers GET /v1/<type> filtered by equality on the given fields.
func (s *Sandbox) listOf(typ string, filters []string) apiFunc {
	return func(r *http.Request, f form) (obj, *Error) {
		c := &checker{f: f}
		keys := append([]string{"limit", "starting_after", "ending_before", "created"}, filters...)
		if c.allow(keys...); c.err != nil {
			return nil, c.err
		}
		want := map[string]string{}
		for _, k := range filters {
			if v, ok := c.text(f, k, k, false); ok {
				want[k] = v
			}
		}
		if c.err != nil {
			return nil, c.err
		}
		return s.page(r, f, typ, s.sortedIDs(typ), func(o obj) bool {
			for k, v := range want {
				if fmt.Sprint(o[k]) != v {
					return false
				}
			}
			return true
		})
	}
}

// page cuts one page out of ids (newest first) with Stripe's list
// parameters: limit (1-100, default 10), starting_after, ending_before,
// created[gte|gt|lte|lt].
func (s *Sandbox) page(r *http.Request, f form, typ string, ids []string, keep func(obj) bool) (obj, *Error) {
	c := &checker{f: f}
	limit, ok := c.integer(f, "limit", "limit", false, 1)
	if !ok {
		limit = 10
	}
	if limit > 100 {
		return nil, invalid("limit", "This value must be less than or equal to 100.")
	}
	after, _ := c.text(f, "starting_after", "starting_after", false)
	before, _ := c.text(f, "ending_before", "ending_before", false)
	created := f.sub("created")
	bounds := map[string]int64{}
	if created != nil {
		c.allowIn("created", created, "gte", "gt", "lte", "lt")
		for _, k := range []string{"gte", "gt", "lte", "lt"} {
			if n, ok := c.integer(created, "created["+k+"]", k, false, 0); ok {
				bounds[k] = n
			}
		}
	} else if v, ok := c.integer(f, "created", "created", false, 0); ok {
		bounds["gte"], bounds["lte"] = v, v
	}
	if c.err != nil {
		return nil, c.err
	}
	var all []obj
	for _, id := range ids {
		o := s.objs[id]
		if o == nil {
			continue
		}
		if keep != nil && !keep(o) {
			continue
		}
		cr := toInt(o["created"])
		if v, ok := bounds["gte"]; ok && cr < v {
			continue
		}
		if v, ok := bounds["gt"]; ok && cr <= v {
			continue
		}
		if v, ok := bounds["lte"]; ok && cr > v {
			continue
		}
		if v, ok := bounds["lt"]; ok && cr >= v {
			continue
		}
		all = append(all, o)
	}
	start, end := 0, len(all)
	if after != "" {
		i := indexOf(all, after)
		if i < 0 && s.objs[after] == nil {
			return nil, notFound(strings.ReplaceAll(typ, "_", " "), "starting_after", after)
		}
		start = i + 1
		if i < 0 {
			start = len(all)
		}
	}
	if before != "" {
		i := indexOf(all, before)
		if i < 0 && s.objs[before] == nil {
			return nil, notFound(strings.ReplaceAll(typ, "_", " "), "ending_before", before)
		}
		end = max(i, 0)
		start = max(0, end-int(limit))
	}
	hasMore := false
	if end-start > int(limit) {
		end, hasMore = start+int(limit), true
	} else if before != "" && start > 0 {
		hasMore = true
	}
	data := make([]any, 0, end-start)
	for _, o := range all[start:end] {
		data = append(data, render(o))
	}
	return obj{"object": "list", "data": data, "has_more": hasMore, "url": r.URL.Path}, nil
}

func indexOf(list []obj, id string) int {
	for i, o := range list {
		if o["id"] == id {
			return i
		}
	}
	return -1
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case int:
		return int64(x)
	case json.Number:
		n, _ := x.Int64()
		return n
	case float64:
		return int64(x)
	}
	return 0
}

// unix is t in whole seconds, as Stripe reports times.
func unix(t time.Time) int64 { return t.Unix() }
