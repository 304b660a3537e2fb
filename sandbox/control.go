package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Fault makes the next Count API calls (whose path contains Path, when set,
// and whose method is Method, when set) misbehave.
type Fault struct {
	Count  int
	Path   string
	Method string
	// Status answers with this status (500 api_error, 429 rate_limit, or any
	// other) instead of executing the call.
	Status int
	// Hang holds the request until the client gives up or the sandbox
	// closes (or HangFor passes, then it executes normally: a slow call).
	Hang    bool
	HangFor time.Duration
	// AfterExecute executes the call, then answers Status anyway: Stripe did
	// the work but the client never heard (the idempotent retry then
	// replays the real answer).
	AfterExecute bool
	// Remember keeps a 5xx answer under the request's Idempotency-Key, as
	// Stripe's idempotency layer keeps the result of a POST that failed
	// after it began: retries with the same key get the same 500 (which is
	// why stripe-go does not retry POSTs on a 500). Without it, the fault
	// is one the request never got past, and a retry executes.
	Remember bool
}

// FailNext queues a fault for the next matching API calls.
func (s *Sandbox) FailNext(f Fault) {
	if f.Count <= 0 {
		f.Count = 1
	}
	if f.Status == 0 && !f.Hang {
		f.Status = 500
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// takeFault claims one use of the first fault matching r.
func (s *Sandbox) takeFault(r *http.Request) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if (f.Path == "" || strings.Contains(r.URL.Path, f.Path)) && (f.Method == "" || strings.EqualFold(f.Method, r.Method)) {
			f.Count--
			if f.Count <= 0 {
				s.faults = append(s.faults[:i], s.faults[i+1:]...)
			}
			cp := *f
			return &cp
		}
	}
	return nil
}

// applyFault answers r as f says and returns the status and body it
// answered with. It reports proceed when the call should go on as usual
// (a hang whose HangFor ran out, with no Status to answer).
func (s *Sandbox) applyFault(w http.ResponseWriter, r *http.Request, f *Fault) (proceed bool, status int, body []byte) {
	if f.Hang {
		var timeout <-chan time.Time
		if f.HangFor > 0 {
			t := time.NewTimer(f.HangFor)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-r.Context().Done():
			return false, 0, nil
		case <-s.stop:
			return false, 0, nil
		case <-timeout:
			if f.Status == 0 {
				return true, 0, nil
			}
		}
	}
	ae := &Error{Status: f.Status, Type: "api_error", Message: "An unknown error occurred (sandbox fault injection)."}
	if f.Status == 429 {
		ae = &Error{Status: 429, Type: "invalid_request_error", Code: "rate_limit",
			Message: "Too many requests hit the API too quickly (sandbox fault injection)."}
	}
	b, _ := json.MarshalIndent(ae.body(), "", "  ")
	writeRaw(w, ae.Status, b)
	return false, ae.Status, b
}

// ErrNotFound is returned by control methods given an unknown id.
var ErrNotFound = errors.New("sandbox: no such object")

func (s *Sandbox) find(typ, id string) (obj, error) {
	o := s.get(typ, id)
	if o == nil {
		return nil, fmt.Errorf("%w: %s %q", ErrNotFound, typ, id)
	}
	return o, nil
}

func asErr(ae *Error) error {
	if ae == nil {
		return nil
	}
	return ae
}

// control runs f with the sandbox locked and due timers fired, then wakes
// the background deliverer.
func (s *Sandbox) control(f func() error) error {
	s.mu.Lock()
	s.tick()
	err := f()
	s.mu.Unlock()
	s.wake()
	return err
}

// VisitLink opens a new Checkout Session for a payment link, as a customer
// opening its URL does, and returns the session id.
func (s *Sandbox) VisitLink(linkID string) (string, error) {
	var id string
	err := s.control(func() error {
		link, err := s.find("payment_link", linkID)
		if err != nil {
			return err
		}
		cs, ae := s.visitLink(link)
		if ae != nil {
			return ae
		}
		id = cs["id"].(string)
		return nil
	})
	return id, err
}

// PaySession pays an open Checkout Session with a test card number, a
// pm_card_ token or a bank debit (see Cards), as the hosted page does. A
// decline returns a card error and leaves the session open.
func (s *Sandbox) PaySession(sessionID, paymentMethod string) error {
	return s.control(func() error {
		cs, err := s.find("checkout.session", sessionID)
		if err != nil {
			return err
		}
		return asErr(s.paySession(cs, paymentMethod))
	})
}

// PayLink visits a payment link and pays the new session: it returns the
// session id (also on a decline, with the error).
func (s *Sandbox) PayLink(linkID, paymentMethod string) (string, error) {
	id, err := s.VisitLink(linkID)
	if err != nil {
		return "", err
	}
	return id, s.PaySession(id, paymentMethod)
}

// PayIntent confirms a PaymentIntent with a payment method, as the Payment
// Element (the confirm page) does.
func (s *Sandbox) PayIntent(intentID, paymentMethod string) error {
	return s.control(func() error {
		pi, err := s.find("payment_intent", intentID)
		if err != nil {
			return err
		}
		return asErr(s.confirmIntent(pi, paymentMethod, ""))
	})
}

// Authenticate completes (ok) or fails the 3D Secure step of a
// requires_action PaymentIntent.
func (s *Sandbox) Authenticate(intentID string, ok bool) error {
	return s.control(func() error {
		pi, err := s.find("payment_intent", intentID)
		if err != nil {
			return err
		}
		return asErr(s.authenticate(pi, ok))
	})
}

// Settle ends a processing bank debit now: it succeeds (ok) or fails.
func (s *Sandbox) Settle(intentID string, ok bool) error {
	return s.control(func() error {
		pi, err := s.find("payment_intent", intentID)
		if err != nil {
			return err
		}
		if pi["status"] != "processing" {
			return stateErr(fmt.Sprintf("PaymentIntent %s is %s, not processing.", intentID, pi["status"]))
		}
		s.settleIntent(pi, ok)
		return nil
	})
}

// Refund refunds a PaymentIntent from the "Dashboard" (no metadata, no
// API request); amount 0 refunds what is left. It returns the refund id.
func (s *Sandbox) Refund(intentID string, amount int64, reason string) (string, error) {
	var id string
	err := s.control(func() error {
		pi, err := s.find("payment_intent", intentID)
		if err != nil {
			return err
		}
		ch := s.objs[fmt.Sprint(pi["latest_charge"])]
		if ch == nil || pi["status"] != "succeeded" {
			return invalid("payment_intent", "This PaymentIntent does not have a successful charge to refund.")
		}
		if amount <= 0 {
			amount = -1
		}
		re, ae := s.refund(ch, amount, reason, nil)
		if ae != nil {
			return ae
		}
		id = re["id"].(string)
		return nil
	})
	return id, err
}

// SucceedRefund moves a pending refund to succeeded.
func (s *Sandbox) SucceedRefund(refundID string) error {
	return s.control(func() error {
		re, err := s.find("refund", refundID)
		if err != nil {
			return err
		}
		return asErr(s.setRefundStatus(re, "succeeded", ""))
	})
}

// FailRefund fails a pending or succeeded refund (the money goes back to
// the charge's unrefunded amount), as banks do days later.
func (s *Sandbox) FailRefund(refundID, reason string) error {
	if reason == "" {
		reason = "expired_or_canceled_card"
	}
	return s.control(func() error {
		re, err := s.find("refund", refundID)
		if err != nil {
			return err
		}
		return asErr(s.setRefundStatus(re, "failed", reason))
	})
}

// Dispute opens a dispute on a PaymentIntent's charge (reason default
// "fraudulent") and returns the dispute id.
func (s *Sandbox) Dispute(intentID, reason string) (string, error) {
	var id string
	err := s.control(func() error {
		pi, err := s.find("payment_intent", intentID)
		if err != nil {
			return err
		}
		ch := s.objs[fmt.Sprint(pi["latest_charge"])]
		if ch == nil {
			return invalid("payment_intent", "This PaymentIntent has no charge.")
		}
		dp, ae := s.openDispute(ch, reason)
		if ae != nil {
			return ae
		}
		id = dp["id"].(string)
		return nil
	})
	return id, err
}

// UpdateDispute submits evidence: the dispute goes under_review.
func (s *Sandbox) UpdateDispute(disputeID, evidence string) error {
	return s.control(func() error {
		dp, err := s.find("dispute", disputeID)
		if err != nil {
			return err
		}
		return asErr(s.updateDispute(dp, evidence))
	})
}

// CloseDispute decides a dispute: won or lost.
func (s *Sandbox) CloseDispute(disputeID string, won bool) error {
	return s.control(func() error {
		dp, err := s.find("dispute", disputeID)
		if err != nil {
			return err
		}
		return asErr(s.closeDispute(dp, won))
	})
}

// ExpireSession expires an open Checkout Session now (as the 24 h timer
// does), canceling its PaymentIntent.
func (s *Sandbox) ExpireSession(sessionID string) error {
	return s.control(func() error {
		cs, err := s.find("checkout.session", sessionID)
		if err != nil {
			return err
		}
		if cs["status"] != "open" {
			return invalid("", "Only open Checkout Sessions can be expired.")
		}
		s.expireSession(cs)
		return nil
	})
}

// Object returns the current JSON of any object by id (nil when unknown).
func (s *Sandbox) Object(id string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.objs[id]
	if o == nil {
		return nil
	}
	return render(o)
}

// SessionIntent returns the PaymentIntent id of a Checkout Session ("" until
// the customer's first payment attempt).
func (s *Sandbox) SessionIntent(sessionID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cs := s.get("checkout.session", sessionID); cs != nil {
		id, _ := cs["payment_intent"].(string)
		return id
	}
	return ""
}

// LinkSessions returns the ids of a payment link's Checkout Sessions,
// oldest first.
func (s *Sandbox) LinkSessions(linkID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, id := range s.byType["checkout.session"] {
		if s.objs[id]["payment_link"] == linkID {
			out = append(out, id)
		}
	}
	return out
}

// Reset forgets every object, event, queued delivery, fault and chaos
// setting (the webhook URL, secret and clock stay).
func (s *Sandbox) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objs, s.byType, s.events, s.idem = map[string]obj{}, map[string][]string{}, nil, map[string]*idemEntry{}
	s.timed = map[string]bool{}
	s.queue, s.log, s.faults, s.chaos = nil, nil, nil, Chaos{}
}
