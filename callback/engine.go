package callback

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultSchedule is the delay before each retry (API.md §4): the first
// attempt is immediate, the last of the 14 comes about 3.5 days later.
var DefaultSchedule = []time.Duration{
	0, 5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 12 * time.Hour, 24 * time.Hour, 24 * time.Hour, 24 * time.Hour,
}

// Queue is the outbox the Engine works from; store.Store implements it.
type Queue interface {
	// ClaimCallbacks leases up to limit due callbacks until now+lease and
	// counts the attempt about to be made.
	ClaimCallbacks(ctx context.Context, limit int, lease time.Duration, now time.Time) ([]Callback, error)
	// RecordCallbackAttempt logs the attempt and stores c's new state only
	// if c.LeaseToken still holds the callback; it reports whether it did.
	RecordCallbackAttempt(ctx context.Context, c *Callback, a Attempt) (bool, error)
}

// BatchQueue is a Queue that records the attempts of several callbacks in
// one transaction (one commit for a batch of claims, not one each); the
// Engine uses it when its Queue has it. Each result is applied or not as
// RecordCallbackAttempt would (fenced by its lease token); applied reports
// which were.
type BatchQueue interface {
	RecordCallbackAttempts(ctx context.Context, results []Result) (applied []bool, err error)
}

// ReleasingQueue is a Queue that can give claims back: ReleaseCallbacks
// clears the lease of each callback still leased to its LeaseToken and
// uncounts the attempt its claim counted, so that it is due again at once.
// The Engine gives back a claimed callback it will not send now (its lease
// too short for an attempt: sendAndRecord); a Queue without it leaves such
// a callback to wait for its lease to end, one attempt counted in vain.
type ReleasingQueue interface {
	ReleaseCallbacks(ctx context.Context, cbs []Callback) error
}

// Result is one attempt to record: the callback's new state and the attempt.
type Result struct {
	Callback *Callback
	Attempt  Attempt
}

// Config configures an Engine. Zero fields take the defaults named.
type Config struct {
	// Queue is the outbox (required): store.New(pool).
	Queue Queue
	// Secrets sign every callback (whsec_…; several during a rotation).
	// Required: an empty or short secret is an error.
	Secrets []string
	// Timeout bounds one attempt; a 2xx must arrive within it. Default 15 s.
	Timeout time.Duration
	// Schedule is the delay before each attempt after the first; its length
	// is the number of attempts. Default DefaultSchedule (14 attempts).
	Schedule []time.Duration
	// Jitter adds a random 0…Jitter fraction to each delay, never less.
	// Default 0.2; a negative value disables it.
	Jitter float64
	// MaxRetryAfter caps how far a Retry-After header can push the next
	// attempt. Default 24 h.
	MaxRetryAfter time.Duration
	// Workers is how many claiming workers run (besides the one that sends
	// callbacks claimed at birth). Each sends the callbacks of its batch 8 at
	// a time. Default 4.
	Workers int
	// PollInterval is how often an idle worker looks for due callbacks.
	// Default 1 s.
	PollInterval time.Duration
	// WakeDelay is how long a worker woken by Wake waits before it claims,
	// so that callbacks queued close together are claimed, sent and
	// recorded together (one claim and one record transaction for many).
	// Default 20 ms; a negative value claims at once.
	WakeDelay time.Duration
	// Lease is how long a claimed callback belongs to its worker. Default
	// Timeout + 3 s; it must exceed Timeout. A worker claims a callback
	// just before sending it and records the result right after, so the
	// lease only has to outlast one attempt; after a crash, the callbacks
	// the dead process had claimed are sent again once their leases
	// expire (within 18 s by default). A result recorded after the lease
	// is refused (fencing) and kept in the log only.
	Lease time.Duration
	// HTTPClient sends the callbacks. Default: a client that never follows
	// redirects. If set, its CheckRedirect is replaced so that redirects are
	// never followed. Without a Transport of its own, the engine uses a copy
	// of http.DefaultTransport that keeps as many idle connections per host
	// as it may have callbacks in flight ((Workers + 1) × 8), so that sends
	// reuse connections.
	HTTPClient *http.Client
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives one line per failed attempt. Default slog.Default().
	Logger *slog.Logger
	// OnAttempt, if set, is called after every attempt (metrics).
	OnAttempt func(a Attempt)
	// BreakerThreshold is how many attempts in a row must fail with the
	// receiver unavailable (no connection, a timeout, a 5xx, a 429) before
	// the engine stops sending and probes instead (see the package
	// documentation). Default 10; a negative value turns the breaker off.
	BreakerThreshold int
	// BreakerMaxCooldown bounds the wait between probes. Default 30 min.
	BreakerMaxCooldown time.Duration
}

// Engine delivers queued callbacks. Several engines (in one process or in
// several replicas) can share one database: each callback is leased to one
// worker at a time.
type Engine struct {
	cfg    Config
	signer *Signer
	client *http.Client
	log    *slog.Logger
	wake   chan struct{}
	brk    *breaker // nil when off

	// inline holds callbacks stored already leased to this engine (see
	// ClaimToken), to be sent at once; running is set while Run runs.
	// Pointers: the queue costs memory only for the callbacks in it.
	inline  chan *Callback
	running atomic.Bool

	// Results are recorded in groups: one transaction at a time, at least
	// resultSpacing apart; the results that arrive meanwhile go together in
	// the next.
	recMu      sync.Mutex
	recQueue   []*recordItem
	recRunning bool
	recLast    time.Time // when the last group was recorded (real time); the leader's alone
}

type recordItem struct {
	cbs     []Callback
	results []attempt
	done    chan struct{}
}

// inlineQueue bounds the callbacks handed to Deliver and not yet sent.
const inlineQueue = 1024

// New validates cfg and returns an Engine.
func New(cfg Config) (*Engine, error) {
	if cfg.Queue == nil {
		return nil, errors.New("callback: Config.Queue is required")
	}
	signer, err := NewSigner(cfg.Secrets...)
	if err != nil {
		return nil, fmt.Errorf("callback: Config.Secrets: %w", err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	if len(cfg.Schedule) == 0 {
		cfg.Schedule = DefaultSchedule
	}
	if cfg.Jitter == 0 {
		cfg.Jitter = 0.2
	} else if cfg.Jitter < 0 {
		cfg.Jitter = 0
	}
	if cfg.MaxRetryAfter <= 0 {
		cfg.MaxRetryAfter = 24 * time.Hour
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.WakeDelay == 0 {
		cfg.WakeDelay = 20 * time.Millisecond
	}
	if cfg.Lease <= 0 {
		cfg.Lease = cfg.Timeout + 3*time.Second
	}
	if cfg.Lease <= cfg.Timeout {
		return nil, errors.New("callback: Config.Lease must exceed Config.Timeout")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	client := &http.Client{}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		client = &c
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if client.Transport == nil {
		// http.DefaultTransport keeps 2 idle connections per host, and a
		// worker sends up to sendConcurrency callbacks at once: every send
		// past the second dialed a new connection and closed it afterwards.
		// Keep as many as the engine may have in flight.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = (cfg.Workers + 1) * sendConcurrency
		t.MaxIdleConns = t.MaxIdleConnsPerHost
		client.Transport = t
	}
	e := &Engine{cfg: cfg, signer: signer, client: client, log: cfg.Logger, wake: make(chan struct{}, 1),
		inline: make(chan *Callback, inlineQueue)}
	if cfg.BreakerThreshold == 0 {
		cfg.BreakerThreshold = 10
	}
	if cfg.BreakerMaxCooldown <= 0 {
		cfg.BreakerMaxCooldown = 30 * time.Minute
	}
	if cfg.BreakerThreshold > 0 {
		e.brk = &breaker{threshold: cfg.BreakerThreshold, maxCooldown: cfg.BreakerMaxCooldown}
	}
	e.cfg = cfg
	return e, nil
}

// claimBatch is how many due callbacks a worker claims in one query; they
// are sent at once, each within its lease, and recorded together.
const claimBatch = 32

// Lease is how long this engine's workers hold a claimed callback.
func (e *Engine) Lease() time.Duration { return e.cfg.Lease }

// recordMargin is the part of a lease kept, after a send's timeout, for
// recording its result: half of what the lease gives beyond the timeout.
func (e *Engine) recordMargin() time.Duration {
	return max(0, e.cfg.Lease-e.cfg.Timeout) / 2
}

// ProbeNow is for a callback queued again by hand (after the merchant
// fixed their endpoint): if the breaker is open, its cooldown ends now, so
// the next claim probes the receiver instead of waiting; then the workers
// are woken.
func (e *Engine) ProbeNow() {
	e.brk.probeNow(e.cfg.Now())
	e.Wake()
}

// Wake makes idle workers look for due callbacks now (a hint; polling is
// the guarantee).
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Run delivers callbacks until ctx is canceled, then lets attempts in
// flight finish (each bounded by Timeout) and returns nil.
func (e *Engine) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	e.running.Store(true)
	defer e.running.Store(false)
	for i := 0; i < e.cfg.Workers; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			e.work(ctx)
		}()
		go func() {
			defer wg.Done()
			e.workInline(ctx)
		}()
	}
	<-ctx.Done()
	e.running.Store(false)
	wg.Wait()
	return nil
}

// ClaimToken lets a transaction that queues callbacks store them already
// claimed by this engine — leased to token until until, their first attempt
// counted — so that they are sent right after it commits (Deliver) without
// a claim of their own: one statement and one transaction fewer per batch
// of callbacks, and no wait for a worker to wake. It returns "" when the
// engine cannot send at once: not running, its breaker open (the receiver
// is down), or its queue of such callbacks half full. A callback claimed
// this way and never sent (the process died, the engine stopped) is sent
// by any engine once its lease expires, as for a claim.
func (e *Engine) ClaimToken() (token string, until time.Time) {
	if !e.running.Load() || e.brk.isOpen() || len(e.inline) > inlineQueue/2 {
		return "", time.Time{}
	}
	return newLeaseToken(), e.cfg.Now().Add(e.cfg.Lease)
}

// Deliver sends callbacks that were committed leased to a token from
// ClaimToken, in the background. It does not block: if its queue is full
// the callbacks wait for their leases to expire and are claimed then. A
// callback whose lease (LeaseUntil) would end before an attempt's timeout
// — its transaction took that long — is not sent either (sendAndRecord).
func (e *Engine) Deliver(cbs []Callback) {
	for i := range cbs {
		c := &cbs[i]
		select {
		case e.inline <- c:
		default:
			e.log.LogAttrs(context.Background(), slog.LevelWarn, "callback: send queue full; sent when its lease expires",
				slog.String("callback_id", c.ID))
		}
	}
}

// workInline sends what Deliver was given: whatever is queued, up to a
// claim's worth at once, recorded together.
func (e *Engine) workInline(ctx context.Context) {
	for {
		var cbs []Callback
		select {
		case <-ctx.Done():
			return
		case c := <-e.inline:
			cbs = append(cbs, *c)
		}
	gather:
		for len(cbs) < claimBatch {
			select {
			case c := <-e.inline:
				cbs = append(cbs, *c)
			default:
				break gather
			}
		}
		e.sendAndRecord(ctx, cbs, false)
	}
}

// newLeaseToken returns a random lease token.
func newLeaseToken() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (e *Engine) work(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		n, err := e.deliverDue(ctx, claimBatch)
		if err != nil && ctx.Err() == nil {
			e.log.LogAttrs(ctx, slog.LevelError, "callback: claim failed", slog.String("error", err.Error()))
		}
		if ctx.Err() != nil {
			return
		}
		if n == claimBatch {
			continue // more may be due: claim again now
		}
		poll := e.cfg.PollInterval
		if n > 0 && e.cfg.WakeDelay > 0 {
			poll = e.cfg.WakeDelay // a short batch: look again soon, for what gathered meanwhile
		}
		if w := e.brk.wait(e.cfg.Now()); w > poll {
			poll = w // the receiver is down: nothing to do until the probe
		}
		timer.Reset(poll)
		select {
		case <-ctx.Done():
			return
		case <-e.wake:
			if d := e.cfg.WakeDelay; d > 0 {
				select { // let the callbacks queued around now gather
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			}
		case <-timer.C:
		}
	}
}

// DeliverDue claims up to limit due callbacks, sends them concurrently and
// records the outcomes; it returns how many it attempted. Run calls it in a
// loop; tests call it to step the engine under a controlled clock.
func (e *Engine) DeliverDue(ctx context.Context, limit int) (int, error) {
	return e.deliverDue(ctx, limit)
}

func (e *Engine) deliverDue(ctx context.Context, limit int) (int, error) {
	if ctx.Err() != nil {
		return 0, nil
	}
	limit, probe := e.brk.allow(e.cfg.Now(), limit)
	if limit == 0 {
		return 0, nil
	}
	now := e.cfg.Now()
	cbs, err := e.cfg.Queue.ClaimCallbacks(ctx, limit, e.cfg.Lease, now)
	if err != nil {
		if probe {
			e.brk.probeNotSent()
		}
		return 0, err
	}
	if len(cbs) == 0 && probe {
		e.brk.record(e.cfg.Now(), false, false) // nothing to probe with: close
	}
	for i := range cbs {
		cbs[i].LeaseUntil = now.Add(e.cfg.Lease)
	}
	e.sendAndRecord(ctx, cbs, probe)
	return len(cbs), nil
}

// sendConcurrency is how many of a batch's callbacks are sent at once. Each
// send in flight holds a connection to the receiver (two goroutines and
// their buffers on this side): 32 at once per worker kept 66 connections
// open under load for a receiver on loopback that a handful would serve.
const sendConcurrency = 8

// sendAndRecord sends claimed callbacks, sendConcurrency at a time, and
// records the outcomes in one go. A callback whose lease would end before
// its attempt could (its claim's transaction took that long, or the sends
// before it did) is not sent: once the lease ends another worker may claim
// it, and the receiver would get it twice. It is given back
// (ReleasingQueue), and sent when it is claimed again; if it was the
// breaker's probe (probe: this worker holds it), the breaker probes again.
func (e *Engine) sendAndRecord(ctx context.Context, cbs []Callback, probe bool) {
	if len(cbs) == 0 {
		return
	}
	results := make([]attempt, len(cbs))
	sent := make([]bool, len(cbs))
	var wg sync.WaitGroup
	var next atomic.Int64
	for range min(len(cbs), sendConcurrency) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(cbs)); i = next.Add(1) - 1 {
				c := &cbs[i]
				// A send must end, and its result be recorded, within the
				// lease: past it another worker may claim and send it again.
				if !c.LeaseUntil.IsZero() && c.LeaseUntil.Sub(e.cfg.Now()) <= e.cfg.Timeout+e.recordMargin() {
					e.log.LogAttrs(ctx, slog.LevelWarn, "callback: lease too short to send now; sent when claimed again",
						slog.String("callback_id", c.ID), slog.Time("lease_until", c.LeaseUntil))
					continue
				}
				results[i], sent[i] = e.attempt(context.WithoutCancel(ctx), c), true
			}
		}()
	}
	wg.Wait()
	var unsent []Callback
	n := 0 // the sent ones, moved to the front
	for i := range cbs {
		if sent[i] {
			cbs[n], results[n] = cbs[i], results[i]
			n++
		} else {
			unsent = append(unsent, cbs[i])
		}
	}
	if len(unsent) > 0 {
		if q, ok := e.cfg.Queue.(ReleasingQueue); ok {
			if err := q.ReleaseCallbacks(context.WithoutCancel(ctx), unsent); err != nil {
				e.log.LogAttrs(ctx, slog.LevelError, "callback: could not give back unsent callbacks; sent when their leases end",
					slog.Int("callbacks", len(unsent)), slog.String("error", err.Error()))
			}
		}
		if probe {
			e.brk.probeNotSent() // cbs was the breaker's probe
		}
	}
	if n > 0 {
		e.recordGrouped(context.WithoutCancel(ctx), cbs[:n], results[:n])
	}
}

// recordGrouped records the outcomes of cbs, together with those of the
// other workers that finish meanwhile (group commit), and returns once
// they are recorded.
func (e *Engine) recordGrouped(ctx context.Context, cbs []Callback, results []attempt) {
	it := &recordItem{cbs: cbs, results: results, done: make(chan struct{})}
	e.recMu.Lock()
	e.recQueue = append(e.recQueue, it)
	lead := !e.recRunning
	e.recRunning = true
	e.recMu.Unlock()
	if !lead {
		<-it.done
		return
	}
	for {
		e.recMu.Lock()
		if len(e.recQueue) == 0 {
			e.recRunning = false
			e.recMu.Unlock()
			return
		}
		e.recMu.Unlock()
		// Under load, space the groups: the results that arrive meanwhile
		// join these and share their commit. With nothing queued the leader
		// has returned above, so an idle worker never waits.
		if wait := time.Until(e.recLast.Add(resultSpacing)); wait > 0 {
			time.Sleep(wait)
		}
		e.recMu.Lock()
		items := e.recQueue
		e.recQueue = nil
		e.recMu.Unlock()
		var all []Callback
		var res []attempt
		for _, x := range items {
			all, res = append(all, x.cbs...), append(res, x.results...)
		}
		e.record(ctx, all, res)
		e.recLast = time.Now()
		for _, x := range items {
			close(x.done)
		}
	}
}

// resultSpacing is the least time between two transactions that record
// results. A worker waits for its results to be recorded, so under load the
// next sends gather meanwhile: at 700 callbacks a second that is about 10
// results a commit instead of 2, and a result is recorded at most this much
// later. A result lost to a crash in that time means one more attempt, which
// receivers deduplicate by webhook-id, as for any crash between send and record.
const resultSpacing = 15 * time.Millisecond

// maxResponseBody is how much of the merchant's answer is kept in the log.
const maxResponseBody = 1 << 10

// attempt sends c once and sets its new state from the outcome.
func (e *Engine) attempt(ctx context.Context, c *Callback) attempt {
	a := e.send(ctx, c)
	now := e.cfg.Now()
	a.CreatedAt = now
	down := !a.Success && receiverDown(a)
	if e.brk.record(now, a.Success, down) {
		e.log.LogAttrs(ctx, slog.LevelWarn, "callback: the receiver is down; sending paused, probing",
			slog.Int("failures_in_a_row", e.cfg.BreakerThreshold), slog.String("error_class", a.ErrorClass))
	}
	switch {
	case a.Success:
		c.Status, c.LastError, c.DeliveredAt = StatusSucceeded, "", &now
	case a.StatusCode == http.StatusGone:
		c.Status, c.LastError = StatusFailed, "410 Gone: the receiver asked for no more attempts"
	case c.Attempts >= len(e.cfg.Schedule):
		c.Status, c.LastError = StatusFailed, a.Error
	default:
		c.Status, c.LastError = StatusPending, a.Error
		c.NextAttemptAt = now.Add(e.delay(c.Attempts, a.retryAfter))
	}
	return a
}

// record stores the attempts of a claimed batch: in one transaction when
// the Queue can (BatchQueue), else one by one; then logs and reports them.
func (e *Engine) record(ctx context.Context, cbs []Callback, results []attempt) {
	applied := make([]bool, len(cbs))
	errs := make([]error, len(cbs))
	if bq, ok := e.cfg.Queue.(BatchQueue); ok && len(cbs) > 1 {
		rs := make([]Result, len(cbs))
		for i := range cbs {
			rs[i] = Result{Callback: &cbs[i], Attempt: results[i].Attempt}
		}
		ok, err := bq.RecordCallbackAttempts(ctx, rs)
		for i := range cbs {
			if err != nil {
				errs[i] = err
			} else {
				applied[i] = ok[i]
			}
		}
	} else {
		for i := range cbs {
			applied[i], errs[i] = e.cfg.Queue.RecordCallbackAttempt(ctx, &cbs[i], results[i].Attempt)
		}
	}
	for i := range cbs {
		c, a := &cbs[i], results[i]
		if errs[i] != nil {
			e.log.LogAttrs(ctx, slog.LevelError, "callback: recording attempt failed", slog.String("callback_id", c.ID), slog.String("error", errs[i].Error()))
		} else if !applied[i] {
			e.log.LogAttrs(ctx, slog.LevelWarn, "callback: lease lost before the result was recorded; result kept in the log only",
				slog.String("callback_id", c.ID), slog.Int("attempt", c.Attempts))
		}
		if !a.Success {
			e.log.LogAttrs(ctx, slog.LevelWarn, "callback: attempt failed", slog.String("callback_id", c.ID),
				slog.Int("attempt", c.Attempts), slog.Int("status", a.StatusCode), slog.String("error_class", a.ErrorClass),
				slog.String("next_status", string(c.Status)))
		}
		if e.cfg.OnAttempt != nil {
			e.cfg.OnAttempt(a.Attempt)
		}
	}
}

// receiverDown reports a failure that says the receiver is unavailable, as
// opposed to one that refuses this callback.
func receiverDown(a attempt) bool {
	switch {
	case a.ErrorClass == "timeout", a.ErrorClass == "connect", a.ErrorClass == "dns", a.ErrorClass == "tls":
		return true
	case a.StatusCode >= 500, a.StatusCode == http.StatusTooManyRequests:
		return true
	}
	return false
}

// delay is the wait after failed attempt n (1-based): the schedule's next
// step plus up to Jitter of it, or the receiver's Retry-After if later.
func (e *Engine) delay(n int, retryAfter time.Duration) time.Duration {
	step := e.cfg.Schedule[n]
	if e.cfg.Jitter > 0 && step > 0 {
		step += time.Duration(rand.Float64() * e.cfg.Jitter * float64(step))
	}
	return max(step, min(retryAfter, e.cfg.MaxRetryAfter))
}

type attempt struct {
	Attempt
	retryAfter time.Duration
}

// send makes the HTTP request of one attempt.
func (e *Engine) send(ctx context.Context, c *Callback) attempt {
	a := attempt{Attempt: Attempt{CallbackID: c.ID, WebhookEventID: c.WebhookEventID, PaymentID: c.PaymentID, URL: c.URL, Attempt: c.Attempts}}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(c.Payload))
	if err != nil {
		a.Error, a.ErrorClass = "invalid callback URL", "connect"
		return a
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "paygate-callbacks/1")
	e.signer.Headers(req.Header, c.ID, e.cfg.Now(), c.Payload)
	start := time.Now()
	resp, err := e.client.Do(req)
	if err != nil {
		a.DurationMs = time.Since(start).Milliseconds()
		a.ErrorClass, a.Error = classify(err)
		return a
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	resp.Body.Close()
	a.DurationMs = time.Since(start).Milliseconds()
	a.StatusCode, a.ResponseBody = resp.StatusCode, printable(body)
	switch {
	case rerr != nil && errors.Is(rerr, context.DeadlineExceeded):
		a.ErrorClass, a.Error = "timeout", "the response did not complete within the timeout"
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		a.Success = true
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		a.ErrorClass, a.Error = "redirect", fmt.Sprintf("HTTP %d: redirects are not followed", resp.StatusCode)
	default:
		a.ErrorClass, a.Error = "http", fmt.Sprintf("HTTP %d", resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			a.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), e.cfg.Now())
		}
	}
	return a
}

// classify names what went wrong with a request that got no response.
func classify(err error) (class, msg string) {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var tlsErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return "timeout", "no response within the timeout"
	case errors.As(err, &dnsErr):
		return "dns", "the callback host could not be resolved"
	case errors.As(err, &tlsErr) || errors.As(err, &recErr):
		return "tls", "TLS handshake with the callback host failed"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return "connect", "could not connect to the callback host"
	default:
		return "connect", "the request failed before a response: " + errText(err)
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// errText keeps an error short for the log.
func errText(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200] // a rune cut here is dropped by printable
	}
	return printable([]byte(s))
}

// printable makes a response body storable as text: valid UTF-8 (a rune cut
// at the 1 KiB limit is dropped), no NUL bytes.
func printable(b []byte) string {
	return strings.ReplaceAll(strings.ToValidUTF8(string(b), ""), "\x00", "")
}

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseUint(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if n == 0 && err == nil {
			return 0
		}
		if err != nil || n > uint64(math.MaxInt64/int64(time.Second)) {
			return math.MaxInt64 // past any cap: the cap (MaxRetryAfter)
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
