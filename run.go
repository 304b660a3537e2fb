package paygate

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/numedapp/paygate/callback"
)

// Defaults of the background parts Run starts.
const (
	// DefaultReconcileInterval is how often Run reconciles with Stripe.
	DefaultReconcileInterval = 15 * time.Minute
	// DefaultReconcileBudget bounds one pass's sweep of non-final payments.
	DefaultReconcileBudget = 5 * time.Minute
	// flushTimeout bounds the last write of the system log when Run returns.
	flushTimeout = 10 * time.Second
)

// ErrRunning is returned by a second call of Run on the same Gateway.
var ErrRunning = errors.New("paygate: Run was already called on this Gateway")

// callbackListener is implemented by a Store that can tell every replica
// when callbacks were queued (store.Store: LISTEN/NOTIFY). Optional:
// without it, engines find new callbacks by polling (1 s).
type callbackListener interface {
	ListenCallbacks(ctx context.Context, wake func()) error
}

// Run runs every background part the Config turns on, until ctx ends:
//
//   - callback delivery (CallbackURL set): the callback package's Engine,
//     woken at once when this process queues callbacks and, when the Store
//     supports it (store.Store), when any replica does;
//   - reconciliation with Stripe every ReconcileInterval (with a
//     StripeSecretKey): the Events API, then the sweep of non-final
//     payments, one pass at a time across replicas (Reconcile);
//   - housekeeping, at start and hourly: expired Idempotency-Key records
//     and system log rows past SystemLogRetention are deleted (whether
//     SystemLogs is on or not);
//   - the system log writer (SystemLogs);
//   - a check of Stripe's webhook endpoint at start (logged as a warning,
//     reported by Health).
//
// When ctx ends Run stops them all, lets callback attempts in flight
// finish and record their result, writes the buffered system log rows
// (for up to 10 s) and returns nil. Stop the HTTP server first, then
// cancel ctx, so that nothing the last requests log is lost.
//
// Without Run the Gateway serves its API (Handler and the methods) fully,
// but queued callbacks are not sent, nothing is reconciled, expired keys
// and old log rows are not deleted, and system log rows are written only
// by Close.
//
// Run returns an error without starting anything when CallbackURL is set
// without CallbackSecrets, and ErrRunning when called a second time.
func (g *Gateway) Run(ctx context.Context) error {
	var engine *callback.Engine
	if g.cfg.CallbackURL != "" {
		if len(g.cfg.CallbackSecrets) == 0 {
			return configError("CallbackSecrets", "is required to deliver callbacks (CallbackURL is set)")
		}
		ecfg := g.cfg.CallbackEngine
		ecfg.Queue, ecfg.Secrets, ecfg.Logger, ecfg.OnAttempt = g.store, g.cfg.CallbackSecrets, g.log, g.ObserveCallbackAttempt
		if ecfg.Now == nil {
			ecfg.Now = g.cfg.Now
		}
		var err error
		if engine, err = callback.New(ecfg); err != nil {
			return &Error{Code: CodeInvalid, Param: "CallbackEngine", Message: "paygate.Config.CallbackEngine: " + err.Error(), Err: err}
		}
	}
	if !g.running.CompareAndSwap(false, true) {
		return ErrRunning
	}

	bg, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	spawn := func(f func(context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(bg)
		}()
	}
	if g.logs != nil {
		g.logs.start()
	}
	spawn(g.housekeepingLoop)
	listening := false
	if engine != nil {
		g.engine.Store(engine)
		spawn(func(ctx context.Context) { _ = engine.Run(ctx) })
		if l, ok := g.store.(callbackListener); ok {
			listening = true
			spawn(func(ctx context.Context) { _ = l.ListenCallbacks(ctx, engine.Wake) })
		}
	}
	reconciling := g.api != nil && g.cfg.ReconcileInterval > 0
	if reconciling {
		spawn(g.reconcileLoop)
	}
	if g.api != nil {
		spawn(func(ctx context.Context) { g.CheckWebhookEndpoint(ctx) })
	}
	g.log.LogAttrs(ctx, slog.LevelInfo, "paygate: running",
		slog.Bool("callbacks", engine != nil), slog.Bool("callbacks_listen", listening),
		slog.Bool("reconcile", reconciling), slog.Duration("reconcile_interval", g.cfg.ReconcileInterval),
		slog.Bool("system_logs", g.logs != nil))

	<-ctx.Done()
	stop()
	wg.Wait() // the engine returns once its attempts in flight are recorded
	g.engine.Store(nil)
	if g.logs != nil {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
		defer cancel()
		if err := g.logs.close(fctx); err != nil {
			g.log.LogAttrs(fctx, slog.LevelError, "paygate: flushing the system log failed", attrErr(err))
		}
	}
	g.log.LogAttrs(context.WithoutCancel(ctx), slog.LevelInfo, "paygate: stopped")
	return nil
}

// wakeCallbacks makes Run's callback engine look for due callbacks now.
func (g *Gateway) wakeCallbacks() {
	if e := g.engine.Load(); e != nil {
		e.Wake()
	}
}

// housekeepingLoop runs housekeeping at start and hourly until ctx ends.
func (g *Gateway) housekeepingLoop(ctx context.Context) {
	t := time.NewTicker(housekeepingEvery)
	defer t.Stop()
	for {
		g.housekeeping(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reconcileLoop runs a reconciliation pass every ReconcileInterval until
// ctx ends. Passes on other replicas make this one skip (Reconcile).
func (g *Gateway) reconcileLoop(ctx context.Context) {
	t := time.NewTicker(g.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := g.Reconcile(ctx); err != nil && ctx.Err() == nil {
			g.log.LogAttrs(ctx, slog.LevelWarn, "paygate: reconciliation failed", attrErr(err))
		}
	}
}
