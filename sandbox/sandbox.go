package sandbox

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// APIVersion is the Stripe API version whose shapes the sandbox speaks.
const APIVersion = "2023-10-16"

// DefaultWebhookEvents are the events the sandbox's webhook endpoint is
// enabled for when Config.WebhookEvents is empty: every event it emits.
var DefaultWebhookEvents = []string{"*"}

// DefaultRetrySchedule is how long the sandbox waits before retrying a
// webhook delivery that did not answer 2xx, attempt by attempt. It follows
// Stripe's shape: exponential backoff over about three days, then give up.
var DefaultRetrySchedule = []time.Duration{
	time.Minute, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour,
	10 * time.Hour, 12 * time.Hour, 12 * time.Hour, 12 * time.Hour, 12 * time.Hour,
}

// Config configures a Sandbox. The zero value works: it accepts any
// sk_test_ key, delivers no webhooks until SetWebhook is called, and runs its
// clock on real time.
type Config struct {
	// APIKey, when set, is the only secret key accepted; otherwise any
	// sk_test_/rk_test_ key is. Live keys are always refused.
	APIKey string
	// BaseURL is the public base URL of the sandbox, used in the url of
	// payment links and Checkout Sessions. Start/NewServer set it; set it
	// yourself only when you mount Handler on your own server.
	BaseURL string
	// WebhookURL is where events are delivered (empty: not delivered, only
	// listed). SetWebhook changes it later.
	WebhookURL string
	// WebhookSecret signs deliveries (whsec_...). Default: a random one,
	// readable with WebhookSecret().
	WebhookSecret string
	// WebhookEvents are the event types the endpoint is enabled for
	// (default DefaultWebhookEvents, every event).
	WebhookEvents []string
	// Now is the real clock the sandbox clock runs on (default time.Now).
	// Advance moves the sandbox clock ahead of it.
	Now func() time.Time
	// AutoDeliver delivers webhooks in the background as soon as they are
	// due (and fires timers as the clock passes them). Default false: tests
	// call DeliverAll or Advance, which is deterministic.
	AutoDeliver bool
	// RetrySchedule is the wait before each retry of a failed delivery
	// (default DefaultRetrySchedule); after the last one the event is not
	// retried again.
	RetrySchedule []time.Duration
	// SessionTTL is how long a Checkout Session stays open (default 24h).
	SessionTTL time.Duration
	// DebitSettleAfter is how long a bank debit stays processing before it
	// settles or fails by itself (default 72h).
	DebitSettleAfter time.Duration
	// RefundSettleAfter is how long a pending refund (card 4000000000007726)
	// stays pending before it succeeds (default 30m).
	RefundSettleAfter time.Duration
	// RefundFailAfter is how long a refund on card 4000000000005126 stays
	// succeeded before it fails (default 1h).
	RefundFailAfter time.Duration
	// HTTPClient sends webhooks (default: a client with a 10s timeout).
	HTTPClient *http.Client
	// Logger receives delivery failures and faults (default slog.Default()).
	Logger *slog.Logger
	// Seed seeds the chaos generator (default 1); SetChaos can reseed it.
	Seed uint64
}

// Sandbox is a stateful stand-in for Stripe's API. It is safe for concurrent
// use. Make one with New (then Start, or mount Handler) or NewServer.
type Sandbox struct {
	cfg Config

	mu      sync.Mutex
	offset  time.Duration
	baseURL string
	objs    map[string]obj
	byType  map[string][]string // object type -> ids in creation order
	timed   map[string]bool     // ids of objects with a timed change ahead
	seq     int64
	events  []obj
	idem    map[string]*idemEntry
	faults  []*Fault
	chaos   Chaos
	rng     *mrand.Rand
	queue   []*delivery
	log     []Delivery
	whURL   string
	whSec   string
	whID    string
	whEvts  []string
	whAt    int64

	// curReq is the API request being served (events it causes name it).
	curReq obj
	// deliverMu serializes DeliverAll, so deliveries keep their order when
	// the background deliverer and a test both deliver.
	deliverMu sync.Mutex

	server *http.Server
	served chan struct{}
	stop   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
	kick   chan struct{}
}

// obj is a Stripe object as JSON. Keys starting with "_" are the sandbox's
// own bookkeeping and are never rendered.
type obj = map[string]any

// New returns a Sandbox built from cfg. It starts nothing: call Start to
// serve it on a loopback port, or mount Handler on your own server (set
// Config.BaseURL then). It fails when a key in cfg is a live key or a
// webhook secret does not start with whsec_.
func New(cfg Config) (*Sandbox, error) {
	if isLiveKey(cfg.APIKey) {
		return nil, errors.New("sandbox: Config.APIKey is a live key; the sandbox only takes test keys (sk_test_...)")
	}
	if cfg.APIKey != "" && !strings.HasPrefix(cfg.APIKey, "sk_test_") && !strings.HasPrefix(cfg.APIKey, "rk_test_") {
		return nil, errors.New("sandbox: Config.APIKey must start with sk_test_ or rk_test_")
	}
	if cfg.WebhookSecret != "" && !strings.HasPrefix(cfg.WebhookSecret, "whsec_") {
		return nil, errors.New("sandbox: Config.WebhookSecret must start with whsec_")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RetrySchedule == nil {
		cfg.RetrySchedule = DefaultRetrySchedule
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 24 * time.Hour
	}
	if cfg.DebitSettleAfter <= 0 {
		cfg.DebitSettleAfter = 72 * time.Hour
	}
	if cfg.RefundSettleAfter <= 0 {
		cfg.RefundSettleAfter = 30 * time.Minute
	}
	if cfg.RefundFailAfter <= 0 {
		cfg.RefundFailAfter = time.Hour
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if len(cfg.WebhookEvents) == 0 {
		cfg.WebhookEvents = DefaultWebhookEvents
	}
	if cfg.WebhookSecret == "" {
		cfg.WebhookSecret = "whsec_" + randomString(32)
	}
	s := &Sandbox{
		cfg:     cfg,
		baseURL: strings.TrimRight(cfg.BaseURL, "/"),
		objs:    map[string]obj{},
		byType:  map[string][]string{},
		timed:   map[string]bool{},
		idem:    map[string]*idemEntry{},
		rng:     mrand.New(mrand.NewPCG(cfg.Seed, 0x5a4d)),
		whURL:   cfg.WebhookURL,
		whSec:   cfg.WebhookSecret,
		whID:    "we_" + randomString(24),
		whEvts:  cfg.WebhookEvents,
		stop:    make(chan struct{}),
		kick:    make(chan struct{}, 1),
	}
	s.whAt = cfg.Now().Unix()
	return s, nil
}

// NewServer is New followed by Start: a sandbox served on a loopback port.
func NewServer(cfg Config) (*Sandbox, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.Start(); err != nil {
		return nil, err
	}
	return s, nil
}

// Start serves the sandbox on a fresh 127.0.0.1 port (like
// httptest.NewServer, without importing it into your binary), sets the base URL to it unless Config.BaseURL was
// set, and starts background delivery when Config.AutoDeliver is set.
func (s *Sandbox) Start() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("sandbox: listen: %w", err)
	}
	s.server = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.served = make(chan struct{})
	go func() {
		defer close(s.served)
		_ = s.server.Serve(l)
	}()
	s.mu.Lock()
	if s.baseURL == "" {
		s.baseURL = "http://" + l.Addr().String()
	}
	s.mu.Unlock()
	s.Run()
	return nil
}

// Run starts the background deliverer when Config.AutoDeliver is set (Start
// calls it; call it yourself when you mount Handler). Close stops it.
func (s *Sandbox) Run() {
	if !s.cfg.AutoDeliver {
		return
	}
	s.once.Do(func() {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-s.stop:
					return
				case <-t.C:
				case <-s.kick:
				}
				s.DeliverAll()
			}
		}()
	})
}

// URL is the sandbox's base URL: give it to stripe-go as the API backend URL
// (paygate: Config.StripeAPIBase).
func (s *Sandbox) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseURL
}

// SetBaseURL sets the base URL used in page links (when you serve Handler
// yourself and learn the address only after New).
func (s *Sandbox) SetBaseURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.baseURL = strings.TrimRight(u, "/")
}

// Close stops the server and the background deliverer, and releases
// requests held by hang faults.
func (s *Sandbox) Close() {
	select {
	case <-s.stop:
		return
	default:
		close(s.stop)
	}
	if s.server != nil {
		_ = s.server.Close() // closes the listener and every connection
		<-s.served
	}
	s.wg.Wait()
}

// SetWebhook points webhook delivery at url, signed with secret (empty
// secret keeps the current one). Events already queued go to the new URL.
func (s *Sandbox) SetWebhook(url, secret string) error {
	if secret != "" && !strings.HasPrefix(secret, "whsec_") {
		return errors.New("sandbox: webhook secret must start with whsec_")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.whURL = url
	if secret != "" {
		s.whSec = secret
	}
	return nil
}

// WebhookSecret returns the secret deliveries are signed with.
func (s *Sandbox) WebhookSecret() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.whSec
}

// Now returns the sandbox clock: the real clock plus every Advance.
func (s *Sandbox) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now()
}

func (s *Sandbox) now() time.Time { return s.cfg.Now().Add(s.offset) }

// Advance moves the sandbox clock forward by d. Everything that falls due
// on the way happens at its own time, in time order: sessions expiring, bank
// debits settling, refunds settling or failing, webhook deliveries and their
// retries (each signed with the time it is sent).
func (s *Sandbox) Advance(d time.Duration) {
	if d < 0 {
		d = 0
	}
	s.mu.Lock()
	target := s.now().Add(d)
	s.mu.Unlock()
	for i := 0; i < 100000; i++ {
		s.DeliverAll()
		s.mu.Lock()
		at, fire := s.nextTimer()
		if qat, ok := s.nextDelivery(); ok && (fire == nil || qat.Before(at)) {
			at, fire = qat, func() {}
		}
		if fire == nil || at.After(target) {
			if n := s.now(); target.After(n) {
				s.offset += target.Sub(n)
			}
			s.mu.Unlock()
			break
		}
		if n := s.now(); at.After(n) {
			s.offset += at.Sub(n)
		}
		fire()
		s.mu.Unlock()
	}
	s.DeliverAll()
}

// nextDelivery is when the next queued webhook is due (none without a URL).
// Callers hold mu.
func (s *Sandbox) nextDelivery() (time.Time, bool) {
	if s.whURL == "" || len(s.queue) == 0 {
		return time.Time{}, false
	}
	at := s.queue[0].due
	for _, d := range s.queue[1:] {
		if d.due.Before(at) {
			at = d.due
		}
	}
	return at, true
}

// tick fires every timer due at the current sandbox time. Callers hold mu.
func (s *Sandbox) tick() {
	now := s.now()
	for i := 0; i < 10000; i++ {
		at, fire := s.nextTimer()
		if fire == nil || at.After(now) {
			return
		}
		fire()
	}
}

// nextTimer finds the earliest pending timed change; ties go to the
// object made first, so one history gives one order. It looks only at
// objects in s.timed, dropping those with nothing left to happen. Callers
// hold mu.
func (s *Sandbox) nextTimer() (time.Time, func()) {
	var best time.Time
	var bestSeq int64
	var fire func()
	consider := func(at int64, o obj, f func()) {
		t, seq := time.Unix(at, 0), o["_seq"].(int64)
		if fire == nil || t.Before(best) || t.Equal(best) && seq < bestSeq {
			best, bestSeq, fire = t, seq, f
		}
	}
	for id := range s.timed {
		o := s.objs[id]
		live := false
		switch o["object"] {
		case "checkout.session":
			if o["status"] == "open" {
				live = true
				consider(o["expires_at"].(int64), o, func() { s.expireSession(o) })
			}
		case "payment_intent":
			if at, ok := o["_settle_at"].(int64); ok && o["status"] == "processing" {
				live = true
				consider(at, o, func() { s.settleIntent(o, o["_settle_ok"] == true) })
			}
		case "refund":
			if at, ok := o["_settle_at"].(int64); ok && o["status"] == "pending" {
				live = true
				consider(at, o, func() { s.setRefundStatus(o, "succeeded", "") })
			}
			if at, ok := o["_fail_at"].(int64); ok && o["status"] == "succeeded" {
				live = true
				consider(at, o, func() { s.setRefundStatus(o, "failed", "expired_or_canceled_card") })
			}
		}
		if !live {
			delete(s.timed, id)
		}
	}
	return best, fire
}

// schedule marks o as having a timed change ahead (see nextTimer).
// Callers hold mu.
func (s *Sandbox) schedule(o obj) { s.timed[o["id"].(string)] = true }

// add stores a new object under its type. Callers hold mu.
func (s *Sandbox) add(o obj) {
	id := o["id"].(string)
	typ := o["object"].(string)
	s.seq++
	o["_seq"] = s.seq
	if s.curReq != nil {
		o["_api"] = true // made by an API call, not by a customer or the Dashboard
	}
	s.objs[id] = o
	s.byType[typ] = append(s.byType[typ], id)
}

// get returns the object id of the given type, or nil.
func (s *Sandbox) get(typ, id string) obj {
	o := s.objs[id]
	if o == nil || o["object"] != typ {
		return nil
	}
	return o
}

// render copies o without the sandbox's bookkeeping keys, as JSON would
// show it now (nested values are copied through JSON, so later changes to o
// do not show through).
func render(o obj) obj {
	out := make(obj, len(o))
	for k, v := range o {
		if !strings.HasPrefix(k, "_") {
			out[k] = v
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		panic(err)
	}
	var cp obj
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(&cp); err != nil {
		panic(err)
	}
	return cp
}

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func newID(prefix string) string { return prefix + "_" + randomString(24) }

func isLiveKey(k string) bool {
	return strings.HasPrefix(k, "sk_live_") || strings.HasPrefix(k, "rk_live_") || strings.HasPrefix(k, "pk_live_")
}

// sortedIDs returns the ids of typ newest first (Stripe's list order).
func (s *Sandbox) sortedIDs(typ string) []string {
	ids := s.byType[typ]
	out := make([]string, len(ids))
	for i, id := range ids {
		out[len(ids)-1-i] = id
	}
	return out
}
