package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/callback"
)

// usage is printed by -h, -help and `paymentd help`.
const usage = `paymentd serves the paygate payments API (Stripe), on an embedded SQLite file
(the default: ./paymentd.db) or on PostgreSQL.

Usage:
  paymentd [serve] [flags]   run the API, callback delivery and reconciliation
                             (migrates first unless PAYMENTD_MIGRATE=0)
  paymentd migrate           apply database migrations and exit
  paymentd reconcile         one catch-up pass with Stripe (Events API and
                             non-final payments) and exit
  paymentd reconcile -check-endpoint
                             check Stripe's webhook endpoint for this service
  paymentd export [FILE]     write every row of the database (JSON lines;
                             default stdout), with counts and checksums
  paymentd import FILE       load an export into a new, empty database
                             (migrates it first), verified by counts and
                             checksums: how to move from SQLite to PostgreSQL
  paymentd version           print the version
  paymentd dev               local try-out: a throwaway SQLite file and the
                             Stripe sandbox, no API keys (never in production)
  paymentd help              this text

Environment (flags override; [s]erve, [m]igrate, [r]econcile: who reads it):
  DATABASE_URL                postgres://… for PostgreSQL; sqlite:path or a
                              file path for the embedded store (one process
                              per file); default ./paymentd.db               s m r
  STRIPE_SECRET_KEY           sk_test_…, sk_live_… or rk_… (required by r)      s   r
  STRIPE_PUBLISHABLE_KEY      pk_test_… or pk_live_…                            s
  STRIPE_WEBHOOK_SECRET       whsec_…; comma-separated during a rotation        s
  STRIPE_API_BASE             another Stripe API base URL (stripe-mock)         s   r
  PAYMENTD_WEBHOOK_URL        the public URL of /api/webhooks/stripe, for the
                              webhook endpoint check                            s   r
  CALLBACK_URL                the merchant's endpoint for callbacks             s   r
  CALLBACK_SECRET             whsec_… signing callbacks (required with
                              CALLBACK_URL)                                     s
  PAYMENTD_API_KEYS           comma-separated API keys, 16+ characters each
                              (required unless PAYMENTD_INSECURE_NO_AUTH=1)     s
  PAYMENTD_INSECURE_NO_AUTH   1: serve without API keys                         s
  PAYMENTD_ADDR               listen address or bare port (default :8080;
                              PORT alone is also honoured); flag -addr          s
  PAYMENTD_CURRENCY           default currency (usd); flag -currency            s
  PAYMENTD_RATE_LIMIT         requests/s per API key (50; 0: no limit)          s
  PAYMENTD_METRICS            0 turns GET /metrics off                          s
  PAYMENTD_MIGRATE            0 skips migrations on serve; flag -migrate        s
  PAYMENTD_RECONCILE_INTERVAL how often serve reconciles (15m; 0: never)        s
  PAYMENTD_LOG_FORMAT         text or json (text on a terminal, else json);
                              flag -log-format                                  s m r
  GOMEMLIMIT                  Go's soft memory limit (20MiB; off: Go's own)     s m r
`

// errHelp is returned by loadConfig when usage was asked for.
var errHelp = errors.New("help requested")

// config is paymentd's configuration (API.md §6), for one subcommand.
type config struct {
	cmd                  string
	addr                 string
	databaseURL          string
	stripeSecretKey      string
	stripePublishableKey string
	stripeAPIBase        string
	webhookURL           string
	apiKeys              []string
	auth                 paygate.AuthFunc
	webhookSecrets       []string
	callbackURL          string
	callbackSecrets      []string
	metrics              bool
	rateLimit            float64
	rateBurst            int
	reconcileEvery       time.Duration
	insecureNoAuth       bool
	currency             string
	logFormat            string
	migrate              bool
	checkEndpoint        bool
}

// loadConfig reads what subcommand cmd needs from the environment, then
// the flags that override it, and validates all of it before anything
// touches the database. Errors name the variable and never echo a secret.
func loadConfig(cmd string, args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	c := config{cmd: cmd, logFormat: getenv("PAYMENTD_LOG_FORMAT"), databaseURL: getenv("DATABASE_URL")}
	serve, reconcile := cmd == "serve", cmd == "reconcile"
	if serve {
		c.addr = getenv("PAYMENTD_ADDR")
		if c.addr == "" {
			c.addr = getenv("PORT")
		}
		if c.addr == "" {
			c.addr = ":8080"
		}
		c.stripePublishableKey = getenv("STRIPE_PUBLISHABLE_KEY")
		c.currency = getenv("PAYMENTD_CURRENCY")
		c.insecureNoAuth = getenv("PAYMENTD_INSECURE_NO_AUTH") == "1"
		c.migrate = getenv("PAYMENTD_MIGRATE") != "0"
		c.apiKeys = splitList(getenv("PAYMENTD_API_KEYS"))
		c.webhookSecrets = splitList(getenv("STRIPE_WEBHOOK_SECRET"))
		c.callbackSecrets = splitList(getenv("CALLBACK_SECRET"))
		c.metrics = getenv("PAYMENTD_METRICS") != "0"
	}
	if serve || reconcile {
		c.stripeSecretKey = getenv("STRIPE_SECRET_KEY")
		c.stripeAPIBase = getenv("STRIPE_API_BASE")
		c.webhookURL = getenv("PAYMENTD_WEBHOOK_URL")
		c.callbackURL = getenv("CALLBACK_URL")
	}

	fs := flag.NewFlagSet("paymentd "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.logFormat, "log-format", c.logFormat, "text or json (PAYMENTD_LOG_FORMAT)")
	if serve {
		fs.StringVar(&c.addr, "addr", c.addr, "listen address (PAYMENTD_ADDR)")
		fs.StringVar(&c.currency, "currency", c.currency, "default currency (PAYMENTD_CURRENCY)")
		fs.BoolVar(&c.migrate, "migrate", c.migrate, "apply migrations before serving (PAYMENTD_MIGRATE=0 disables)")
	}
	if reconcile {
		fs.BoolVar(&c.checkEndpoint, "check-endpoint", false, "check Stripe's webhook endpoint instead of reconciling")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, errHelp
		}
		return c, fmt.Errorf("%w (paymentd help lists the flags)", err)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}

	switch c.logFormat {
	case "":
		c.logFormat = "json"
		if isTerminal(stderr) {
			c.logFormat = "text"
		}
	case "text", "json":
	default:
		return c, errors.New("PAYMENTD_LOG_FORMAT must be text or json")
	}
	if _, _, err := databaseKind(c.databaseURL); err != nil {
		return c, err
	}
	if !serve && !reconcile {
		return c, nil
	}

	if k := c.stripeSecretKey; k != "" && !hasAnyPrefix(k, "sk_test_", "sk_live_", "rk_test_", "rk_live_") {
		return c, errors.New("STRIPE_SECRET_KEY must be a Stripe secret key (sk_test_…, sk_live_…, or a restricted rk_… key)")
	}
	if reconcile && c.stripeSecretKey == "" {
		return c, errors.New("STRIPE_SECRET_KEY is required to reconcile")
	}
	if c.stripeAPIBase != "" && !absoluteURL(c.stripeAPIBase) {
		return c, errors.New("STRIPE_API_BASE must be an absolute http(s) URL")
	}
	if c.webhookURL != "" && !absoluteURL(c.webhookURL) {
		return c, errors.New("PAYMENTD_WEBHOOK_URL must be an absolute http(s) URL (https://your-host/api/webhooks/stripe)")
	}
	if c.callbackURL != "" && !absoluteURL(c.callbackURL) {
		return c, errors.New("CALLBACK_URL must be an absolute http(s) URL")
	}
	if !serve {
		return c, nil
	}

	addr, err := listenAddr(c.addr)
	if err != nil {
		return c, err
	}
	c.addr = addr
	if k := c.stripePublishableKey; k != "" && !hasAnyPrefix(k, "pk_test_", "pk_live_") {
		return c, errors.New("STRIPE_PUBLISHABLE_KEY must be a Stripe publishable key (pk_test_… or pk_live_…)")
	}
	for _, s := range c.webhookSecrets {
		if !strings.HasPrefix(s, "whsec_") || len(s) < len("whsec_")+8 {
			return c, errors.New("STRIPE_WEBHOOK_SECRET must hold the webhook endpoint's signing secret(s) (whsec_…), comma-separated")
		}
	}
	if c.callbackURL != "" && len(c.callbackSecrets) == 0 {
		return c, errors.New("CALLBACK_SECRET is required when CALLBACK_URL is set (whsec_ and base64 of 24+ random bytes)")
	}
	for _, s := range c.callbackSecrets {
		if _, err := callback.ParseSecret(s); err != nil {
			return c, errors.New("CALLBACK_SECRET must be whsec_ followed by base64 of at least 24 bytes")
		}
	}
	if len(c.apiKeys) > 0 {
		if c.auth, err = paygate.BearerKeys(c.apiKeys...); err != nil {
			return c, errors.New("PAYMENTD_API_KEYS must be comma-separated keys of at least 16 characters")
		}
	} else if !c.insecureNoAuth {
		return c, errors.New("PAYMENTD_API_KEYS is required (comma-separated keys of at least 16 characters); " +
			"set PAYMENTD_INSECURE_NO_AUTH=1 only if something in front of paymentd authenticates requests")
	}
	if c.currency == "" {
		c.currency = "usd"
	}
	if _, err := paygate.LookupCurrency(c.currency); err != nil {
		return c, errors.New("PAYMENTD_CURRENCY must be a currency Stripe supports (usd, eur, jpy, …)")
	}
	c.reconcileEvery = paygate.DefaultReconcileInterval
	if v := getenv("PAYMENTD_RECONCILE_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if v == "0" {
			d, err = 0, nil
		}
		if err != nil || d < 0 {
			return c, errors.New("PAYMENTD_RECONCILE_INTERVAL must be a duration such as 15m (0 turns it off)")
		}
		c.reconcileEvery = d
	}
	c.rateLimit, c.rateBurst = 50, 100
	if v := getenv("PAYMENTD_RATE_LIMIT"); v != "" {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n < 0 || math.IsInf(n, 0) || math.IsNaN(n) {
			return c, errors.New("PAYMENTD_RATE_LIMIT must be a number of requests per second (0 for no limit)")
		}
		c.rateLimit, c.rateBurst = n, int(math.Ceil(2*n))
	}
	return c, nil
}

// gateway is the library configuration serve and reconcile run with.
func (c config) gateway(st paygate.Store, log *slog.Logger) paygate.Config {
	interval := c.reconcileEvery
	if interval == 0 {
		interval = -1 // off
	}
	return paygate.Config{
		Store:                st,
		StripeSecretKey:      c.stripeSecretKey,
		StripePublishableKey: c.stripePublishableKey,
		StripeAPIBase:        c.stripeAPIBase,
		WebhookEndpointURL:   c.webhookURL,
		DefaultCurrency:      c.currency,
		Logger:               log,
		Version:              buildVersion(),
		Auth:                 c.auth,
		InsecureNoAuth:       c.auth == nil, // serve refused this unless PAYMENTD_INSECURE_NO_AUTH=1; reconcile serves nothing
		WebhookSecrets:       c.webhookSecrets,
		CallbackURL:          c.callbackURL,
		CallbackSecrets:      c.callbackSecrets,
		ReconcileInterval:    interval,
		SystemLogs:           c.cmd == "serve",
		Metrics:              c.metrics,
		RateLimit:            c.rateLimit,
		RateBurst:            c.rateBurst,
		Secrets:              c.apiKeys,
	}
}

// configVariables names the variable behind each paygate.Config field, so
// that a refusal by paygate.New speaks paymentd's language.
var configVariables = map[string]string{
	"StripeSecretKey": "STRIPE_SECRET_KEY", "StripePublishableKey": "STRIPE_PUBLISHABLE_KEY", "StripeAPIBase": "STRIPE_API_BASE",
	"WebhookSecrets": "STRIPE_WEBHOOK_SECRET", "WebhookEndpointURL": "PAYMENTD_WEBHOOK_URL", "CallbackURL": "CALLBACK_URL",
	"CallbackSecrets": "CALLBACK_SECRET", "DefaultCurrency": "PAYMENTD_CURRENCY", "Auth": "PAYMENTD_API_KEYS", "RateLimit": "PAYMENTD_RATE_LIMIT",
}

// variableError rewrites a paygate.New refusal to name the variable.
func variableError(err error) error {
	var pe *paygate.Error
	if errors.As(err, &pe) {
		if v, ok := configVariables[pe.Param]; ok {
			return fmt.Errorf("%s: %s", v, strings.TrimPrefix(pe.Message, "paygate.Config."+pe.Param+" "))
		}
	}
	return err
}

// listenAddr accepts host:port, :port or a bare port.
func listenAddr(a string) (string, error) {
	if n, err := strconv.Atoi(a); err == nil {
		if n < 0 || n > 65535 {
			return "", errors.New("PAYMENTD_ADDR: port must be 0 to 65535")
		}
		return ":" + a, nil
	}
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return "", errors.New("PAYMENTD_ADDR must be a port (8080) or host:port (127.0.0.1:8080, :8080)")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", errors.New("PAYMENTD_ADDR: port must be a number from 0 to 65535")
	}
	return a, nil
}

func absoluteURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// splitList splits a comma-separated variable, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, k := range strings.Split(v, ",") {
		if k = strings.TrimSpace(k); k != "" {
			out = append(out, k)
		}
	}
	return out
}
