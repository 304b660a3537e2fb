package paygate

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// EndpointCheck is what CheckWebhookEndpoint found about Stripe's webhook
// endpoint for this service.
type EndpointCheck struct {
	// OK is true when an enabled endpoint for our URL is pinned to
	// StripeAPIVersion and sends every handled event type.
	OK        bool      `json:"ok"`
	CheckedAt time.Time `json:"checkedAt"`
	// EndpointID, URL, APIVersion and MissingEvents describe the best
	// matching endpoint, when there is one.
	EndpointID    string   `json:"endpointId,omitempty"`
	URL           string   `json:"url,omitempty"`
	APIVersion    string   `json:"apiVersion,omitempty"`
	MissingEvents []string `json:"missingEvents,omitempty"`
	// Problems says, in words, what is wrong (empty when OK).
	Problems []string `json:"problems,omitempty"`
	// Error is set when Stripe could not be asked (a restricted key without
	// the webhook endpoints permission, Stripe unreachable).
	Error string `json:"error,omitempty"`
}

// CheckWebhookEndpoint asks Stripe for its webhook endpoints and checks
// the one for this service (Config.WebhookEndpointURL, or any whose path
// ends in WebhookPath): it should be enabled, pinned to StripeAPIVersion
// (events of another version are still accepted, but its objects may lack
// fields) and send every type in HandledEventTypes (a missing type is a
// change never heard of until reconciliation). It warns in the log about
// each problem, keeps the result for Health, and returns it; it never
// fails: what it could not check is in EndpointCheck.Error. Run calls it at
// start.
func (g *Gateway) CheckWebhookEndpoint(ctx context.Context) *EndpointCheck {
	c := g.checkWebhookEndpoint(ctx)
	g.endpoint.Store(c)
	switch {
	case c.Error != "":
		g.log.LogAttrs(ctx, slog.LevelWarn, "paygate: could not check Stripe's webhook endpoint", slog.String("error", c.Error))
	case !c.OK:
		for _, p := range c.Problems {
			g.log.LogAttrs(ctx, slog.LevelWarn, "paygate: Stripe webhook endpoint: "+p, slog.String("endpoint_id", c.EndpointID))
		}
	}
	return c
}

func (g *Gateway) checkWebhookEndpoint(ctx context.Context) *EndpointCheck {
	c := &EndpointCheck{CheckedAt: g.now()}
	api, err := g.stripeAPI()
	if err != nil {
		c.Error = "no Stripe secret key is configured"
		return c
	}
	params := &stripe.WebhookEndpointListParams{}
	params.Context = ctx
	it := api.WebhookEndpoints.List(params)
	var best *EndpointCheck
	for it.Next() {
		we := it.WebhookEndpoint()
		if !g.ourEndpoint(we.URL) {
			continue
		}
		cand := &EndpointCheck{CheckedAt: c.CheckedAt, EndpointID: we.ID, URL: we.URL, APIVersion: we.APIVersion}
		if we.Status != "enabled" {
			cand.Problems = append(cand.Problems, fmt.Sprintf("endpoint %s is %s", we.ID, we.Status))
		}
		if we.APIVersion != StripeAPIVersion {
			v := we.APIVersion
			if v == "" {
				v = "the account's default"
			}
			cand.Problems = append(cand.Problems, fmt.Sprintf("endpoint %s is on API version %s, not pinned to %s (paygate's)", we.ID, v, StripeAPIVersion))
		}
		if !slices.Contains(we.EnabledEvents, "*") {
			for _, t := range HandledEventTypes {
				if !slices.Contains(we.EnabledEvents, t) {
					cand.MissingEvents = append(cand.MissingEvents, t)
				}
			}
			if len(cand.MissingEvents) > 0 {
				cand.Problems = append(cand.Problems, fmt.Sprintf("endpoint %s does not send %s", we.ID, strings.Join(cand.MissingEvents, ", ")))
			}
		}
		cand.OK = len(cand.Problems) == 0
		if best == nil || len(cand.Problems) < len(best.Problems) {
			best = cand
		}
	}
	if err := it.Err(); err != nil {
		c.Error = "listing webhook endpoints failed: " + fromStripe(err).Message
		return c
	}
	if best == nil {
		where := "a URL ending in " + WebhookPath
		if g.cfg.WebhookEndpointURL != "" {
			where = g.cfg.WebhookEndpointURL
		}
		c.Problems = []string{"Stripe has no webhook endpoint for " + where + ": events reach this service only through reconciliation"}
		return c
	}
	return best
}

// ourEndpoint reports whether a webhook endpoint's URL is this service's.
func (g *Gateway) ourEndpoint(raw string) bool {
	if g.cfg.WebhookEndpointURL != "" {
		return strings.TrimSuffix(raw, "/") == strings.TrimSuffix(g.cfg.WebhookEndpointURL, "/")
	}
	u, err := url.Parse(raw)
	return err == nil && strings.HasSuffix(strings.TrimSuffix(u.Path, "/"), WebhookPath)
}
