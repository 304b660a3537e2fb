package paygate

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/numedapp/paygate/internal/promtext"
)

// metrics are the Gateway's Prometheus metrics, on a registry of its own.
// A nil *metrics records nothing (metrics off).
type metrics struct {
	reg          promtext.Registry
	requests     *promtext.CounterVec
	latency      *promtext.HistogramVec
	webhooks     *promtext.CounterVec
	callbacks    *promtext.CounterVec
	stripeErrors *promtext.CounterVec
	batchSize    *promtext.HistogramVec

	reconcilePasses   *promtext.CounterVec
	reconcileEventsC  *promtext.CounterVec
	reconcilePayments *promtext.CounterVec
	reconcileLag      *promtext.Gauge
	reconcileLast     *promtext.Gauge
}

func newMetrics(g *Gateway) *metrics {
	m := &metrics{
		requests: promtext.NewCounterVec("paygate_http_requests_total", "API requests by route pattern, method and status.",
			"route", "method", "status"),
		latency: promtext.NewHistogramVec("paygate_http_request_duration_seconds", "API request latency by route pattern.",
			[]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}, "route"),
		webhooks: promtext.NewCounterVec("paygate_webhook_events_total",
			"Stripe webhook deliveries by outcome (processed, ignored, unmatched, failed, duplicate, refused) and reason.", "outcome", "reason"),
		callbacks: promtext.NewCounterVec("paygate_callback_attempts_total", "Callback delivery attempts by result and error class.",
			"result", "error_class"),
		stripeErrors: promtext.NewCounterVec("paygate_stripe_errors_total", "Failed Stripe API calls by error type.", "type"),
		batchSize: promtext.NewHistogramVec("paygate_webhook_batch_events", "Webhook events recorded per transaction (group commit).",
			[]float64{1, 2, 4, 8, 16, 32, 64, 128}),
		reconcilePasses: promtext.NewCounterVec("paygate_reconcile_passes_total",
			"Reconciliation passes by outcome (completed, partial, skipped: another replica ran one, failed).", "outcome"),
		reconcileEventsC: promtext.NewCounterVec("paygate_reconcile_events_total",
			"Stripe events of handled types read from the Events API by reconciliation: read, applied (their webhook was lost), known (already stored), failed.", "result"),
		reconcilePayments: promtext.NewCounterVec("paygate_reconcile_payments_total",
			"Non-final payments re-read from Stripe by reconciliation: checked, repaired (changed), failed.", "result"),
		reconcileLag: promtext.NewGauge("paygate_reconcile_lag_seconds",
			"Age of the oldest event the last reconciliation pass found not applied (0: none)."),
		reconcileLast: promtext.NewGauge("paygate_reconcile_last_pass_timestamp_seconds",
			"When the last reconciliation pass on this replica ended (Unix time)."),
	}
	m.reg.Register(m.requests, m.latency, m.webhooks, m.callbacks, m.stripeErrors, m.batchSize,
		m.reconcilePasses, m.reconcileEventsC, m.reconcilePayments, m.reconcileLag, m.reconcileLast,
		promtext.NewCounterFunc("paygate_system_log_rows_dropped_total", "System log rows dropped because the buffer was full or a write failed.",
			func() float64 { return float64(g.SystemLogsDropped()) }),
		promtext.NewGaugeFunc("paygate_callback_queue_depth", "Callbacks waiting to be delivered.", func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n, err := g.store.CallbackQueueDepth(ctx)
			if err != nil {
				return -1
			}
			return float64(n)
		}),
	)
	m.reg.Register(promtext.Runtime()...)
	return m
}

func (m *metrics) request(route, method string, status int, d time.Duration) {
	if m == nil {
		return
	}
	if route == "" {
		route = "unmatched"
	}
	switch method { // the client names it: keep the label's values few
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
	default:
		method = "other"
	}
	m.requests.With(route, method, strconv.Itoa(status)).Inc()
	m.latency.With(route).Observe(d.Seconds())
}

func (m *metrics) webhook(outcome, reason string) {
	if m != nil {
		m.webhooks.With(outcome, reason).Inc()
	}
}

// ingestBatch observes the size of a webhook batch.
func (m *metrics) ingestBatch(n int) {
	if m != nil {
		m.batchSize.With().Observe(float64(n))
	}
}

func (m *metrics) stripeError(typ string) {
	if m != nil {
		m.stripeErrors.With(typ).Inc()
	}
}

func (m *metrics) reconcilePass(outcome string) {
	if m != nil {
		m.reconcilePasses.With(outcome).Inc()
	}
}

func (m *metrics) reconcileEvents(result string, n int) {
	if m != nil {
		m.reconcileEventsC.With(result).Add(float64(n))
	}
}

func (m *metrics) reconcilePayment(err error, changed bool) {
	if m == nil {
		return
	}
	m.reconcilePayments.With("checked").Inc()
	switch {
	case err != nil:
		m.reconcilePayments.With("failed").Inc()
	case changed:
		m.reconcilePayments.With("repaired").Inc()
	}
}

// reconcileDone records a finished pass.
func (m *metrics) reconcileDone(outcome string, res *ReconcileResult) {
	if m == nil {
		return
	}
	m.reconcilePass(outcome)
	m.reconcileEvents("applied", res.EventsApplied)
	m.reconcileEvents("known", res.EventsKnown)
	m.reconcileEvents("failed", res.EventsFailed)
	m.reconcileLag.Set(res.Lag.Seconds())
	m.reconcileLast.SetToCurrentTime()
}

// ObserveCallbackAttempt counts a callback attempt in the metrics; give it
// to callback.Config.OnAttempt.
func (g *Gateway) ObserveCallbackAttempt(a CallbackAttempt) {
	if g.metrics == nil {
		return
	}
	result := "failure"
	if a.Success {
		result = "success"
	}
	g.metrics.callbacks.With(result, a.ErrorClass).Inc()
}

// MetricsHandler serves the Gateway's metrics in the Prometheus text
// format, or 404 when Config.Metrics is off.
func (g *Gateway) MetricsHandler() http.Handler {
	if g.metrics == nil {
		return http.NotFoundHandler()
	}
	return g.metrics.reg.Handler()
}
