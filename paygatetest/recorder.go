package paygatetest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/numedapp/paygate/callback/verify"
)

// Recorder is the merchant's callback endpoint: it verifies every callback
// with callback/verify (on the Env's clock) and records the ones that
// verify, in the order they arrive.
type Recorder struct {
	// URL is the endpoint (the Gateway's Config.CallbackURL).
	URL string
	// Secret is the callback signing secret (Config.CallbackSecrets[0]).
	Secret string

	server *httptest.Server
	now    func() time.Time
	mu     sync.Mutex
	got    []verify.Payload
	bad    []error
	wake   chan struct{}
}

func newRecorder(secret string, now func() time.Time, status int) *Recorder {
	r := &Recorder{Secret: secret, now: now, wake: make(chan struct{})}
	r.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err == nil {
			err = verify.VerifyAt(secret, req.Header, body, r.now(), verify.DefaultTolerance)
		}
		var p verify.Payload
		if err == nil {
			err = json.Unmarshal(body, &p)
		}
		r.mu.Lock()
		if err != nil {
			r.bad = append(r.bad, err)
		} else if status/100 == 2 {
			r.got = append(r.got, p)
		}
		close(r.wake)
		r.wake = make(chan struct{})
		r.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(status)
	}))
	r.URL = r.server.URL + "/callbacks"
	return r
}

// All returns the callbacks received so far that verified (and were
// answered 2xx), in arrival order.
func (r *Recorder) All() []verify.Payload {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]verify.Payload(nil), r.got...)
}

// For returns the callbacks received so far for one payment.
func (r *Recorder) For(paymentID string) []verify.Payload {
	var out []verify.Payload
	for _, p := range r.All() {
		if p.PaymentID == paymentID {
			out = append(out, p)
		}
	}
	return out
}

// Rejected returns why callbacks that did not verify were refused (a
// paygate bug, or a test that changed the secret).
func (r *Recorder) Rejected() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.bad...)
}

// Wait waits until match returns true for a callback received (or already
// received), and returns it; it gives up after timeout with an error that
// lists what arrived.
func (r *Recorder) Wait(match func(verify.Payload) bool, timeout time.Duration) (verify.Payload, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := 0
	for {
		r.mu.Lock()
		got, wake := r.got, r.wake
		r.mu.Unlock()
		for _, p := range got[seen:] {
			if match(p) {
				return p, nil
			}
		}
		seen = len(got)
		select {
		case <-wake:
		case <-deadline.C:
			var actions []string
			for _, p := range r.All() {
				actions = append(actions, p.PaymentID+":"+p.Action)
			}
			return verify.Payload{}, fmt.Errorf("no matching callback within %s; received %v, rejected %v", timeout, actions, r.Rejected())
		}
	}
}
