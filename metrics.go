package paygate

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the Gateway's Prometheus metrics, on a registry of its own.
// A nil *metrics records nothing (metrics off).
type metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	webhooks     *prometheus.CounterVec
	callbacks    *prometheus.CounterVec
	stripeErrors *prometheus.CounterVec
	batchSize    prometheus.Histogram

	reconcilePasses   *prometheus.CounterVec
	reconcileEventsC  *prometheus.CounterVec
	reconcilePayments *prometheus.CounterVec
	reconcileLag      prometheus.Gauge
	reconcileLast     prometheus.Gauge
}

func newMetrics(g *Gateway) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paygate_http_requests_total", Help: "API requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "paygate_http_request_duration_seconds", Help: "API request latency by route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paygate_webhook_events_total", Help: "Stripe webhook deliveries by outcome (processed, ignored, unmatched, failed, duplicate, refused) and reason.",
		}, []string{"outcome", "reason"}),
		callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paygate_callback_attempts_total", Help: "Callback delivery attempts by result and error class.",
		}, []string{"result", "error_class"}),
		stripeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paygate_stripe_errors_total", Help: "Failed Stripe API calls by error type.",
		}, []string{"type"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "paygate_webhook_batch_events", Help: "Webhook events recorded per transaction (group commit).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
		}),
	}
	m.reconcilePasses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "paygate_reconcile_passes_total", Help: "Reconciliation passes by outcome (completed, partial, skipped: another replica ran one, failed).",
	}, []string{"outcome"})
	m.reconcileEventsC = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "paygate_reconcile_events_total", Help: "Stripe events of handled types read from the Events API by reconciliation: read, applied (their webhook was lost), known (already stored), failed.",
	}, []string{"result"})
	m.reconcilePayments = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "paygate_reconcile_payments_total", Help: "Non-final payments re-read from Stripe by reconciliation: checked, repaired (changed), failed.",
	}, []string{"result"})
	m.reconcileLag = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "paygate_reconcile_lag_seconds", Help: "Age of the oldest event the last reconciliation pass found not applied (0: none).",
	})
	m.reconcileLast = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "paygate_reconcile_last_pass_timestamp_seconds", Help: "When the last reconciliation pass on this replica ended (Unix time).",
	})
	m.reg.MustRegister(m.requests, m.latency, m.webhooks, m.callbacks, m.stripeErrors, m.batchSize,
		m.reconcilePasses, m.reconcileEventsC, m.reconcilePayments, m.reconcileLag, m.reconcileLast,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "paygate_system_log_rows_dropped_total", Help: "System log rows dropped because the buffer was full or a write failed.",
		}, func() float64 { return float64(g.SystemLogsDropped()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "paygate_callback_queue_depth", Help: "Callbacks waiting to be delivered.",
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n, err := g.store.CallbackQueueDepth(ctx)
			if err != nil {
				return -1
			}
			return float64(n)
		}),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func (m *metrics) request(route, method string, status int, d time.Duration) {
	if m == nil {
		return
	}
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

func (m *metrics) webhook(outcome, reason string) {
	if m != nil {
		m.webhooks.WithLabelValues(outcome, reason).Inc()
	}
}

// ingestBatch observes the size of a webhook batch.
func (m *metrics) ingestBatch(n int) {
	if m != nil {
		m.batchSize.Observe(float64(n))
	}
}

func (m *metrics) stripeError(typ string) {
	if m != nil {
		m.stripeErrors.WithLabelValues(typ).Inc()
	}
}

func (m *metrics) reconcilePass(outcome string) {
	if m != nil {
		m.reconcilePasses.WithLabelValues(outcome).Inc()
	}
}

func (m *metrics) reconcileEvents(result string, n int) {
	if m != nil {
		m.reconcileEventsC.WithLabelValues(result).Add(float64(n))
	}
}

func (m *metrics) reconcilePayment(err error, changed bool) {
	if m == nil {
		return
	}
	m.reconcilePayments.WithLabelValues("checked").Inc()
	switch {
	case err != nil:
		m.reconcilePayments.WithLabelValues("failed").Inc()
	case changed:
		m.reconcilePayments.WithLabelValues("repaired").Inc()
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
	g.metrics.callbacks.WithLabelValues(result, a.ErrorClass).Inc()
}

// MetricsHandler serves the Gateway's metrics in the Prometheus text
// format, or 404 when Config.Metrics is off.
func (g *Gateway) MetricsHandler() http.Handler {
	if g.metrics == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(g.metrics.reg, promhttp.HandlerOpts{})
}
