package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/numedapp/paygate/callback"
)

// config is paymentd's configuration (API.md §6).
type config struct {
	addr                 string
	databaseURL          string
	stripeSecretKey      string
	stripePublishableKey string
	stripeAPIBase        string
	apiKeys              []string
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
}

// loadConfig reads the environment, then flags that override it. Errors
// name the variable and never echo a secret.
func loadConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	c := config{
		addr:                 getenv("PAYMENTD_ADDR"),
		databaseURL:          getenv("DATABASE_URL"),
		stripeSecretKey:      getenv("STRIPE_SECRET_KEY"),
		stripePublishableKey: getenv("STRIPE_PUBLISHABLE_KEY"),
		stripeAPIBase:        getenv("STRIPE_API_BASE"),
		currency:             getenv("PAYMENTD_CURRENCY"),
		logFormat:            getenv("PAYMENTD_LOG_FORMAT"),
		insecureNoAuth:       getenv("PAYMENTD_INSECURE_NO_AUTH") == "1",
		migrate:              getenv("PAYMENTD_MIGRATE") != "0",
	}
	if c.addr == "" {
		if p := getenv("PORT"); p != "" {
			c.addr = ":" + p
		} else {
			c.addr = ":8080"
		}
	}
	c.apiKeys = splitList(getenv("PAYMENTD_API_KEYS"))
	c.webhookSecrets = splitList(getenv("STRIPE_WEBHOOK_SECRET"))
	c.callbackURL = getenv("CALLBACK_URL")
	c.callbackSecrets = splitList(getenv("CALLBACK_SECRET"))
	c.metrics = getenv("PAYMENTD_METRICS") != "0"
	c.reconcileEvery = 15 * time.Minute
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
	fs := flag.NewFlagSet("paymentd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", c.addr, "listen address (PAYMENTD_ADDR)")
	fs.StringVar(&c.logFormat, "log-format", c.logFormat, "text or json (PAYMENTD_LOG_FORMAT)")
	fs.StringVar(&c.currency, "currency", c.currency, "default currency (PAYMENTD_CURRENCY)")
	fs.BoolVar(&c.migrate, "migrate", c.migrate, "apply migrations before serving (PAYMENTD_MIGRATE=0 disables)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}

	switch {
	case c.databaseURL == "":
		return c, errors.New("DATABASE_URL is required: set it to a postgres:// URL (the embedded store is not available yet)")
	case strings.HasPrefix(c.databaseURL, "sqlite:") || strings.HasSuffix(c.databaseURL, ".db"):
		return c, errors.New("DATABASE_URL: the embedded SQLite store is not available yet; use a postgres:// URL")
	case !strings.HasPrefix(c.databaseURL, "postgres://") && !strings.HasPrefix(c.databaseURL, "postgresql://"):
		return c, errors.New("DATABASE_URL must be a postgres:// or postgresql:// URL")
	}
	if len(c.apiKeys) == 0 && !c.insecureNoAuth {
		return c, errors.New("PAYMENTD_API_KEYS is required (comma-separated keys of at least 16 characters); " +
			"set PAYMENTD_INSECURE_NO_AUTH=1 only if something in front of paymentd authenticates requests")
	}
	if c.callbackURL != "" {
		if len(c.callbackSecrets) == 0 {
			return c, errors.New("CALLBACK_SECRET is required when CALLBACK_URL is set (whsec_ and base64 of 24+ random bytes)")
		}
		for _, s := range c.callbackSecrets {
			if _, err := callback.ParseSecret(s); err != nil {
				return c, errors.New("CALLBACK_SECRET must be whsec_ followed by base64 of at least 24 bytes")
			}
		}
	}
	if c.currency == "" {
		c.currency = "usd"
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
	return c, nil
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
