// Command paymentd serves the paygate HTTP API (API.md) as a standalone
// service, on the embedded SQLite store (DATABASE_URL unset: ./paymentd.db)
// or on PostgreSQL (DATABASE_URL=postgres://…).
//
//	paymentd [serve]   run the API, callback delivery and reconciliation
//	                   (migrates first unless PAYMENTD_MIGRATE=0)
//	paymentd migrate   apply database migrations and exit
//	paymentd reconcile catch up with Stripe once (lost webhooks) and exit;
//	                   -check-endpoint checks Stripe's webhook endpoint
//	paymentd version   print the version
//	paymentd export [FILE]  write every row of the database (JSON lines; default stdout)
//	paymentd import FILE    load an export into an empty database, verified by counts and checksums
//	paymentd dev       local demo: a throwaway SQLite file and the Stripe sandbox, no auth
//	paymentd help      usage, with every variable
//
// Configuration comes from the environment (see the README and `paymentd
// help`); flags override it. All of it is validated before the database
// is touched. serve is wiring: paygate.New, Handler on an http.Server, and
// Gateway.Run for everything in the background.
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
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/lmittmann/tint"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/sandbox"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		var le loggedError
		if !errors.As(err, &le) {
			fmt.Fprintln(os.Stderr, "paymentd:", err)
		}
		os.Exit(1)
	}
}

// loggedError is an error run already wrote to the log (in the log's
// format), so main does not print it again.
type loggedError struct{ error }

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
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	case "serve", "migrate", "reconcile", "dev", "export", "import":
	default:
		return fmt.Errorf("unknown command %q (paymentd help lists them)", cmd)
	}
	if cmd == "dev" {
		return runDev(ctx, args, getenv, stdout, stderr)
	}
	var file string // export's output, import's input
	if (cmd == "export" || cmd == "import") && len(args) > 0 && !strings.HasPrefix(args[len(args)-1], "-") {
		file, args = args[len(args)-1], args[:len(args)-1]
	}
	if cmd == "import" && file == "" {
		return errors.New("import: name the file written by paymentd export (paymentd import FILE)")
	}
	cfg, err := loadConfig(cmd, args, getenv, stderr)
	if errors.Is(err, errHelp) {
		fmt.Fprint(stdout, usage)
		return nil
	}
	if err != nil {
		if cfg.logFormat == "json" { // a valid format was read: the error is a log line too
			newLogger(cfg.logFormat, stderr).LogAttrs(ctx, slog.LevelError, "paymentd: configuration refused", slog.String("error", err.Error()))
			return loggedError{err}
		}
		return err
	}
	log := newLogger(cfg.logFormat, stderr)
	if err := runCommand(ctx, cfg, file, log, stdout); err != nil {
		log.LogAttrs(context.WithoutCancel(ctx), slog.LevelError, "paymentd: "+cmd+" failed", slog.String("error", err.Error()))
		return loggedError{err}
	}
	return nil
}

// runCommand runs a validated subcommand: everything that touches the
// database or Stripe.
func runCommand(ctx context.Context, cfg config, file string, log *slog.Logger, stdout io.Writer) error {
	if cfg.cmd == "serve" || cfg.cmd == "reconcile" {
		// The library's own validation, before the database is touched (New
		// starts nothing and does not call the Store).
		if _, err := paygate.New(cfg.gateway(unopenedStore{}, log)); err != nil {
			return variableError(err)
		}
	}
	st, err := openStore(ctx, cfg.databaseURL)
	if err != nil {
		return err
	}
	defer st.close()
	log.LogAttrs(ctx, slog.LevelInfo, "database opened", slog.String("store", st.kind), slog.String("database", st.where))
	if cfg.cmd == "migrate" || cfg.migrate || cfg.cmd == "import" {
		applied, err := st.migrate(ctx)
		if err != nil {
			return err
		}
		log.LogAttrs(ctx, slog.LevelInfo, "migrations applied", slog.Int("count", len(applied)), slog.Any("versions", applied))
		if cfg.cmd == "migrate" {
			fmt.Fprintf(stdout, "applied %d migration(s)\n", len(applied))
			return nil
		}
	}
	switch cfg.cmd {
	case "export":
		return exportData(ctx, st, file, stdout)
	case "import":
		return importData(ctx, st, file, stdout)
	}
	gw, err := paygate.New(cfg.gateway(st.store, log))
	if err != nil {
		return variableError(err)
	}
	if cfg.cmd == "reconcile" {
		return reconcileOnce(ctx, cfg, gw, stdout)
	}
	return serve(ctx, cfg, gw, log)
}

// unopenedStore stands in for the Store while the configuration is
// validated; paygate.New never calls it.
type unopenedStore struct{ paygate.Store }

// reconcileOnce runs one reconciliation pass, or the webhook endpoint
// check, and prints what it found.
func reconcileOnce(ctx context.Context, cfg config, gw *paygate.Gateway, stdout io.Writer) error {
	if cfg.checkEndpoint {
		c := gw.CheckWebhookEndpoint(ctx)
		switch {
		case c.Error != "":
			fmt.Fprintln(stdout, "webhook endpoint: could not check:", c.Error)
		case c.OK:
			fmt.Fprintf(stdout, "webhook endpoint %s (%s): ok, API version %s, every handled event type\n", c.EndpointID, c.URL, c.APIVersion)
		default:
			fmt.Fprintln(stdout, "webhook endpoint: needs attention:")
			for _, p := range c.Problems {
				fmt.Fprintln(stdout, "  -", p)
			}
			fmt.Fprintln(stdout, "  want: API version", paygate.StripeAPIVersion, "and events", strings.Join(paygate.HandledEventTypes, ", "))
		}
		return nil
	}
	res, err := gw.Reconcile(ctx)
	if err != nil {
		return err
	}
	if res.Skipped {
		fmt.Fprintln(stdout, "reconciled: skipped, another replica is reconciling now")
		return nil
	}
	fmt.Fprintf(stdout, "reconciled: events %d read, %d applied, %d known, %d failed; payments %d checked, %d updated, %d failed",
		res.EventsRead, res.EventsApplied, res.EventsKnown, res.EventsFailed, res.Checked, res.Updated, res.Failed)
	if !res.Complete {
		fmt.Fprint(stdout, " (sweep stopped at its time budget; the next pass resumes)")
	}
	if res.EventsError != "" {
		fmt.Fprint(stdout, "; events API: ", res.EventsError)
	}
	fmt.Fprintln(stdout)
	return nil
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

// serve runs the HTTP server and the Gateway's background parts (Run)
// until ctx is canceled, then drains in-flight requests (up to 30 s),
// stops Run (which lets callback attempts in flight finish and flushes the
// system log) and returns nil.
func serve(ctx context.Context, cfg config, gw *paygate.Gateway, log *slog.Logger) error {
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen on PAYMENTD_ADDR %s: %w", cfg.addr, err)
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
	// Run outlives the server by the drain, so the last requests' callbacks
	// and log rows are handled.
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	ran := make(chan error, 1)
	go func() { ran <- gw.Run(runCtx) }()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.LogAttrs(ctx, slog.LevelInfo, "paymentd listening", slog.String("addr", ln.Addr().String()),
		slog.String("version", buildVersion()), slog.Bool("auth", cfg.auth != nil), slog.Bool("stripe_configured", cfg.stripeSecretKey != ""),
		slog.Int("webhook_secrets", len(cfg.webhookSecrets)), slog.Bool("callbacks", cfg.callbackURL != ""))
	select {
	case err := <-served:
		stopRun()
		<-ran
		return fmt.Errorf("serve: %w", err)
	case err := <-ran: // Run refused to start
		_ = srv.Close()
		return err
	case <-ctx.Done():
	}
	log.LogAttrs(context.Background(), slog.LevelInfo, "shutting down: draining in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.LogAttrs(context.Background(), slog.LevelWarn, "requests still in flight after 30 s", slog.String("error", err.Error()))
	}
	log.LogAttrs(context.Background(), slog.LevelInfo, "draining callback attempts in flight")
	stopRun()
	if err := <-ran; err != nil {
		return err
	}
	log.LogAttrs(context.Background(), slog.LevelInfo, "stopped")
	return nil
}

// runDev serves the API for a local try-out: a throwaway SQLite file and
// the sandbox (paygate's in-process stand-in for Stripe, with its pages and
// dashboard, delivering its webhooks to this paymentd), removed on exit, no
// API keys needed. It needs nothing installed but Go. Never use it in
// production.
func runDev(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	dir, err := os.MkdirTemp("", "paymentd-dev-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	addr := getenv("PAYMENTD_ADDR")
	if addr == "" {
		addr = ":8080"
		if p := getenv("PORT"); p != "" {
			addr = ":" + p
		}
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "0" {
		return errors.New("paymentd dev: PAYMENTD_ADDR must name a port (the sandbox sends webhooks to it)")
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	sb, err := sandbox.NewServer(sandbox.Config{AutoDeliver: true, Logger: newLogger("json", io.Discard)})
	if err != nil {
		return err
	}
	defer sb.Close()
	if err := sb.SetWebhook("http://"+net.JoinHostPort(host, port)+paygate.WebhookPath, ""); err != nil {
		return err
	}
	rcv, err := startDevReceiver()
	if err != nil {
		return err
	}
	defer rcv.close()
	env := map[string]string{
		"CALLBACK_URL":              rcv.url + "/callbacks",
		"CALLBACK_SECRET":           rcv.secret,
		"PAYMENTD_ADDR":             addr,
		"DATABASE_URL":              "sqlite:" + filepath.Join(dir, "paymentd.db"),
		"STRIPE_SECRET_KEY":         "sk_test_paymentdDev",
		"STRIPE_PUBLISHABLE_KEY":    "pk_test_paymentdDev",
		"STRIPE_API_BASE":           sb.URL(),
		"PAYMENTD_INSECURE_NO_AUTH": "1",
		"STRIPE_WEBHOOK_SECRET":     sb.WebhookSecret(),
	}
	ownCallbacks := getenv("CALLBACK_URL") != ""
	devenv := func(k string) string {
		if (k == "CALLBACK_URL" || k == "CALLBACK_SECRET") && ownCallbacks {
			return getenv(k) // the developer's own receiver
		}
		if v, ok := env[k]; ok && (getenv(k) == "" || k == "STRIPE_API_BASE" || k == "STRIPE_WEBHOOK_SECRET") {
			return v
		}
		return getenv(k)
	}
	base := "http://" + net.JoinHostPort(map[bool]string{true: "localhost", false: host}[host == "127.0.0.1"], port)
	callbacksAt := rcv.url + "/"
	if ownCallbacks {
		callbacksAt = getenv("CALLBACK_URL") + " (yours)"
	}
	fmt.Fprintf(stderr, `paymentd dev: database %s, Stripe played by the sandbox, authentication off. Nothing here is real.
  docs and a test payment   %s/docs#test-payment   (pay with 4242 4242 4242 4242; 4000 0000 0000 0002 declines)
  or make a link            curl -X POST %s/api/payments/generate-url -d '{"amount": "19.99"}'   and open its paymentUrl
  the sandbox's dashboard   %s/_sandbox/dashboard   (refund, dispute, settle, advance the clock)
  callbacks received        %s
`, devenv("DATABASE_URL"), base, base, sb.URL(), callbacksAt)
	return run(ctx, append([]string{"serve"}, args...), devenv, stdout, stderr)
}
