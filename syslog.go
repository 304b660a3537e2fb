package paygate

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// System log levels and sources (API.md §5).
const (
	LevelInfo  = "info"
	LevelWarn  = "warn"
	LevelError = "error"

	SourceHTTP    = "http"
	SourcePayment = "payment"
	SourceError   = "error"
	// SourceWebhook ("webhook") is shared with history entries.
)

// SystemLog is one row of the system log.
type SystemLog struct {
	ID         string          `json:"id"`
	Level      string          `json:"level"`
	Source     string          `json:"source"`
	Message    string          `json:"message"`
	RequestID  string          `json:"requestId"`
	Method     string          `json:"method"`
	Path       string          `json:"path"`
	StatusCode int             `json:"statusCode"`
	DurationMs int64           `json:"durationMs"`
	Fields     json.RawMessage `json:"fields"`
	CreatedAt  time.Time       `json:"createdAt"`
}

// SystemLogFilter selects system log rows.
type SystemLogFilter struct {
	Level     string
	Source    string
	RequestID string
	From, To  time.Time
	PageParams
}

// systemLogStore is the part of Store for the system log.
type systemLogStore interface {
	// InsertSystemLogs writes a batch of rows.
	InsertSystemLogs(ctx context.Context, rows []SystemLog) error
	// ListSystemLogs returns one page of rows, newest first.
	ListSystemLogs(ctx context.Context, f SystemLogFilter) (*Page[SystemLog], error)
	// PurgeSystemLogs deletes rows created before t and returns how many.
	PurgeSystemLogs(ctx context.Context, before time.Time) (int64, error)
}

// Defaults of the system log writer.
const (
	DefaultSystemLogBuffer    = 4096
	DefaultSystemLogRetention = 30 * 24 * time.Hour
	systemLogBatch            = 500
	systemLogFlushEvery       = 250 * time.Millisecond
	housekeepingEvery         = time.Hour
)

// logWriter writes system log rows off the request path, in batches. Its
// buffer is bounded: when it is full a row is dropped and counted, and the
// request goes on. Payment data never goes through it.
type logWriter struct {
	g         *Gateway
	ch        chan *SystemLog // pointers: the buffer costs memory only for the rows in it
	dropped   atomic.Int64
	stop      chan struct{}
	done      chan struct{}
	once      sync.Once
	startOnce sync.Once
}

// newLogWriter makes the writer; Run starts it (start), Close or the end
// of Run stops it after a last flush.
func newLogWriter(g *Gateway, buffer int) *logWriter {
	return &logWriter{g: g, ch: make(chan *SystemLog, buffer), stop: make(chan struct{}), done: make(chan struct{})}
}

// start runs the writer in the background (once).
func (w *logWriter) start() {
	w.startOnce.Do(func() { go w.run() })
}

// add queues a row, or drops it when the buffer is full.
func (w *logWriter) add(row SystemLog) {
	select {
	case <-w.stop:
		w.dropped.Add(1)
		return
	default:
	}
	select {
	case w.ch <- &row:
	default:
		w.dropped.Add(1)
	}
}

func (w *logWriter) run() {
	defer close(w.done)
	tick := time.NewTicker(systemLogFlushEvery)
	defer tick.Stop()
	var batch []SystemLog // grows to the largest batch written, at most systemLogBatch
	flush := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := w.g.store.InsertSystemLogs(ctx, batch); err != nil {
			w.dropped.Add(int64(len(batch)))
			w.g.log.LogAttrs(ctx, slog.LevelError, "paygate: writing system log rows failed", slog.Int("rows", len(batch)), attrErr(err))
		}
		cancel()
		clear(batch) // the rows' strings and fields maps are garbage now, not held until overwritten
		batch = batch[:0]
	}
	add := func(row *SystemLog) {
		batch = append(batch, *row)
		if len(batch) >= systemLogBatch {
			flush()
		}
	}
	for {
		select {
		case row := <-w.ch:
			add(row)
		case <-tick.C:
			flush()
		case <-w.stop:
			for { // drain what was queued before stop, then the last flush
				select {
				case row := <-w.ch:
					add(row)
				default:
					flush()
					return
				}
			}
		}
	}
}

// close flushes what is buffered and stops the writer (starting it first
// if Run never did, so that the buffered rows are written).
func (w *logWriter) close(ctx context.Context) error {
	w.start()
	w.once.Do(func() { close(w.stop) })
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// housekeeping deletes system log rows past their retention and expired
// Idempotency-Key records. Run calls it at start and hourly, whether the
// system log is on or not.
func (g *Gateway) housekeeping(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	now := g.now()
	if n, err := g.store.PurgeSystemLogs(ctx, now.Add(-g.cfg.SystemLogRetention)); err != nil && ctx.Err() == nil {
		g.log.LogAttrs(ctx, slog.LevelError, "paygate: system log retention failed", attrErr(err))
	} else if n > 0 {
		g.log.LogAttrs(ctx, slog.LevelInfo, "paygate: system log rows past retention deleted", slog.Int64("rows", n))
	}
	if n, err := g.store.PurgeIdempotent(ctx, now); err != nil && ctx.Err() == nil {
		g.log.LogAttrs(ctx, slog.LevelError, "paygate: purging expired idempotency keys failed", attrErr(err))
	} else if n > 0 {
		g.log.LogAttrs(ctx, slog.LevelInfo, "paygate: expired idempotency keys deleted", slog.Int64("keys", n))
	}
}

// Close writes the system log rows still buffered and stops the writer.
// Run does this itself when it returns; call Close when you use the
// Gateway without Run (API only) and SystemLogs on. It returns ctx's error
// if the flush does not finish in time. After Close, system log rows are
// dropped.
func (g *Gateway) Close(ctx context.Context) error {
	if g.logs == nil {
		return nil
	}
	return g.logs.close(ctx)
}

// SystemLogsDropped is how many system log rows were dropped because the
// buffer was full (or the database refused a batch).
func (g *Gateway) SystemLogsDropped() int64 {
	if g.logs == nil {
		return 0
	}
	return g.logs.dropped.Load()
}

// syslog records a system log row (when the system log is on), with the
// request id of ctx, redacted.
func (g *Gateway) syslog(ctx context.Context, level, source, msg string, fields map[string]any) {
	if g.logs == nil {
		return
	}
	row := SystemLog{Level: level, Source: source, Message: g.redact(msg), RequestID: RequestIDFrom(ctx), CreatedAt: g.now()}
	if rm, ok := ctx.Value(reqMetaKey{}).(*reqMeta); ok {
		row.Method, row.Path = rm.method, rm.path
	}
	row.Fields = g.redactFields(fields)
	g.logs.add(row)
}

func (g *Gateway) redactFields(fields map[string]any) json.RawMessage {
	if len(fields) == 0 {
		return json.RawMessage("{}")
	}
	b, err := json.Marshal(fields)
	if err != nil {
		return json.RawMessage("{}")
	}
	return json.RawMessage(g.redact(string(b)))
}

type reqMetaKey struct{}

// reqMeta is what observe knows of a request; a webhook request's outcome
// is added to it, so that the request and its outcome make one row.
type reqMeta struct {
	method, path string
	caller       string // the authenticated caller, set by requireAuth
	webhook      *webhookOutcome
}

type webhookOutcome struct {
	level, message string
	fields         map[string]any
}

// webhookLog records a webhook's outcome: on the request's own row when
// served by Handler or WebhookHandler, else (HandleWebhook called from Go)
// as a row of its own.
func (g *Gateway) webhookLog(ctx context.Context, level, msg string, fields map[string]any) {
	if rm, ok := ctx.Value(reqMetaKey{}).(*reqMeta); ok {
		rm.webhook = &webhookOutcome{level: level, message: msg, fields: fields}
		return
	}
	g.syslog(ctx, level, SourceWebhook, msg, fields)
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// observe writes the system log row (source http) and the metrics of every
// request.
func (g *Gateway) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		rm := &reqMeta{method: r.Method, path: r.URL.Path}
		ctx := context.WithValue(r.Context(), reqMetaKey{}, rm)
		r = r.WithContext(ctx)
		next.ServeHTTP(sw, r)
		d := time.Since(start)
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		g.metrics.request(r.Pattern, r.Method, status, d)
		if g.logs == nil {
			return
		}
		level := LevelInfo
		switch {
		case status >= 500:
			level = LevelError
		case status >= 400:
			level = LevelWarn
		}
		path := g.redact(r.URL.Path) // a client secret put where an id goes
		row := SystemLog{Level: level, Source: SourceHTTP, Message: r.Method + " " + path + " " + http.StatusText(status),
			RequestID: RequestIDFrom(ctx), Method: r.Method, Path: path, StatusCode: status, DurationMs: d.Milliseconds(),
			CreatedAt: g.now()}
		fields := map[string]any{"route": r.Pattern, "caller": rm.caller}
		if wo := rm.webhook; wo != nil {
			row.Source, row.Message = SourceWebhook, g.redact(wo.message)
			if wo.level != LevelInfo && level == LevelInfo {
				row.Level = wo.level
			}
			for k, v := range wo.fields {
				fields[k] = v
			}
		}
		row.Fields = g.redactFields(fields)
		g.logs.add(row)
	})
}

// secretPatterns match credentials of every kind paygate handles, so that
// none reaches a log line or a system log row even where it was not
// expected: Stripe secret and restricted keys, webhook and callback
// secrets, PaymentIntent client secrets, bearer tokens.
var secretPatterns = regexp.MustCompile(`(sk|rk)_(test|live)_[0-9A-Za-z]+|whsec_[0-9A-Za-z+/=]+|pi_[0-9A-Za-z]+_secret_[0-9A-Za-z]+|(?i:bearer)\s+[^\s<]\S*`)

// redact masks secrets in s: the configured ones by value, and anything
// shaped like a credential.
func (g *Gateway) redact(s string) string {
	for _, sec := range g.secrets {
		if sec != "" && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	if mayHoldCredential(s) && secretPatterns.MatchString(s) {
		s = secretPatterns.ReplaceAllString(s, "[redacted]")
	}
	return s
}

// mayHoldCredential is a cheap test that s could match secretPatterns; it
// spares the regular expression for the (nearly all) strings that cannot.
func mayHoldCredential(s string) bool {
	return strings.Contains(s, "_test_") || strings.Contains(s, "_live_") || strings.Contains(s, "whsec_") ||
		strings.Contains(s, "_secret_") || strings.Contains(s, "earer") || strings.Contains(s, "EARER")
}

// ListSystemLogs returns one page of system log rows, newest first.
func (g *Gateway) ListSystemLogs(ctx context.Context, f SystemLogFilter) (*Page[SystemLog], error) {
	switch f.Level {
	case "", LevelInfo, LevelWarn, LevelError:
	default:
		return nil, invalidParam("level", "level must be one of info, warn, error")
	}
	switch f.Source {
	case "", SourceHTTP, SourceWebhook, SourcePayment, SourceError:
	default:
		return nil, invalidParam("source", "source must be one of http, webhook, payment, error")
	}
	if f.RequestID != "" && !requestIDPattern.MatchString(f.RequestID) {
		return nil, invalidParam("requestId", "requestId is malformed")
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return nil, invalidParam("to", "to must be after from")
	}
	if err := checkPage(&f.PageParams); err != nil {
		return nil, err
	}
	return g.store.ListSystemLogs(ctx, f)
}
