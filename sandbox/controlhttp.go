package sandbox

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// controlRoutes adds the control API: JSON in, JSON out, no key needed
// (the sandbox holds no real money). Errors are Stripe-shaped.
func (s *Sandbox) controlRoutes(mux *http.ServeMux) {
	type body struct {
		PaymentMethod string  `json:"payment_method"`
		OK            *bool   `json:"ok"`
		Won           bool    `json:"won"`
		Amount        int64   `json:"amount"`
		Reason        string  `json:"reason"`
		Evidence      string  `json:"evidence"`
		Seconds       float64 `json:"seconds"`
		URL           string  `json:"url"`
		Secret        string  `json:"secret"`
		// faults
		Count        int     `json:"count"`
		Path         string  `json:"path"`
		Method       string  `json:"method"`
		Status       int     `json:"status"`
		Hang         bool    `json:"hang"`
		HangSeconds  float64 `json:"hang_seconds"`
		AfterExecute bool    `json:"after_execute"`
		Remember     bool    `json:"remember"`
		// chaos
		Seed         uint64  `json:"seed"`
		Duplicate    float64 `json:"duplicate"`
		Reorder      float64 `json:"reorder"`
		Delay        float64 `json:"delay"`
		Drop         float64 `json:"drop"`
		DelaySeconds float64 `json:"delay_seconds"`
	}
	ctl := func(pattern string, h func(r *http.Request, b body) (any, error)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			var b body
			if r.Body != nil && r.ContentLength != 0 {
				dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&b); err != nil {
					writeJSON(w, 400, invalid("", "Invalid JSON body: "+err.Error()).body())
					return
				}
			}
			out, err := h(r, b)
			if err != nil {
				var ae *Error
				switch {
				case errors.As(err, &ae):
					writeJSON(w, ae.Status, ae.body())
				case errors.Is(err, ErrNotFound):
					writeJSON(w, 404, (&Error{Status: 404, Type: "invalid_request_error", Code: "resource_missing", Message: err.Error()}).body())
				default:
					writeJSON(w, 400, invalid("", err.Error()).body())
				}
				return
			}
			if out == nil {
				out = map[string]any{"ok": true}
			}
			writeJSON(w, 200, out)
		})
	}
	okOr := func(p *bool) bool { return p == nil || *p }
	id := func(r *http.Request) string { return r.PathValue("id") }
	ctl("POST /_sandbox/payment_links/{id}/visit", func(r *http.Request, b body) (any, error) {
		sid, err := s.VisitLink(id(r))
		return map[string]any{"checkout_session": sid}, err
	})
	ctl("POST /_sandbox/checkout_sessions/{id}/pay", func(r *http.Request, b body) (any, error) {
		return nil, s.PaySession(id(r), b.PaymentMethod)
	})
	ctl("POST /_sandbox/checkout_sessions/{id}/expire", func(r *http.Request, b body) (any, error) {
		return nil, s.ExpireSession(id(r))
	})
	ctl("POST /_sandbox/payment_intents/{id}/pay", func(r *http.Request, b body) (any, error) {
		return nil, s.PayIntent(id(r), b.PaymentMethod)
	})
	ctl("POST /_sandbox/payment_intents/{id}/authenticate", func(r *http.Request, b body) (any, error) {
		return nil, s.Authenticate(id(r), okOr(b.OK))
	})
	ctl("POST /_sandbox/payment_intents/{id}/settle", func(r *http.Request, b body) (any, error) {
		return nil, s.Settle(id(r), okOr(b.OK))
	})
	ctl("POST /_sandbox/payment_intents/{id}/refund", func(r *http.Request, b body) (any, error) {
		rid, err := s.Refund(id(r), b.Amount, b.Reason)
		return map[string]any{"refund": rid}, err
	})
	ctl("POST /_sandbox/payment_intents/{id}/dispute", func(r *http.Request, b body) (any, error) {
		did, err := s.Dispute(id(r), b.Reason)
		return map[string]any{"dispute": did}, err
	})
	ctl("POST /_sandbox/refunds/{id}/succeed", func(r *http.Request, b body) (any, error) {
		return nil, s.SucceedRefund(id(r))
	})
	ctl("POST /_sandbox/refunds/{id}/fail", func(r *http.Request, b body) (any, error) {
		return nil, s.FailRefund(id(r), b.Reason)
	})
	ctl("POST /_sandbox/disputes/{id}/update", func(r *http.Request, b body) (any, error) {
		return nil, s.UpdateDispute(id(r), b.Evidence)
	})
	ctl("POST /_sandbox/disputes/{id}/close", func(r *http.Request, b body) (any, error) {
		return nil, s.CloseDispute(id(r), b.Won)
	})
	ctl("GET /_sandbox/clock", func(r *http.Request, b body) (any, error) {
		return map[string]any{"now": s.Now().Unix()}, nil
	})
	ctl("POST /_sandbox/clock/advance", func(r *http.Request, b body) (any, error) {
		s.Advance(time.Duration(b.Seconds * float64(time.Second)))
		return map[string]any{"now": s.Now().Unix()}, nil
	})
	ctl("POST /_sandbox/faults", func(r *http.Request, b body) (any, error) {
		s.FailNext(Fault{Count: b.Count, Path: b.Path, Method: b.Method, Status: b.Status, Hang: b.Hang,
			HangFor: time.Duration(b.HangSeconds * float64(time.Second)), AfterExecute: b.AfterExecute, Remember: b.Remember})
		return nil, nil
	})
	ctl("POST /_sandbox/chaos", func(r *http.Request, b body) (any, error) {
		s.SetChaos(Chaos{Seed: b.Seed, Duplicate: b.Duplicate, Reorder: b.Reorder, Delay: b.Delay, Drop: b.Drop,
			DelayBy: time.Duration(b.DelaySeconds * float64(time.Second))})
		return nil, nil
	})
	ctl("POST /_sandbox/webhook", func(r *http.Request, b body) (any, error) {
		if err := s.SetWebhook(b.URL, b.Secret); err != nil {
			return nil, err
		}
		return map[string]any{"url": b.URL, "secret": s.WebhookSecret()}, nil
	})
	ctl("POST /_sandbox/deliver", func(r *http.Request, b body) (any, error) {
		rep := s.DeliverAll()
		return map[string]any{"sent": rep.Sent, "failed": rep.Failed, "dropped": rep.Dropped, "pending": rep.Pending}, nil
	})
	ctl("POST /_sandbox/events/{id}/redeliver", func(r *http.Request, b body) (any, error) {
		return nil, s.Redeliver(id(r))
	})
	ctl("GET /_sandbox/deliveries", func(r *http.Request, b body) (any, error) {
		return s.Deliveries(), nil
	})
	ctl("GET /_sandbox/events", func(r *http.Request, b body) (any, error) {
		return s.EventTypes(), nil
	})
	ctl("GET /_sandbox/truth", func(r *http.Request, b body) (any, error) {
		return s.Truths(), nil
	})
	ctl("GET /_sandbox/truth/{id}", func(r *http.Request, b body) (any, error) {
		return s.Truth(id(r)), nil
	})
	ctl("POST /_sandbox/reset", func(r *http.Request, b body) (any, error) {
		s.Reset()
		return nil, nil
	})
}
