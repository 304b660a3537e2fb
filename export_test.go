package paygate

import "github.com/stripe/stripe-go/v76"

// SetBackend makes a Gateway built from cfg send its Stripe calls to b
// (tests wrap stripe-mock's backend in a recorder).
func SetBackend(cfg *Config, b stripe.Backend) { cfg.backend = b }

// RedactForTest exposes the redactor.
func RedactForTest(g *Gateway, s string) string { return g.redact(s) }
