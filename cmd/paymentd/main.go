// Command paymentd serves the paygate HTTP API (API.md) as a standalone
// service backed by PostgreSQL.
//
//	paymentd [serve]   run the API (migrates first unless PAYMENTD_MIGRATE=0)
//	paymentd migrate   apply database migrations and exit
//	paymentd reconcile catch up with Stripe once (lost webhooks) and exit
//	paymentd version   print the version
//	paymentd dev       local demo: a throwaway PostgreSQL and stripe-mock, no auth
//
// Configuration comes from the environment (see the README); flags override it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/lmittmann/tint"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/callback"
	"github.com/numedapp/paygate/internal/testsrv"
	"github.com/numedapp/paygate/store"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "paymentd:", err)
		os.Exit(1)
	}
}

// run is the whole program: it returns when ctx is canceled (after
// draining) or on a startup error.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "paymentd", buildVersion())
		return nil
	case "serve", "migrate", "reconcile", "dev":
	default:
		return fmt.Errorf("unknown command %q (serve, migrate, reconcile, version, dev)", cmd)
	}
	if cmd == "dev" {
		return runDev(ctx, args, getenv, stdout, stderr)
	}
	cfg, err := loadConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg.logFormat, stderr)
	pool, err := openPool(ctx, cfg.databaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if cmd == "migrate" || cfg.migrate {
		applied, err := store.Migrate(ctx, pool)
		if err != nil {
			return err
		}
		log.LogAttrs(ctx, slog.LevelInfo, "migrations applied", slog.Any("versions", applied))
		if cmd == "migrate" {
			fmt.Fprintf(stdout, "applied %d migration(s)\n", len(applied))
			return nil
		}
	}
	if cmd == "reconcile" {
		return reconcileOnce(ctx, cfg, pool, log, stdout)
	}
	return serve(ctx, cfg, pool, log)
}

// reconcileOnce runs one reconciliation pass and prints what it did.
func reconcileOnce(ctx context.Context, cfg config, pool *pgxpool.Pool, log *slog.Logger, stdout io.Writer) error {
	if cfg.stripeSecretKey == "" {
		return errors.New("STRIPE_SECRET_KEY is required to reconcile")
	}
	gw, err := paygate.New(paygate.Config{Store: store.New(pool), StripeSecretKey: cfg.stripeSecretKey, StripeAPIBase: cfg.stripeAPIBase,
		CallbackURL: cfg.callbackURL, InsecureNoAuth: true, Logger: log, Secrets: cfg.callbackSecrets})
	if err != nil {
		return err
	}
	res, err := gw.Reconcile(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "reconciled: %d checked, %d updated, %d failed\n", res.Checked, res.Updated, res.Failed)
	return nil
}

// reconcileEvery runs a reconciliation pass every interval until ctx ends.
func reconcileEvery(ctx context.Context, gw *paygate.Gateway, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			res, err := gw.Reconcile(ctx)
			if err != nil {
				log.LogAttrs(ctx, slog.LevelWarn, "reconciliation failed", slog.String("error", err.Error()))
				continue
			}
			log.LogAttrs(ctx, slog.LevelInfo, "reconciliation pass", slog.Int("checked", res.Checked),
				slog.Int("updated", res.Updated), slog.Int("failed", res.Failed))
		}
	}
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "text" {
		return slog.New(tint.NewTextHandler(w, &tint.Options{TimeFormat: time.TimeOnly}))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

func openPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errors.New("DATABASE_URL is not a valid PostgreSQL URL") // pgx's message may hold the URL
	}
	if !strings.Contains(url, "pool_max_conns") {
		pcfg.MaxConns = 16 // pgx's default (4 on this kind of machine) queues webhook bursts
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database unreachable: %w", err)
	}
	return pool, nil
}

// serve runs the HTTP server until ctx is canceled, then drains in-flight
// requests (up to 30 s) and returns nil.
func serve(ctx context.Context, cfg config, pool *pgxpool.Pool, log *slog.Logger) error {
	st := store.New(pool)
	observe := func(paygate.CallbackAttempt) {}
	gcfg := paygate.Config{
		Store:                st,
		StripeSecretKey:      cfg.stripeSecretKey,
		StripePublishableKey: cfg.stripePublishableKey,
		StripeAPIBase:        cfg.stripeAPIBase,
		DefaultCurrency:      cfg.currency,
		Logger:               log,
		Version:              buildVersion(),
		InsecureNoAuth:       cfg.insecureNoAuth,
		WebhookSecrets:       cfg.webhookSecrets,
		CallbackURL:          cfg.callbackURL,
		SystemLogs:           true,
		Metrics:              cfg.metrics,
		RateLimit:            cfg.rateLimit,
		RateBurst:            cfg.rateBurst,
		Secrets:              append(append([]string{}, cfg.apiKeys...), cfg.callbackSecrets...),
	}
	var engine *callback.Engine
	if cfg.callbackURL != "" {
		var err error
		engine, err = callback.New(callback.Config{Queue: st, Secrets: cfg.callbackSecrets, Logger: log,
			OnAttempt: func(a paygate.CallbackAttempt) { observe(a) }})
		if err != nil {
			return err
		}
		gcfg.OnCallbacksQueued = engine.Wake
	}
	if len(cfg.apiKeys) > 0 {
		auth, err := paygate.BearerKeys(cfg.apiKeys...)
		if err != nil {
			return fmt.Errorf("PAYMENTD_API_KEYS: %w", err)
		}
		gcfg.Auth = auth
	}
	gw, err := paygate.New(gcfg)
	if err != nil {
		return err
	}
	observe = gw.ObserveCallbackAttempt
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := gw.Close(cctx); err != nil {
			log.LogAttrs(cctx, slog.LevelError, "flushing system logs", slog.String("error", err.Error()))
		}
	}()
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           gw.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	// The callback engine runs until the server has drained, then finishes
	// the attempts in flight.
	engineCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	engineDone := make(chan struct{})
	go func() {
		defer close(engineDone)
		if engine != nil {
			go func() { _ = st.ListenCallbacks(engineCtx, engine.Wake) }() // other replicas' callbacks, at once
			_ = engine.Run(engineCtx)
		}
	}()
	defer func() { stopEngine(); <-engineDone }()
	if cfg.stripeSecretKey != "" && cfg.reconcileEvery > 0 {
		go reconcileEvery(engineCtx, gw, cfg.reconcileEvery, log)
	}
	log.LogAttrs(ctx, slog.LevelInfo, "paymentd listening", slog.String("addr", ln.Addr().String()),
		slog.String("version", buildVersion()), slog.Bool("auth", gcfg.Auth != nil), slog.Bool("stripe_configured", cfg.stripeSecretKey != ""),
		slog.Int("webhook_secrets", len(cfg.webhookSecrets)), slog.Bool("callbacks", engine != nil))
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.LogAttrs(context.Background(), slog.LevelInfo, "shutting down: draining in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.LogAttrs(context.Background(), slog.LevelInfo, "draining callback attempts in flight")
	stopEngine()
	<-engineDone
	log.LogAttrs(context.Background(), slog.LevelInfo, "stopped")
	return nil
}

// runDev serves the API for a local try-out: a throwaway PostgreSQL cluster
// and stripe-mock started here and removed on exit, no API keys needed.
// Never use it in production.
func runDev(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fmt.Fprintln(stderr, "paymentd dev: starting a throwaway PostgreSQL and stripe-mock (first run builds stripe-mock; this can take a minute)")
	pg, err := testsrv.StartPostgres(ctx)
	if err != nil {
		return err
	}
	defer pg.Stop()
	mock, err := testsrv.StartStripeMock(ctx)
	if err != nil {
		return err
	}
	defer mock.Stop()
	env := map[string]string{
		"DATABASE_URL":              pg.URL,
		"STRIPE_SECRET_KEY":         testsrv.StripeMockKey,
		"STRIPE_PUBLISHABLE_KEY":    "pk_test_123abc",
		"STRIPE_API_BASE":           mock.URL,
		"PAYMENTD_INSECURE_NO_AUTH": "1",
		"STRIPE_WEBHOOK_SECRET":     "whsec_devLocalSecret0123456789",
	}
	devenv := func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return env[k]
	}
	fmt.Fprintf(stderr, "paymentd dev: PostgreSQL at %s, stripe-mock at %s, authentication off\n", pg.URL, mock.URL)
	return run(ctx, append([]string{"serve"}, args...), devenv, stdout, stderr)
}
