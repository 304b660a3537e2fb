// Package paygatetest helps teams test code that embeds paygate: one call
// gives a test a running Gateway on a throwaway store, wired to an
// in-process Stripe stand-in (package sandbox) that delivers its webhooks
// to the Gateway on the same clock, the Gateway's API on an httptest
// server, and a merchant endpoint that records the callbacks it receives
// (verified with package callback/verify).
//
//	func TestOrderPaid(t *testing.T) {
//		env := paygatetest.New(t)
//		p, err := env.Gateway.CreatePaymentLink(ctx, paygate.PaymentLinkParams{Amount: "19.99"})
//		...
//		env.Succeed(p.ID)                              // the customer pays; webhooks arrive
//		cb := env.WaitCallback(p.ID, verify.ActionPaymentSucceeded)
//	}
//
// The store is pluggable ([WithStore]); the default, [PostgresStore], is a
// fresh schema in a throwaway PostgreSQL cluster that the package starts
// itself from the PostgreSQL binaries on the machine (or the database at
// $PAYGATE_TEST_DATABASE_URL). Call [Main] from TestMain to stop that
// cluster when the tests end.
//
// Webhooks for your own handlers: [SignStripeEvent] signs a payload the way
// Stripe does.
package paygatetest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/sandbox"
)

// APIKey is the bearer token the Gateway of an [Env] accepts.
const APIKey = "paygatetest-api-key-0123456789"

// StripeSecretKey is the (test) key the Gateway sends to the sandbox.
const StripeSecretKey = "sk_test_paygatetest"

// Test cards the sandbox knows (see package sandbox for all of them).
const (
	CardSucceeds          = "4242424242424242"
	CardDeclined          = "4000000000000002"
	CardInsufficientFunds = "4000000000009995"
	CardDisputed          = "4000000000000259"
)

// StoreFunc makes a fresh, migrated store for one test; it fails the test
// when it cannot, and releases the store in t.Cleanup.
type StoreFunc func(t TB) paygate.Store

type options struct {
	store       StoreFunc
	config      []func(*paygate.Config)
	sandbox     []func(*sandbox.Config)
	noRun       bool
	autoDeliver bool
	status      int
}

// Option configures [New].
type Option func(*options)

// WithStore makes the Gateway's store with f instead of [PostgresStore].
func WithStore(f StoreFunc) Option { return func(o *options) { o.store = f } }

// WithConfig changes the Gateway's Config before New is called (after
// paygatetest filled in the store, Stripe, webhook, callback and auth
// fields, which it may override).
func WithConfig(f func(*paygate.Config)) Option {
	return func(o *options) { o.config = append(o.config, f) }
}

// WithSandbox changes the sandbox's Config before it starts.
func WithSandbox(f func(*sandbox.Config)) Option {
	return func(o *options) { o.sandbox = append(o.sandbox, f) }
}

// WithoutRun does not start Gateway.Run: no callback is sent, nothing is
// reconciled. For tests that drive those parts themselves.
func WithoutRun() Option { return func(o *options) { o.noRun = true } }

// WithAutoDeliver makes the sandbox deliver webhooks in the background as
// soon as they are due, as Stripe does, instead of when a helper (or the
// test, with Sandbox.DeliverAll) says so.
func WithAutoDeliver() Option { return func(o *options) { o.autoDeliver = true } }

// WithCallbackStatus makes the merchant endpoint answer every callback with
// status (default 200), to test retries.
func WithCallbackStatus(status int) Option { return func(o *options) { o.status = status } }

// Env is a running Gateway and everything around it. Its fields are ready
// to use; everything is stopped when the test ends.
type Env struct {
	// Gateway is running (Run) unless WithoutRun was given.
	Gateway *paygate.Gateway
	// Config is the Config the Gateway was made with.
	Config paygate.Config
	// Sandbox is the Stripe stand-in the Gateway talks to. Its webhooks go
	// to the Gateway's WebhookPath on Server, signed with a secret the
	// Gateway accepts; its clock (Sandbox.Now) is the Gateway's clock.
	Sandbox *sandbox.Sandbox
	// Server serves Gateway.Handler(); requests need Authorization: Bearer
	// APIKey (see Do).
	Server *httptest.Server
	// Callbacks records the callbacks the Gateway sends to the merchant.
	Callbacks *Recorder

	t TB
}

// New starts an Env for the test and stops it in t.Cleanup. It fails the
// test when anything cannot start.
func New(t TB, opts ...Option) *Env {
	t.Helper()
	o := options{store: PostgresStore, status: http.StatusOK}
	for _, f := range opts {
		f(&o)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	scfg := sandbox.Config{APIKey: StripeSecretKey, AutoDeliver: o.autoDeliver, Logger: quiet}
	for _, f := range o.sandbox {
		f(&scfg)
	}
	sb, err := sandbox.NewServer(scfg)
	if err != nil {
		t.Fatalf("paygatetest: sandbox: %v", err)
	}
	t.Cleanup(sb.Close)

	secret := newCallbackSecret(t)
	rec := newRecorder(secret, sb.Now, o.status)
	t.Cleanup(rec.server.Close)

	auth, err := paygate.BearerKeys(APIKey)
	if err != nil {
		t.Fatalf("paygatetest: %v", err)
	}
	cfg := paygate.Config{
		Store:                   o.store(t),
		StripeSecretKey:         StripeSecretKey,
		StripePublishableKey:    "pk_test_paygatetest",
		StripeAPIBase:           sb.URL(),
		StripeMaxNetworkRetries: -1,
		Auth:                    auth,
		WebhookSecrets:          []string{sb.WebhookSecret()},
		CallbackURL:             rec.server.URL + "/callbacks",
		CallbackSecrets:         []string{secret},
		ReconcileInterval:       -1,
		Logger:                  quiet,
		Now:                     sb.Now,
		Secrets:                 []string{APIKey, secret},
	}
	for _, f := range o.config {
		f(&cfg)
	}
	gw, err := paygate.New(cfg)
	if err != nil {
		t.Fatalf("paygatetest: paygate.New: %v", err)
	}
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(srv.Close)
	if err := sb.SetWebhook(srv.URL+paygate.WebhookPath, ""); err != nil {
		t.Fatalf("paygatetest: %v", err)
	}
	sb.Run()

	e := &Env{Gateway: gw, Config: cfg, Sandbox: sb, Server: srv, Callbacks: rec, t: t}
	if !o.noRun {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- gw.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("paygatetest: Gateway.Run: %v", err)
			}
		})
	} else {
		t.Cleanup(func() { _ = gw.Close(context.Background()) })
	}
	return e
}

func newCallbackSecret(t TB) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("paygatetest: %v", err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// Do sends a request to the Gateway's API with the Env's API key and
// returns the response with its body read. body is JSON text ("" for
// none). It fails the test only when the request cannot be sent.
func (e *Env) Do(method, path, body string) (*http.Response, []byte) {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.Server.URL+path, r)
	if err != nil {
		e.t.Fatalf("paygatetest: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+APIKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := e.Server.Client().Do(req)
	if err != nil {
		e.t.Fatalf("paygatetest: %s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("paygatetest: %s %s: %v", method, path, err)
	}
	return res, b
}

// SignStripeEvent returns the Stripe-Signature header Stripe would send
// with payload, signed with the endpoint's secret (whsec_…) at time t:
// "t=<unix>,v1=<hex HMAC-SHA256>". Like stripe-go's
// webhook.GenerateTestSignedPayload, for tests of webhook handlers:
//
//	sig := paygatetest.SignStripeEvent(body, secret, time.Now())
//	res, err := gw.HandleWebhook(ctx, body, sig)
func SignStripeEvent(payload []byte, secret string, t time.Time) string {
	return sandbox.Sign(payload, secret, t)
}
