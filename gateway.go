package paygate

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/charge"
	session "github.com/stripe/stripe-go/v76/checkout/session"
	"github.com/stripe/stripe-go/v76/dispute"
	"github.com/stripe/stripe-go/v76/event"
	"github.com/stripe/stripe-go/v76/paymentintent"
	"github.com/stripe/stripe-go/v76/paymentlink"
	"github.com/stripe/stripe-go/v76/price"
	"github.com/stripe/stripe-go/v76/refund"
	"github.com/stripe/stripe-go/v76/webhookendpoint"

	"github.com/numedapp/paygate/callback"
)

// StripeAPIVersion is the Stripe API version paygate speaks (stripe-go v76).
// Point webhook endpoints at this version.
const StripeAPIVersion = stripe.APIVersion

// Config configures a Gateway. It is taken by value; New applies the
// defaults below to its own copy.
type Config struct {
	// Store persists payments. Required: store.New(pool) is the PostgreSQL
	// implementation. The Gateway never opens a database or migrates one.
	Store Store

	// StripeSecretKey is the Stripe secret key (sk_test_…, sk_live_…, or a
	// restricted rk_… key). Without one the Gateway serves stored data but
	// every call that needs Stripe fails with code unavailable, and
	// readiness reports not ready.
	StripeSecretKey string
	// StripePublishableKey (pk_…) is returned by Config() for payment pages.
	StripePublishableKey string
	// StripeAPIBase is the base URL of Stripe's API. Default: Stripe's own.
	// Tests point it at stripe-mock.
	StripeAPIBase string
	// HTTPClient makes the calls to Stripe. Default: a client with a 30 s timeout.
	HTTPClient *http.Client
	// StripeMaxNetworkRetries is how often a Stripe call is retried on
	// network errors and 5xx/409 answers (with the same idempotency key).
	// Default 2; set a negative value for none.
	StripeMaxNetworkRetries int

	// Auth authenticates requests to every route of Handler that is not
	// public (Route.Public). BearerKeys is the ready implementation. New
	// refuses a Config with neither Auth nor InsecureNoAuth.
	Auth AuthFunc
	// InsecureNoAuth serves the API without authentication. Set it only
	// when the embedding application authenticates requests itself before
	// they reach Handler.
	InsecureNoAuth bool
	// RateLimit is the sustained number of API requests per second each
	// caller (API key) may make; past it requests are answered 429 with
	// Retry-After. Zero means no limit (the default in the library).
	RateLimit float64
	// RateBurst is how many requests a caller may make at once. Default
	// twice RateLimit.
	RateBurst int

	// WebhookSecrets are the signing secrets (whsec_…) of the Stripe
	// webhook endpoint; an event verifies against any of them, so a secret
	// can be rotated. Empty strings are ignored. Without one, webhooks are
	// refused with 503.
	WebhookSecrets []string
	// WebhookTolerance is how far a signature's timestamp may be from now,
	// in the past or the future. Default DefaultWebhookTolerance (300 s).
	WebhookTolerance time.Duration

	// CallbackURL is the merchant's endpoint for callbacks (absolute
	// http(s)). Without it no callback is queued. Run delivers them.
	CallbackURL string
	// NoWebhookBatching records every webhook event in a transaction of its
	// own. By default, when the Store can (store.Store can), concurrent
	// webhook events share a transaction and its commit (group commit);
	// each is still answered only after its commit.
	NoWebhookBatching bool

	// CallbackSecrets sign the callbacks (whsec_…, base64 of 24+ random
	// bytes; several during a rotation, the first signs; empty strings are
	// ignored). Run refuses to start without one when CallbackURL is set:
	// the callbacks queued could never be sent.
	CallbackSecrets []string
	// CallbackEngine tunes the callback delivery Run starts (Timeout,
	// Schedule, Workers, PollInterval, HTTPClient, …; zero fields take the
	// callback package's defaults). Its Queue, Secrets, Logger and
	// OnAttempt are set by the Gateway, from Store, CallbackSecrets, Logger
	// and its metrics; Now defaults to Config.Now.
	CallbackEngine callback.Config
	// OnCallbacksQueued, if set, is called after a transaction queued
	// callbacks. Run's engine is woken on its own; this is for an engine
	// run outside Run.
	OnCallbacksQueued func()

	// ReconcileInterval is how often Run catches up with Stripe
	// (Reconcile): the Events API since the last pass, then every payment
	// that is not final. Default DefaultReconcileInterval (15 min); a
	// negative value turns the loop off. Nothing is reconciled without a
	// StripeSecretKey. The first pass runs one interval after Run starts.
	ReconcileInterval time.Duration
	// ReconcileBudget bounds the sweep of non-final payments in one pass;
	// the next pass resumes where it stopped. Default
	// DefaultReconcileBudget (5 min).
	ReconcileBudget time.Duration
	// WebhookEndpointURL is the public URL Stripe sends events to
	// (https://your-host/api/webhooks/stripe). Run and Health check that
	// Stripe's webhook endpoint for it is pinned to StripeAPIVersion and
	// enabled for every handled event type. Default: any endpoint whose
	// URL path ends in WebhookPath.
	WebhookEndpointURL string

	// DefaultCurrency is used when a request names none. Default "usd".
	DefaultCurrency string

	// SystemLogs turns on the system log (API.md §5): a row for every API
	// request, webhook outcome, payment action and error, written in batches
	// off the request path by Run (without Run, rows wait in the buffer
	// until Close writes them; past the buffer they are dropped).
	SystemLogs bool
	// SystemLogBuffer bounds the rows waiting to be written; past it rows
	// are dropped and counted. Default DefaultSystemLogBuffer.
	SystemLogBuffer int
	// SystemLogRetention is how long rows are kept: Run's housekeeping
	// deletes older ones (with SystemLogs on or off). Default 30 days.
	SystemLogRetention time.Duration
	// Metrics turns on Prometheus metrics: GET /metrics on Handler, and
	// MetricsHandler. Off by default.
	Metrics bool
	// Secrets are further values to keep out of logs and system log rows
	// (API keys, callback secrets); the Stripe key and webhook secrets are
	// always kept out, and so is anything shaped like a credential.
	Secrets []string

	// Logger receives the Gateway's logs. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Version is reported by the health endpoint. Default "dev".
	Version string
	// DisableDocs turns off the docs page (GET /docs: the guide and the
	// test payment page). GET /api/openapi.json is always served.
	DisableDocs bool

	// backend replaces the Stripe backend (tests record calls with it).
	backend stripe.Backend
}

// Gateway takes payments through Stripe and keeps their record in a Store.
// It is safe for concurrent use.
type Gateway struct {
	cfg     Config
	store   Store
	log     *slog.Logger
	api     *stripeClients // nil without a secret key
	started time.Time

	// stripeAuthFailed is set when the last Stripe call failed to
	// authenticate, and cleared by the next one that does not.
	stripeAuthFailed atomic.Bool
	limiter          *rateLimiter
	logs             *logWriter // nil unless SystemLogs
	metrics          *metrics   // nil unless Metrics
	secrets          []string   // redacted from logs by value
	ingest           *batcher   // nil unless the Store records webhook events in batches

	running     atomic.Bool                     // Run has been called
	engine      atomic.Pointer[callback.Engine] // Run's callback engine, while it runs
	leaseID     string                          // this Gateway's holder name for leases
	reconciling sync.Mutex                      // held by the pass running in this process
	endpoint    atomic.Pointer[EndpointCheck]   // the last webhook endpoint check
}

// New validates cfg, applies its defaults and returns a Gateway. It starts
// nothing: the API (Handler and the methods) works at once; Run runs the
// background parts (callback delivery, reconciliation, housekeeping, the
// system log writer). It returns a *Error naming the offending Config field
// when cfg is invalid.
func New(cfg Config) (*Gateway, error) {
	if cfg.Store == nil {
		return nil, configError("Store", "is required")
	}
	if cfg.Auth == nil && !cfg.InsecureNoAuth {
		return nil, configError("Auth", "is required (paygate.BearerKeys), or set InsecureNoAuth when your own middleware authenticates requests")
	}
	if k := cfg.StripeSecretKey; k != "" && !hasAnyPrefix(k, "sk_test_", "sk_live_", "rk_test_", "rk_live_") {
		return nil, configError("StripeSecretKey", "must be a Stripe secret key (sk_test_…, sk_live_…, rk_…)")
	}
	if k := cfg.StripePublishableKey; k != "" && !hasAnyPrefix(k, "pk_test_", "pk_live_") {
		return nil, configError("StripePublishableKey", "must be a Stripe publishable key (pk_test_…, pk_live_…)")
	}
	if cfg.StripeAPIBase != "" {
		u, err := url.Parse(cfg.StripeAPIBase)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, configError("StripeAPIBase", "must be an absolute http(s) URL")
		}
	}
	cfg.WebhookSecrets, cfg.CallbackSecrets = nonEmpty(cfg.WebhookSecrets), nonEmpty(cfg.CallbackSecrets)
	for _, s := range cfg.WebhookSecrets {
		if !strings.HasPrefix(s, "whsec_") || len(s) < len("whsec_")+8 {
			return nil, configError("WebhookSecrets", "must hold Stripe webhook signing secrets (whsec_…)")
		}
	}
	if cfg.CallbackURL != "" {
		if err := checkURL("CallbackURL", cfg.CallbackURL); err != nil {
			return nil, configError("CallbackURL", "must be an absolute http(s) URL")
		}
	}
	if len(cfg.CallbackSecrets) > 0 {
		if _, err := callback.NewSigner(cfg.CallbackSecrets...); err != nil {
			return nil, configError("CallbackSecrets", "must hold whsec_ secrets of at least 24 random bytes (base64)")
		}
	}
	if cfg.WebhookEndpointURL != "" {
		if err := checkURL("WebhookEndpointURL", cfg.WebhookEndpointURL); err != nil {
			return nil, configError("WebhookEndpointURL", "must be an absolute http(s) URL")
		}
	}
	if cfg.ReconcileInterval == 0 {
		cfg.ReconcileInterval = DefaultReconcileInterval
	}
	if cfg.ReconcileBudget <= 0 {
		cfg.ReconcileBudget = DefaultReconcileBudget
	}
	if cfg.WebhookTolerance == 0 {
		cfg.WebhookTolerance = DefaultWebhookTolerance
	} else if cfg.WebhookTolerance < 0 {
		return nil, configError("WebhookTolerance", "must not be negative")
	}
	if cfg.DefaultCurrency == "" {
		cfg.DefaultCurrency = "usd"
	}
	cur, err := LookupCurrency(cfg.DefaultCurrency)
	if err != nil {
		return nil, configError("DefaultCurrency", "is not a currency Stripe supports")
	}
	cfg.DefaultCurrency = cur.Code
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.StripeMaxNetworkRetries == 0 {
		cfg.StripeMaxNetworkRetries = 2
	} else if cfg.StripeMaxNetworkRetries < 0 {
		cfg.StripeMaxNetworkRetries = 0
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.RateLimit < 0 {
		return nil, configError("RateLimit", "must not be negative")
	}
	if cfg.SystemLogBuffer <= 0 {
		cfg.SystemLogBuffer = DefaultSystemLogBuffer
	}
	if cfg.SystemLogRetention <= 0 {
		cfg.SystemLogRetention = DefaultSystemLogRetention
	}
	g := &Gateway{cfg: cfg, store: cfg.Store, limiter: newRateLimiter(cfg.RateLimit, cfg.RateBurst), leaseID: newID("gw")}
	user := cfg.OnCallbacksQueued
	g.cfg.OnCallbacksQueued = func() {
		if user != nil {
			user()
		}
		g.wakeCallbacks()
	}
	g.secrets = append(append(append([]string{cfg.StripeSecretKey}, cfg.WebhookSecrets...), cfg.CallbackSecrets...), cfg.Secrets...)
	g.log = slog.New(contextHandler{Handler: cfg.Logger.Handler(), redact: g.redact})
	if cfg.Metrics {
		g.metrics = newMetrics(g)
	}
	if cfg.SystemLogs {
		g.logs = newLogWriter(g, cfg.SystemLogBuffer)
	}
	g.started = g.now()
	if bs, ok := cfg.Store.(WebhookBatchStore); ok && !cfg.NoWebhookBatching {
		g.ingest = &batcher{store: bs, observe: g.metrics.ingestBatch, left: g.deliverLeft}
	}
	if cfg.StripeSecretKey != "" {
		backend := cfg.backend
		if backend == nil {
			bc := &stripe.BackendConfig{
				HTTPClient:        cfg.HTTPClient,
				MaxNetworkRetries: stripe.Int64(int64(cfg.StripeMaxNetworkRetries)),
				LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
			}
			if cfg.StripeAPIBase != "" {
				bc.URL = stripe.String(cfg.StripeAPIBase)
			}
			backend = stripe.GetBackendWithConfig(stripe.APIBackend, bc)
		}
		backend = &observedBackend{Backend: backend, g: g}
		g.api = newStripeClients(cfg.StripeSecretKey, backend)
	}
	return g, nil
}

// nonEmpty drops empty strings (an unset variable) from a list of secrets.
func nonEmpty(list []string) []string {
	var out []string
	for _, s := range list {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func configError(field, msg string) *Error {
	return &Error{Code: CodeInvalid, Param: field, Message: "paygate.Config." + field + " " + msg}
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func (g *Gateway) now() time.Time { return g.cfg.Now().UTC().Truncate(time.Microsecond) }

// stripeAPI returns the Stripe client, or a *Error when no key is configured.
func (g *Gateway) stripeAPI() (*stripeClients, error) {
	if g.api == nil {
		return nil, &Error{Code: CodeUnavailable, Message: "Stripe is not configured on this service"}
	}
	return g.api, nil
}

// stripeError maps a Stripe call's error for the caller and logs what the
// operator needs (Stripe's request id, type and code; never the key).
func (g *Gateway) stripeError(ctx context.Context, err error) *Error {
	e := fromStripe(err)
	var se *stripe.Error
	if errors.As(err, &se) {
		g.metrics.stripeError(string(se.Type))
		if se.HTTPStatusCode == http.StatusUnauthorized || se.HTTPStatusCode == http.StatusForbidden {
			g.syslog(ctx, LevelError, SourceError, "Stripe refused this service's credentials", map[string]any{"stripeStatus": se.HTTPStatusCode})
		}
		g.log.LogAttrs(ctx, slog.LevelWarn, "paygate: stripe call failed",
			slog.Int("stripe_status", se.HTTPStatusCode), slog.String("stripe_type", string(se.Type)),
			slog.String("stripe_code", string(se.Code)), slog.String("stripe_request_id", se.RequestID))
	}
	return e
}

// observedBackend watches every Stripe call's outcome for health.
type observedBackend struct {
	stripe.Backend
	g *Gateway
}

func (b *observedBackend) observe(err error) error {
	var se *stripe.Error
	if errors.As(err, &se) && (se.HTTPStatusCode == http.StatusUnauthorized || se.HTTPStatusCode == http.StatusForbidden) {
		b.g.stripeAuthFailed.Store(true)
	} else if err == nil {
		b.g.stripeAuthFailed.Store(false)
	}
	return err
}

func (b *observedBackend) Call(method, path, key string, params stripe.ParamsContainer, v stripe.LastResponseSetter) error {
	// Every time the request is written to a connection counts: stripe-go's
	// own retries, and net/http's resend of a request whose reused
	// connection closed before any answer (it resends a POST that carries
	// an Idempotency-Key header, as stripe-go's do).
	var sent atomic.Int32
	if params != nil {
		p := params.GetParams()
		ctx := p.Context
		if ctx == nil {
			ctx = context.Background()
		}
		p.Context = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { sent.Add(1) }})
	}
	err := b.Backend.Call(method, path, key, params, v)
	if err != nil && sent.Load() > 1 {
		err = &retriedCall{err}
	}
	return b.observe(err)
}

// retriedCall is the error of a Stripe call sent more than once (stripe-go
// retries a timeout, a network error, a 409, a lock timeout or a 503
// itself, with the same idempotency key; net/http resends a request whose
// connection closed before an answer). Its last answer speaks only
// for the last attempt: an earlier one may have been carried out, so even a
// 4xx does not prove that Stripe made nothing (see stripeRefused).
type retriedCall struct{ err error }

func (e *retriedCall) Error() string { return e.err.Error() }
func (e *retriedCall) Unwrap() error { return e.err }

// PublicConfig is what a payment page needs to talk to Stripe.
type PublicConfig struct {
	PublishableKey string `json:"publishableKey"`
	Currency       string `json:"currency"`
}

// PublicConfig returns the publishable key and default currency. Both are
// public by design.
func (g *Gateway) PublicConfig() PublicConfig {
	return PublicConfig{PublishableKey: g.cfg.StripePublishableKey, Currency: g.cfg.DefaultCurrency}
}

// Health is the detailed health report (API.md §5).
type Health struct {
	Status  string       `json:"status"` // "ok" or "degraded"
	Service string       `json:"service"`
	Version string       `json:"version"`
	Uptime  int64        `json:"uptime"` // seconds
	Checks  HealthChecks `json:"checks"`
}

// HealthChecks are the parts of Health.
type HealthChecks struct {
	Database   HealthDatabase   `json:"database"`
	Stripe     HealthStripe     `json:"stripe"`
	Callback   HealthCallback   `json:"callback"`
	SystemLogs HealthSystemLogs `json:"systemLogs"`
}

// HealthSystemLogs reports the system log writer.
type HealthSystemLogs struct {
	Enabled bool  `json:"enabled"`
	Dropped int64 `json:"dropped"` // rows dropped since start (buffer full)
}

// HealthDatabase reports a real round trip to the database.
type HealthDatabase struct {
	Status    string `json:"status"` // "up" or "down"
	LatencyMs int64  `json:"latencyMs"`
	Error     string `json:"error,omitempty"`
}

// HealthStripe reports whether Stripe calls can succeed.
type HealthStripe struct {
	Status    string `json:"status"`    // "up", "down" (authentication failed) or "not_configured"
	SecretKey bool   `json:"secretKey"` // whether a secret key is configured (the guide's shape); never the key
	// WebhookEndpoint is the last check of Stripe's webhook endpoint for
	// this service (made when Run starts); nil before one ran.
	WebhookEndpoint *EndpointCheck `json:"webhookEndpoint,omitempty"`
}

// HealthCallback reports whether callbacks to the merchant are configured
// and how many wait to be delivered.
type HealthCallback struct {
	Status     string `json:"status"` // "optional"
	Configured bool   `json:"configured"`
	// Delivering is true while Run's engine sends callbacks in this
	// process (false without Run: queued callbacks wait).
	Delivering bool  `json:"delivering"`
	QueueDepth int64 `json:"queueDepth"`
}

// Health measures the database with a real round trip and reports Stripe's
// and the callbacks' state. Ready reports whether the service can take
// payments: the database answers and a Stripe key is set.
func (g *Gateway) Health(ctx context.Context) (h Health, ready bool) {
	h = Health{Status: "ok", Service: "paygate", Version: g.cfg.Version, Uptime: int64(g.now().Sub(g.started) / time.Second)}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	start := time.Now()
	err := g.store.Ping(ctx)
	h.Checks.Database = HealthDatabase{Status: "up", LatencyMs: time.Since(start).Milliseconds()}
	if err != nil {
		h.Checks.Database.Status = "down"
		h.Checks.Database.Error = "database unreachable"
		g.log.LogAttrs(ctx, slog.LevelError, "paygate: health: database ping failed", attrErr(err))
	}
	switch {
	case g.api == nil:
		h.Checks.Stripe = HealthStripe{Status: "not_configured", SecretKey: false}
	case g.stripeAuthFailed.Load():
		h.Checks.Stripe = HealthStripe{Status: "down", SecretKey: true}
	default:
		h.Checks.Stripe = HealthStripe{Status: "up", SecretKey: true}
	}
	h.Checks.Stripe.WebhookEndpoint = g.endpoint.Load()
	h.Checks.Callback = HealthCallback{Status: "optional", Configured: g.cfg.CallbackURL != "", Delivering: g.engine.Load() != nil}
	if err == nil {
		if n, qerr := g.store.CallbackQueueDepth(ctx); qerr == nil {
			h.Checks.Callback.QueueDepth = n
		}
	}
	h.Checks.SystemLogs = HealthSystemLogs{Enabled: g.logs != nil, Dropped: g.SystemLogsDropped()}
	ready = err == nil && g.api != nil
	if !ready || h.Checks.Stripe.Status != "up" {
		h.Status = "degraded"
	}
	return h, ready
}

// contextHandler adds the request id of the context to every log record,
// and masks secrets in its message and string attributes.
type contextHandler struct {
	slog.Handler
	redact func(string) string
}

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	nr := slog.NewRecord(r.Time, r.Level, h.redact(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		nr.AddAttrs(h.redactAttr(a))
		return true
	})
	if id := RequestIDFrom(ctx); id != "" {
		nr.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, nr)
}

func (h contextHandler) redactAttr(a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.redact(a.Value.String()))
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			return slog.String(a.Key, h.redact(err.Error()))
		}
	}
	return a
}

func (h contextHandler) WithAttrs(as []slog.Attr) slog.Handler {
	for i := range as {
		as[i] = h.redactAttr(as[i])
	}
	return contextHandler{h.Handler.WithAttrs(as), h.redact}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name), h.redact}
}

func attrErr(err error) slog.Attr { return slog.String("error", err.Error()) }

func attrPayment(id string) slog.Attr { return slog.String("payment_id", id) }

// stripeClients are the clients of the Stripe resources paygate calls.
// stripe-go's client.API holds one for every resource of the API (some 130
// packages): linked in, they made paymentd's binary larger and its resident
// code, touched at start-up, a few MB more.
type stripeClients struct {
	Charges          *charge.Client
	CheckoutSessions *session.Client
	Disputes         *dispute.Client
	Events           *event.Client
	PaymentIntents   *paymentintent.Client
	PaymentLinks     *paymentlink.Client
	Prices           *price.Client
	Refunds          *refund.Client
	WebhookEndpoints *webhookendpoint.Client
}

func newStripeClients(key string, b stripe.Backend) *stripeClients {
	return &stripeClients{
		Charges:          &charge.Client{B: b, Key: key},
		CheckoutSessions: &session.Client{B: b, Key: key},
		Disputes:         &dispute.Client{B: b, Key: key},
		Events:           &event.Client{B: b, Key: key},
		PaymentIntents:   &paymentintent.Client{B: b, Key: key},
		PaymentLinks:     &paymentlink.Client{B: b, Key: key},
		Prices:           &price.Client{B: b, Key: key},
		Refunds:          &refund.Client{B: b, Key: key},
		WebhookEndpoints: &webhookendpoint.Client{B: b, Key: key},
	}
}
