package paygate

import (
	"context"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// SetBackend makes a Gateway built from cfg send its Stripe calls to b
// (tests wrap stripe-mock's backend in a recorder).
func SetBackend(cfg *Config, b stripe.Backend) { cfg.backend = b }

// RedactForTest exposes the redactor.
func RedactForTest(g *Gateway, s string) string { return g.redact(s) }

// FloodSystemLog queues n system log rows as fast as it can and returns
// how long that took.
func FloodSystemLog(g *Gateway, n int) time.Duration {
	start := time.Now()
	for i := 0; i < n; i++ {
		g.syslog(context.Background(), LevelInfo, SourceHTTP, "flood", nil)
	}
	return time.Since(start)
}

// ReadBody exposes the request body reader.
var ReadBody = readBody
