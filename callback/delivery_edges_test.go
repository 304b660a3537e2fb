package callback_test

// Edges of callback delivery found by a review (API.md §4, decisions.md
// "Callbacks"). Every test here failed before its fix; each comment says
// what is expected and what happened before.

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/callback"
	"github.com/numedapp/paygate/store"
)

// TestRetryAfterHugeIsCapped: decisions.md says a
// Retry-After (seconds or an HTTP date) on 429/503 moves the next attempt
// later, "never earlier than the schedule, capped at 24 h"
// (Config.MaxRetryAfter). A receiver that answers 503 with a very large
// delay-seconds value — RFC 9110 allows any number of digits — is asking
// for at least 24 h of quiet.
//
// parseRetryAfter does time.Duration(n) * time.Second with no bound: for
// n ≥ 9,223,372,037 the multiplication overflows int64 (to a negative or a
// small duration), and a value that does not fit an int (Atoi fails) falls
// through to the HTTP-date parser and is ignored. Either way the header is
// dropped and the callback is retried 5 s later, not 24 h later.
func TestRetryAfterHugeIsCapped(t *testing.T) {
	t.Parallel()
	for _, v := range []string{
		"10000000000",           // 317 years: time.Duration(n)*time.Second overflows to a negative duration
		"18446744074",           // overflows to ~0.7 s
		"100000000000000000000", // does not fit an int: Atoi fails, the header is ignored
	} {
		t.Run(v, func(t *testing.T) {
			f := newFixture(t)
			rc := newReceiver(t, func(_ int, w http.ResponseWriter) {
				w.Header().Set("Retry-After", v)
				w.WriteHeader(http.StatusServiceUnavailable)
			})
			id := f.seed(rc.URL, 1)[0]
			e := f.engine(func(c *callback.Config) { c.BreakerThreshold = -1 })
			start := f.clock.Now()
			step(t, e, 1)
			c := f.callback(id)
			if got := c.NextAttemptAt.Sub(start); got < 24*time.Hour {
				t.Fatalf("Retry-After: %s on a 503: next attempt %v later; want the 24 h cap (MaxRetryAfter)", v, got)
			}
		})
	}
}

// TestUnstorableErrorTextKeepsTheGroupsResults: when a receiver's
// answer is not HTTP (a misconfigured CALLBACK_URL pointing at a port that
// answers with a UTF-8 banner, a broken proxy), net/http's error quotes the
// bytes it read, printable runes kept as they are. errText then cuts the
// message at 200 BYTES, which can split a multi-byte rune: the attempt's
// Error (and the callback's last_error) is invalid UTF-8, PostgreSQL
// refuses the text, and the whole result transaction fails.
//
// That transaction is the group of every callback sent in the same round
// (RecordCallbackAttempts): the callbacks that WERE delivered to the healthy
// receiver stay leased and pending with no attempt row, and once the lease
// expires they are claimed and delivered a second time (API.md: delivered
// at least once, but a healthy receiver should not get duplicates; the
// attempt log must hold every attempt). The broken callback itself is never
// recorded: it is re-sent at every lease expiry, outside the schedule, and
// never marked failed.
//
// decisions.md: "Response bodies are kept to 1 KiB, as valid UTF-8 without
// NUL bytes" — the body goes through printable(), the error text does not.
func TestUnstorableErrorTextKeepsTheGroupsResults(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := newReceiver(t, nil) // healthy: 200 to everything
	ids := f.seed(rc.URL, 3)

	// A second endpoint that answers any request with a non-HTTP line of
	// two-byte runes (no colon, so net/http reports "malformed HTTP
	// response" and quotes the line).
	bad := newReceiver(t, nil)
	bad.answer = func(_ int, w http.ResponseWriter) {
		hj, ok := w.(http.Hijacker)
		if !ok {
			t.Error("no hijacker")
			return
		}
		conn, buf, err := hj.Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		// The message is `Post "<url>": net/http: HTTP/1.x transport
		// connection broken: malformed HTTP response "<line>"`: pad so that
		// byte 200 falls inside an "é".
		prefix := len(`Post "` + bad.URL + `": net/http: HTTP/1.x transport connection broken: malformed HTTP response "`)
		pad := ""
		if (200-prefix)%2 == 0 {
			pad = "a"
		}
		line := pad + strings.Repeat("é", 200)
		_, _ = buf.WriteString(line + "\r\n\r\n")
		_ = buf.Flush()
	}
	badID := f.seed(bad.URL, 1)[0]

	e := f.engine(func(c *callback.Config) { c.BreakerThreshold = -1 })
	step(t, e, 4) // one claim, four sends, one result transaction

	for _, id := range ids {
		if c := f.callback(id); c.Status != paygate.CallbackSucceeded {
			t.Errorf("callback %s was delivered (receiver saw it %d time(s)) but is %s, attempts %d, leased %v: its result was lost with the group",
				id, rc.count(id), c.Status, c.Attempts, c.LeaseToken != "")
		}
	}
	if a := f.attempts(badID); len(a) != 1 {
		t.Errorf("the non-HTTP answer's attempt left %d log rows, want 1 (callback %+v)", len(a), f.callback(badID))
	}

	// Once the lease ends, the healthy receiver gets every one of them again.
	f.clock.Advance(e.Lease() + time.Second)
	if _, err := e.DeliverDue(context.Background(), 100); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if n := rc.count(id); n != 1 {
			t.Errorf("healthy receiver got %s %d times", id, n)
		}
	}
}

// TestManualRetryProbesAnOpenBreaker: API.md §4 — `POST
// /api/webhooks/callbacks/:id/retry` sends the callback again "now (after a
// merchant fixed their endpoint)"; decisions.md: "Manual retry makes the
// callback due now whatever its status ... Run's engine is woken and sends
// it at once". The Gateway's RetryCallback is store.RetryCallback followed
// by Engine.Wake (OnCallbacksQueued → wakeCallbacks); the woken worker runs
// deliverDue, as below.
//
// The very situation the endpoint exists for — the merchant's endpoint was
// down and is fixed — is the one where the engine's circuit breaker is
// open. deliverDue asks the breaker first (breaker.allow) and claims nothing
// until the cooldown ends: the retried callback is not sent "at once" but
// at the next probe, up to BreakerMaxCooldown (30 min by default after a
// long outage) later, and nothing tells the merchant why.
func TestManualRetryProbesAnOpenBreaker(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var up atomic.Bool
	rc := newReceiver(t, func(_ int, w http.ResponseWriter) {
		if !up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	ids := f.seed(rc.URL, 3)
	e := f.engine(func(c *callback.Config) { c.BreakerThreshold = 3 })
	ctx := context.Background()
	step(t, e, 3) // three 503s in a row: the breaker opens (30 s cooldown)
	// The merchant fixes the endpoint and asks for callback 0 again, now.
	up.Store(true)
	f.clock.Advance(time.Second)
	if _, err := f.store.RetryCallback(ctx, ids[0], f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	e.ProbeNow()                     // what Gateway.RetryCallback does
	n, err := e.DeliverDue(ctx, 100) // what the woken worker does
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || rc.count(ids[0]) != 2 {
		t.Errorf("manual retry: %d callbacks sent when woken, receiver saw %s %d times; want it sent at once",
			n, ids[0], rc.count(ids[0]))
	}
	// The cause: once the breaker's 30 s cooldown is over, the probe sends it.
	f.clock.Advance(30 * time.Second)
	if _, err := e.DeliverDue(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if rc.count(ids[0]) != 2 {
		t.Errorf("after the cooldown the receiver saw %s %d times", ids[0], rc.count(ids[0]))
	}
}

// slowRecordQueue is the store, with a hook run when a result group is
// recorded (before it is written): the commit's latency, and what another
// replica does meanwhile.
type slowRecordQueue struct {
	*store.Store
	beforeRecord func()
}

func (q *slowRecordQueue) RecordCallbackAttempts(ctx context.Context, rs []callback.Result) ([]bool, error) {
	if q.beforeRecord != nil {
		q.beforeRecord()
	}
	return q.Store.RecordCallbackAttempts(ctx, rs)
}

// TestLateSendKeepsARecordingMargin: a claim's
// callbacks (up to 32) share one lease (Lease = Timeout + 3 s) and are
// recorded together after the LAST of them is sent (sendAndRecord →
// recordGrouped). sendAndRecord starts a send as long as more than Timeout
// of the lease is left, so a send that a busy slot starts late may end a
// millisecond before the lease does — and the whole batch's result
// transaction (resultSpacing, the commit) comes after it. The leases of
// every callback of the batch, including those delivered seconds earlier,
// have expired by then: another replica's worker claims them all and the
// healthy receiver gets each one a second time; this worker's results are
// fenced off (log only). decisions.md: "A worker does not start an attempt
// that could outlast its lease ... since another worker may claim it when
// the lease ends and the receiver would get it twice."
//
// Here (fake clock, Timeout 2 s, Lease 5 s, every answer within the
// timeout): 10 callbacks; 7 answers are slow, one takes 1.5 s, the next in
// its slot 1.499 s, and the 10th starts with 2.001 s of lease left and takes
// 1.999 s; the result commit takes 20 ms. Another engine polls meanwhile.
// Expected: each callback reaches the receiver once. Got: all 10 twice.
func TestLateSendKeepsARecordingMargin(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	release := make(chan struct{})
	var arrivals atomic.Int64
	rc := newReceiver(t, nil)
	rc.answer = func(_ int, w http.ResponseWriter) {
		switch n := arrivals.Add(1); {
		case n <= 7:
			<-release // slow answers, in time
		case n == 8:
			f.clock.Advance(1500 * time.Millisecond)
		case n == 9:
			f.clock.Advance(1499 * time.Millisecond)
		case n == 10:
			f.clock.Advance(1999 * time.Millisecond) // within the 2 s timeout
			close(release)
		}
		w.WriteHeader(http.StatusNoContent)
	}
	ids := f.seed(rc.URL, 10)
	other := f.engine(func(c *callback.Config) { c.Timeout, c.Lease = 2*time.Second, 5*time.Second })
	q := &slowRecordQueue{Store: f.store}
	var once sync.Once
	q.beforeRecord = func() {
		once.Do(func() {
			f.clock.Advance(20 * time.Millisecond) // the result transaction's commit
			// Another replica's worker polls meanwhile.
			if _, err := other.DeliverDue(context.Background(), 100); err != nil {
				t.Error(err)
			}
		})
	}
	e := f.engine(func(c *callback.Config) { c.Queue, c.Timeout, c.Lease = q, 2*time.Second, 5*time.Second })
	if e.Lease() != 5*time.Second {
		t.Fatalf("lease %v", e.Lease())
	}
	step(t, e, 10)
	if n := arrivals.Load(); n < 10 {
		t.Fatalf("only %d sends", n)
	}
	dup := 0
	for _, id := range ids {
		if rc.count(id) != 1 {
			dup++
		}
	}
	if dup > 0 {
		t.Fatalf("%d of %d callbacks reached the healthy receiver twice (%d requests for 10 callbacks, every answer within the timeout)",
			dup, len(ids), arrivals.Load())
	}
}

// TestNonASCIICallbackURLAndADroppedConnection is the same defect as
// TestUnstorableErrorTextKeepsTheGroupsResults from an everyday
// trigger: a CALLBACK_URL whose query has non-ASCII text (checkURL accepts
// it; url.URL.String keeps RawQuery as is, and url.Error quotes it with
// printable runes kept) and a receiver that drops the connection without an
// answer (a restart, a proxy): the error is `Post "<url>": EOF`, errText
// cuts it at byte 200 inside a rune, and PostgreSQL refuses the result
// transaction. The callbacks delivered to the healthy receiver in the same
// round lose their results and are delivered again; the failed attempt is
// never logged.
func TestNonASCIICallbackURLAndADroppedConnection(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := newReceiver(t, nil)
	ids := f.seed(rc.URL, 3)
	bad := newReceiver(t, nil)
	bad.answer = func(_ int, w http.ResponseWriter) {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close() // no answer at all
			}
		}
	}
	base := bad.URL + "/callbacks?order="
	pad := ""
	if (200-len(`Post "`+base))%2 == 0 {
		pad = "x"
	}
	badURL := base + pad + strings.Repeat("é", 120)
	badID := f.seed(badURL, 1)[0]

	e := f.engine(func(c *callback.Config) { c.BreakerThreshold = -1 })
	step(t, e, 4)
	for _, id := range ids {
		if c := f.callback(id); c.Status != paygate.CallbackSucceeded {
			t.Errorf("callback %s was delivered (receiver saw it %d time(s)) but is %s: its result was lost with the group", id, rc.count(id), c.Status)
		}
	}
	if a := f.attempts(badID); len(a) != 1 {
		t.Errorf("the dropped connection's attempt left %d log rows, want 1", len(a))
	}
}
