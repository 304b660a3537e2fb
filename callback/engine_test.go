package callback_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/callback"
	"github.com/numedapp/paygate/internal/testenv"
	"github.com/numedapp/paygate/store"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const testSecret = "whsec_c2VjcmV0LWtleS1mb3ItcGF5Z2F0ZS10ZXN0cy0xMjM0NTY="

// clock is an injectable clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// receiver is a merchant endpoint that verifies every callback with the
// Standard Webhooks reference library and answers as told.
type receiver struct {
	*httptest.Server
	mu         sync.Mutex
	ids        map[string]int
	bodies     []string
	badSigs    int
	timestamps []string
	answer     func(n int, w http.ResponseWriter)
	onBody     func(webhookID string) // told of every request, in arrival order
	calls      atomic.Int64
}

func newReceiver(t testing.TB, answer func(n int, w http.ResponseWriter)) *receiver {
	rc := &receiver{ids: map[string]int{}, answer: answer}
	wh, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n := int(rc.calls.Add(1))
		rc.mu.Lock()
		// The engine signs with its (injected) clock: check the signature
		// here, the timestamp in the tests that control the clock.
		if err := wh.VerifyIgnoringTimestamp(body, r.Header); err != nil {
			rc.badSigs++
		}
		rc.ids[r.Header.Get("webhook-id")]++
		rc.timestamps = append(rc.timestamps, r.Header.Get("webhook-timestamp"))
		rc.bodies = append(rc.bodies, string(body))
		rc.mu.Unlock()
		if rc.onBody != nil {
			rc.onBody(r.Header.Get("webhook-id"))
		}
		if rc.answer != nil {
			rc.answer(n, w)
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) count(id string) int { rc.mu.Lock(); defer rc.mu.Unlock(); return rc.ids[id] }

type fixture struct {
	t     testing.TB
	pool  *pgxpool.Pool
	store *store.Store
	clock *clock
}

func newFixture(t testing.TB) *fixture {
	pool := testenv.NewPool(t)
	return &fixture{t: t, pool: pool, store: store.New(pool), clock: newClock()}
}

// seed queues n callbacks to url, due now, each for a payment of its own
// (callbacks of one payment go out one at a time, in sequence: seedOne),
// and returns their ids.
func (f *fixture) seed(url string, n int) []string {
	f.t.Helper()
	ctx := context.Background()
	now := f.clock.Now()
	run := fmt.Sprint(rand.Int64())
	if _, err := f.pool.Exec(ctx, `INSERT INTO paygate_payments (id, method, status, amount, currency, created_at, updated_at)
		SELECT 'pay_seed' || $1 || 'p' || g, 'intent', 'succeeded', 1000, 'usd', $2, $2 FROM generate_series(1, $3) g`, run, now, n); err != nil {
		f.t.Fatal(err)
	}
	rows, err := f.pool.Query(ctx, `INSERT INTO paygate_callbacks (id, payment_id, webhook_event_id, sequence, event_type, action, url,
			payload, status, next_attempt_at, created_at, updated_at)
		SELECT 'cb_seed' || $1 || 'x' || g, 'pay_seed' || $1 || 'p' || g, 'evt_seed' || g, 1, 'payment_intent.succeeded', 'payment_succeeded', $2,
			json_build_object('n', g), 'pending', $3, $3, $3
		FROM generate_series(1, $4) g ORDER BY g RETURNING id`, run, url, now, n)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.ids(rows, n)
}

// seedLeased queues one callback stored as RecordWebhookEvents stores a
// callback claimed at birth: leased to token until until, its first attempt
// counted, in the statement that inserts it, so that no claim can take it
// first.
func (f *fixture) seedLeased(url, token string, until time.Time) string {
	f.t.Helper()
	ctx := context.Background()
	now := f.clock.Now()
	run := fmt.Sprint(rand.Int64())
	if _, err := f.pool.Exec(ctx, `INSERT INTO paygate_payments (id, method, status, amount, currency, created_at, updated_at)
		VALUES ('pay_leased' || $1, 'intent', 'succeeded', 1000, 'usd', $2, $2)`, run, now); err != nil {
		f.t.Fatal(err)
	}
	rows, err := f.pool.Query(ctx, `INSERT INTO paygate_callbacks (id, payment_id, webhook_event_id, sequence, event_type, action, url,
			payload, status, next_attempt_at, created_at, updated_at, lease_token, lease_expires_at, attempts)
		VALUES ('cb_leased' || $1, 'pay_leased' || $1, 'evt_leased' || $1, 1, 'payment_intent.succeeded', 'payment_succeeded', $2,
			'{"n": 1}', 'pending', $3, $3, $3, $4, $5, 1) RETURNING id`, run, url, now, token, until)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.ids(rows, 1)[0]
}

// seedOne queues n callbacks of one payment (sequences 1…n), due now.
func (f *fixture) seedOne(url string, n int) []string {
	f.t.Helper()
	ctx := context.Background()
	now := f.clock.Now()
	var pid string
	if err := f.pool.QueryRow(ctx, `INSERT INTO paygate_payments (id, method, status, amount, currency, created_at, updated_at)
		VALUES ('pay_one' || (random() * 1e9)::bigint, 'intent', 'succeeded', 1000, 'usd', $1, $1) RETURNING id`, now).Scan(&pid); err != nil {
		f.t.Fatal(err)
	}
	rows, err := f.pool.Query(ctx, `INSERT INTO paygate_callbacks (id, payment_id, webhook_event_id, sequence, event_type, action, url,
			payload, status, next_attempt_at, created_at, updated_at)
		SELECT 'cb_' || substr($1, 5) || 'x' || g, $1, 'evt_seed' || g, g, 'payment_intent.succeeded', 'payment_succeeded', $2,
			json_build_object('n', g), 'pending', $3, $3, $3
		FROM generate_series(1, $4) g ORDER BY g RETURNING id`, pid, url, now, n)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.ids(rows, n)
}

func (f *fixture) ids(rows pgx.Rows, n int) []string {
	f.t.Helper()
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		ids = append(ids, id)
	}
	if rows.Err() != nil || len(ids) != n {
		f.t.Fatalf("seeded %d of %d: %v", len(ids), n, rows.Err())
	}
	return ids
}

func (f *fixture) engine(mut ...func(*callback.Config)) *callback.Engine {
	f.t.Helper()
	cfg := callback.Config{Queue: f.store, Secrets: []string{testSecret}, Now: f.clock.Now, Timeout: 2 * time.Second,
		PollInterval: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, m := range mut {
		m(&cfg)
	}
	e, err := callback.New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return e
}

// waitDrained waits, within d, until no callback is pending.
func (f *fixture) waitDrained(d time.Duration) {
	f.t.Helper()
	for deadline := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		n, err := f.store.CallbackQueueDepth(context.Background())
		if err != nil {
			f.t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%d callbacks still pending", n)
		}
	}
}

func (f *fixture) callback(id string) *paygate.Callback {
	f.t.Helper()
	c, err := f.store.GetCallback(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fixture) attempts(id string) []paygate.CallbackAttempt {
	f.t.Helper()
	var out []paygate.CallbackAttempt
	pg, err := f.store.ListCallbackAttempts(context.Background(), paygate.CallbackFilter{PageParams: paygate.PageParams{Limit: 100}})
	if err != nil {
		f.t.Fatal(err)
	}
	for i := len(pg.Items) - 1; i >= 0; i-- {
		if pg.Items[i].CallbackID == id {
			out = append(out, pg.Items[i])
		}
	}
	return out
}

func step(t *testing.T, e *callback.Engine, want int) {
	t.Helper()
	n, err := e.DeliverDue(context.Background(), 100)
	if err != nil || n != want {
		t.Fatalf("DeliverDue = %d, %v; want %d", n, err, want)
	}
}

func TestFirstTrySuccess(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := newReceiver(t, nil)
	id := f.seed(rc.URL, 1)[0]
	step(t, f.engine(), 1)
	c := f.callback(id)
	if c.Status != paygate.CallbackSucceeded || c.Attempts != 1 || c.DeliveredAt == nil || c.LeaseToken != "" {
		t.Fatalf("callback = %+v", c)
	}
	a := f.attempts(id)
	if len(a) != 1 || !a[0].Success || a[0].StatusCode != 200 || a[0].Attempt != 1 || a[0].URL != rc.URL {
		t.Fatalf("attempts = %+v", a)
	}
	if rc.count(id) != 1 || rc.badSigs != 0 {
		t.Fatalf("receiver: %d deliveries of %s, %d bad signatures", rc.count(id), id, rc.badSigs)
	}
	if want := fmt.Sprint(f.clock.Now().Unix()); rc.timestamps[0] != want {
		t.Fatalf("webhook-timestamp %s, want the engine clock's %s", rc.timestamps[0], want)
	}
}

func TestRetryThenSuccessAtScheduledTime(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := newReceiver(t, func(n int, w http.ResponseWriter) {
		if n == 1 {
			w.WriteHeader(500)
			io.WriteString(w, "temporarily broken")
		}
	})
	id := f.seed(rc.URL, 1)[0]
	e := f.engine()
	start := f.clock.Now()
	step(t, e, 1)
	c := f.callback(id)
	if c.Status != paygate.CallbackPending || c.NextAttemptAt.Before(start.Add(5*time.Second)) || c.NextAttemptAt.After(start.Add(6*time.Second)) {
		t.Fatalf("after 500: %+v (next %v after start)", c, c.NextAttemptAt.Sub(start))
	}
	f.clock.Set(c.NextAttemptAt.Add(-time.Millisecond))
	step(t, e, 0) // not due yet
	f.clock.Set(c.NextAttemptAt)
	step(t, e, 1)
	a := f.attempts(id)
	if len(a) != 2 || a[0].Success || a[0].StatusCode != 500 || a[0].ErrorClass != "http" || a[0].ResponseBody != "temporarily broken" ||
		!a[1].Success || !a[1].CreatedAt.Equal(c.NextAttemptAt) {
		t.Fatalf("attempts = %+v", a)
	}
	if rc.count(id) != 2 {
		t.Fatalf("webhook-id seen %d times", rc.count(id))
	}
}

func TestFailureClasses(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// The timeout is long enough for a loaded machine (-race, other packages
	// testing beside) to answer the others in time; the slow one is well past it.
	slow := newReceiver(t, func(int, http.ResponseWriter) { time.Sleep(3 * time.Second) })
	gone := newReceiver(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusGone) })
	target := newReceiver(t, nil)
	moved := newReceiver(t, func(_ int, w http.ResponseWriter) {
		w.Header().Set("Location", target.URL)
		w.WriteHeader(http.StatusMovedPermanently)
	})
	limited := newReceiver(t, func(_ int, w http.ResponseWriter) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	big := newReceiver(t, func(_ int, w http.ResponseWriter) {
		w.WriteHeader(500)
		io.WriteString(w, strings.Repeat("x", 5000))
	})
	binary := newReceiver(t, func(_ int, w http.ResponseWriter) {
		w.WriteHeader(500)
		w.Write([]byte("a\x00b\xff\xfec"))
	})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := "http://" + ln.Addr().String()
	ln.Close()

	e := f.engine(func(c *callback.Config) { c.Timeout = time.Second })
	ids := map[string]string{
		"timeout":  f.seed(slow.URL, 1)[0],
		"gone":     f.seed(gone.URL, 1)[0],
		"redirect": f.seed(moved.URL, 1)[0],
		"limited":  f.seed(limited.URL, 1)[0],
		"refused":  f.seed(refused, 1)[0],
		"big":      f.seed(big.URL, 1)[0],
		"binary":   f.seed(binary.URL, 1)[0],
	}
	now := f.clock.Now()
	step(t, e, 7)

	check := func(name string, status paygate.CallbackStatus, class string, code int) paygate.CallbackAttempt {
		t.Helper()
		c := f.callback(ids[name])
		a := f.attempts(ids[name])
		if c.Status != status || len(a) != 1 || a[0].Success || a[0].ErrorClass != class || a[0].StatusCode != code {
			t.Fatalf("%s: callback %+v attempts %+v", name, c, a)
		}
		return a[0]
	}
	check("timeout", paygate.CallbackPending, "timeout", 0)
	check("gone", paygate.CallbackFailed, "http", 410)
	check("redirect", paygate.CallbackPending, "redirect", 301)
	check("refused", paygate.CallbackPending, "connect", 0)
	check("limited", paygate.CallbackPending, "http", 429)
	if a := check("big", paygate.CallbackPending, "http", 500); len(a.ResponseBody) != 1024 {
		t.Fatalf("response body kept %d bytes, want 1024", len(a.ResponseBody))
	}
	if a := check("binary", paygate.CallbackPending, "http", 500); a.ResponseBody != "abc" {
		t.Fatalf("binary response body stored as %q", a.ResponseBody)
	}
	if target.calls.Load() != 0 {
		t.Fatal("a redirect was followed")
	}
	if next := f.callback(ids["limited"]).NextAttemptAt; next.Before(now.Add(120 * time.Second)) {
		t.Fatalf("Retry-After 120 not honoured: next attempt %v after", next.Sub(now))
	}
	// 410 is final: nothing is due for it, ever.
	f.clock.Advance(100 * 24 * time.Hour)
	if _, err := e.DeliverDue(context.Background(), 100); err != nil {
		t.Fatal(err)
	}
	if gone.calls.Load() != 1 {
		t.Fatalf("410 receiver called %d times", gone.calls.Load())
	}
}

// The whole schedule, walked with the clock: 14 attempts, each at its step
// plus at most 20 %, then failed.
func TestWholeSchedule(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(503) })
	id := f.seed(rc.URL, 1)[0]
	e := f.engine()
	last := f.clock.Now()
	for n := 1; n <= 14; n++ {
		step(t, e, 1)
		c := f.callback(id)
		if n == 14 {
			if c.Status != paygate.CallbackFailed || c.Attempts != 14 {
				t.Fatalf("after the last attempt: %+v", c)
			}
			break
		}
		want := callback.DefaultSchedule[n]
		got := c.NextAttemptAt.Sub(last)
		if got < want || got > want+want/5 {
			t.Fatalf("attempt %d: next in %v, want %v to %v", n, got, want, want+want/5)
		}
		f.clock.Set(c.NextAttemptAt)
		last = c.NextAttemptAt
	}
	f.clock.Advance(365 * 24 * time.Hour)
	step(t, e, 0)
	if n := len(f.attempts(id)); n != 14 || rc.count(id) != 14 {
		t.Fatalf("%d attempts logged, %d received", n, rc.count(id))
	}
}

// A worker that stopped mid-send (its lease expires): the callback is sent
// again, with the same webhook-id; and that worker's late result cannot
// overwrite the newer one.
func TestLeaseExpiryAndFence(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := newReceiver(t, nil)
	id := f.seed(rc.URL, 1)[0]
	ctx := context.Background()

	stale, err := f.store.ClaimCallbacks(ctx, 10, time.Minute, f.clock.Now()) // the worker that dies
	if err != nil || len(stale) != 1 {
		t.Fatalf("claim: %v %v", stale, err)
	}
	e := f.engine()
	step(t, e, 0) // leased: not due
	f.clock.Advance(61 * time.Second)
	step(t, e, 1)
	c := f.callback(id)
	if c.Status != paygate.CallbackSucceeded || c.Attempts != 2 || rc.count(id) != 1 {
		t.Fatalf("redelivery: %+v, received %d", c, rc.count(id))
	}

	late := stale[0]
	late.Status, late.LastError = paygate.CallbackFailed, "late failure"
	applied, err := f.store.RecordCallbackAttempt(ctx, &late, paygate.CallbackAttempt{URL: rc.URL, Attempt: 1, Error: "late", ErrorClass: "timeout", CreatedAt: f.clock.Now()})
	if err != nil || applied {
		t.Fatalf("stale record: applied %v, %v", applied, err)
	}
	if c := f.callback(id); c.Status != paygate.CallbackSucceeded || c.LastError != "" {
		t.Fatalf("the fence let a stale result through: %+v", c)
	}
	if n := len(f.attempts(id)); n != 2 {
		t.Fatalf("%d attempt rows; the stale attempt is still logged", n)
	}
}

// After a crash, the callbacks the dead process had claimed go out again
// within 20 s: the default lease outlasts one attempt, not more.
func TestCrashedWorkersCallbacksGoOutWithin20s(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := newReceiver(t, nil)
	id := f.seed(rc.URL, 1)[0]
	e := f.engine(func(c *callback.Config) { c.Timeout = 0 }) // the defaults
	if e.Lease() >= 20*time.Second || e.Lease() <= 15*time.Second {
		t.Fatalf("default lease %v: want more than the 15 s timeout and under 20 s", e.Lease())
	}
	// A worker of a process that then dies claims it, with the same lease.
	if c, err := f.store.ClaimCallbacks(context.Background(), 10, e.Lease(), f.clock.Now()); err != nil || len(c) != 1 {
		t.Fatalf("claim: %v %v", c, err)
	}
	f.clock.Advance(e.Lease() - time.Second)
	step(t, e, 0) // still leased to the dead worker
	f.clock.Advance(2 * time.Second)
	step(t, e, 1)
	if c := f.callback(id); c.Status != paygate.CallbackSucceeded || rc.count(id) != 1 {
		t.Fatalf("after the lease: %+v, received %d", c, rc.count(id))
	}
}

// Two engines on one database deliver 1,000 callbacks, each exactly once.
func TestTwoEnginesExactlyOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := newReceiver(t, nil)
	ids := f.seed(rc.URL, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		e := f.engine(func(c *callback.Config) { c.Now = time.Now; c.Workers = 4 })
		f.clock.Set(time.Now())
		wg.Add(1)
		go func() { defer wg.Done(); _ = e.Run(ctx) }()
	}
	f.waitDrained(60 * time.Second)
	cancel()
	wg.Wait()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.ids) != 1000 || rc.badSigs != 0 {
		t.Fatalf("%d distinct ids, %d bad signatures", len(rc.ids), rc.badSigs)
	}
	for _, id := range ids {
		if rc.ids[id] != 1 {
			t.Fatalf("%s delivered %d times", id, rc.ids[id])
		}
	}
}

// Pending callbacks survive a restart: a new engine resumes them.
func TestRestartResumes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var healthy atomic.Bool
	rc := newReceiver(t, func(_ int, w http.ResponseWriter) {
		if !healthy.Load() {
			w.WriteHeader(502)
		}
	})
	ids := f.seed(rc.URL, 5)
	first := f.engine()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- first.Run(ctx) }()
	for len(f.attempts(ids[4])) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	healthy.Store(true)
	f.clock.Advance(10 * time.Second)
	second := f.engine()
	step(t, second, 5)
	for _, id := range ids {
		if c := f.callback(id); c.Status != paygate.CallbackSucceeded || c.Attempts != 2 {
			t.Fatalf("after restart: %+v", c)
		}
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]callback.Config{
		"no queue":      {Secrets: []string{testSecret}},
		"no secret":     {Queue: &store.Store{}},
		"short secret":  {Queue: &store.Store{}, Secrets: []string{"whsec_c2hvcnQ="}},
		"lease<timeout": {Queue: &store.Store{}, Secrets: []string{testSecret}, Timeout: time.Minute, Lease: time.Second},
	} {
		if _, err := callback.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// BenchmarkDeliver measures callbacks delivered per second to a local
// receiver by one engine with 8 workers.
func BenchmarkDeliver(b *testing.B) {
	f := newFixture(b)
	rc := newReceiver(b, nil)
	f.seed(rc.URL, b.N)
	e := f.engine(func(c *callback.Config) { c.Now = time.Now; c.Workers = 8 })
	f.clock.Set(time.Now())
	ctx, cancel := context.WithCancel(context.Background())
	b.ResetTimer()
	go e.Run(ctx)
	for int(rc.calls.Load()) < b.N {
		time.Sleep(time.Millisecond)
	}
	for {
		n, _ := f.store.CallbackQueueDepth(context.Background())
		if n == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	cancel()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "callbacks/s")
}

// The merchant's endpoint is down for three days (injected clock): the
// breaker stops the engine burning attempts, no attempt is ever earlier than
// the schedule, and when the endpoint returns every callback is delivered,
// none lost.
func TestMerchantDownThreeDays(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var up atomic.Bool
	rc := newReceiver(t, func(_ int, w http.ResponseWriter) {
		if !up.Load() {
			w.WriteHeader(503)
		}
	})
	ids := f.seed(rc.URL, 30)
	e := f.engine()
	ctx := context.Background()
	start := f.clock.Now()
	for f.clock.Now().Sub(start) < 72*time.Hour {
		if _, err := e.DeliverDue(ctx, 100); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Minute)
	}
	during := int(rc.calls.Load())
	// Without the breaker each callback would have been tried about 12
	// times in three days (360 attempts); with it, 10 failures open it and
	// then one probe per cooldown (30 s doubling to 30 min).
	if during == 0 || during > 200 {
		t.Fatalf("%d attempts while the merchant was down", during)
	}
	up.Store(true)
	for i := 0; i < 24*60; i++ {
		if n, err := f.store.CallbackQueueDepth(ctx); err != nil || n == 0 {
			break
		}
		if _, err := e.DeliverDue(ctx, 100); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Minute)
	}
	for _, id := range ids {
		if c := f.callback(id); c.Status != paygate.CallbackSucceeded {
			t.Fatalf("after the merchant returned: %+v", c)
		}
	}
	// No attempt came earlier than its schedule step.
	rows, err := f.pool.Query(ctx, `SELECT callback_id, created_at FROM paygate_callback_attempts ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]time.Time{}
	n := map[string]int{}
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			t.Fatal(err)
		}
		if k := n[id]; k > 0 && at.Sub(last[id]) < callback.DefaultSchedule[k] {
			t.Fatalf("%s attempt %d came %v after the last, before its step %v", id, k+1, at.Sub(last[id]), callback.DefaultSchedule[k])
		}
		last[id], n[id] = at, n[id]+1
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d attempts during the outage, %d in all for %d callbacks", during, rc.calls.Load(), len(ids))
}

// Callbacks of one payment go out one at a time, in sequence: a receiver
// that drops a callback whose sequence is not above the last it applied
// never drops one it has not seen. A later callback waits while an earlier
// one is retried.
func TestOnePaymentsCallbacksInSequence(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var fail atomic.Bool
	fail.Store(true)
	var order []string
	var mu sync.Mutex
	rc := newReceiver(t, func(_ int, w http.ResponseWriter) {
		if fail.Load() {
			w.WriteHeader(503)
		}
	})
	rc.onBody = func(id string) { mu.Lock(); order = append(order, id); mu.Unlock() }
	ids := f.seedOne(rc.URL, 3)
	e := f.engine()
	step(t, e, 1) // only the first: it fails
	f.clock.Advance(time.Minute)
	fail.Store(false)
	step(t, e, 1) // the first again, now delivered
	step(t, e, 1)
	step(t, e, 1)
	step(t, e, 0)
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{ids[0], ids[0], ids[1], ids[2]}, order); diff != "" {
		t.Fatalf("delivery order (-want +got):\n%s", diff)
	}
}

// Callbacks committed already claimed (ClaimToken) are sent by Deliver
// without a claim, recorded under their birth lease; ClaimToken refuses
// while the engine does not run or its receiver is down.
func TestClaimedAtBirthDelivered(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	down := atomic.Bool{}
	rc := newReceiver(t, func(n int, w http.ResponseWriter) {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	e := f.engine(func(c *callback.Config) { c.BreakerThreshold = 2; c.PollInterval = time.Hour })
	if tok, _ := e.ClaimToken(); tok != "" {
		t.Fatalf("ClaimToken before Run = %q", tok)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = e.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	var tok string
	var until time.Time
	for deadline := time.Now().Add(5 * time.Second); tok == "" && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		tok, until = e.ClaimToken()
	}
	if tok == "" || !until.Equal(f.clock.Now().Add(e.Lease())) {
		t.Fatalf("ClaimToken while running = %q, %v", tok, until)
	}
	id := f.seedLeased(rc.URL, tok, until)
	c := *f.callback(id)
	c.LeaseToken = tok
	e.Deliver([]callback.Callback{c})
	for deadline := time.Now().Add(5 * time.Second); f.callback(id).Status != paygate.CallbackSucceeded; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not delivered: %+v", f.callback(id))
		}
	}
	if got := f.callback(id); got.Attempts != 1 || got.LeaseToken != "" || rc.count(id) != 1 || len(f.attempts(id)) != 1 {
		t.Fatalf("callback %+v, %d deliveries, %d attempt rows", got, rc.count(id), len(f.attempts(id)))
	}
	// The receiver goes down: once the breaker opens, no more claims at birth.
	down.Store(true)
	var ids []string
	for range 2 {
		tok, until := e.ClaimToken()
		if tok == "" {
			t.Fatal("ClaimToken refused before the breaker opened")
		}
		id := f.seedLeased(rc.URL, tok, until)
		ids = append(ids, id)
		c := *f.callback(id)
		c.LeaseToken = tok
		e.Deliver([]callback.Callback{c})
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if tok, _ := e.ClaimToken(); tok == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ClaimToken still offers tokens with the receiver down")
		}
	}
	for _, id := range ids {
		for deadline := time.Now().Add(5 * time.Second); f.callback(id).LastError == ""; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("failed attempt not recorded: %+v", f.callback(id))
			}
		}
		if c := f.callback(id); c.Status != paygate.CallbackPending || c.LeaseToken != "" || c.Attempts != 1 {
			t.Errorf("failed attempt not recorded under the birth lease: %+v", c)
		}
	}
}

// A slow but healthy receiver: a worker claims 16 callbacks and sends them
// 8 at a time, each answered in 1.4 s, under a 2.3 s lease with a 2 s
// timeout. The second 8 would start with 0.9 s of their lease left, less
// than an attempt may take: sent then, the other engine claimed them when
// the lease ended and sent them again. They are given back and claimed
// again, and every callback reaches the receiver exactly once.
func TestCallbacksNotSentPastTheirLease(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := newReceiver(t, func(n int, w http.ResponseWriter) {
		time.Sleep(1400 * time.Millisecond)
		w.WriteHeader(http.StatusNoContent)
	})
	ids := f.seed(rc.URL, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range 2 {
		e := f.engine(func(c *callback.Config) {
			c.Now, c.Workers, c.Timeout, c.Lease, c.PollInterval = time.Now, 1, 2*time.Second, 2300*time.Millisecond, 20*time.Millisecond
		})
		wg.Add(1)
		go func() { defer wg.Done(); _ = e.Run(ctx) }()
	}
	f.waitDrained(30 * time.Second)
	cancel()
	wg.Wait()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, id := range ids {
		if rc.ids[id] != 1 {
			t.Errorf("%s delivered %d times", id, rc.ids[id])
		}
	}
}
