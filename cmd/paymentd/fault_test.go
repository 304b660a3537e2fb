package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/callback"
	"github.com/numedapp/paygate/internal/testenv"
	"github.com/numedapp/paygate/internal/testsrv"
	"github.com/numedapp/paygate/store"
)

// Fault tests: paymentd as a real process, killed with SIGKILL under load,
// and its database restarted under load. They run in reduced size here;
// docs/benchmarks.md gives the full-size commands (PAYGATE_FAULT_SECONDS).

// The test binary is also paymentd: started with PAYGATE_FAULT_CHILD=1 it
// runs main, so the fault tests need no separate build.
func init() {
	if os.Getenv("PAYGATE_FAULT_CHILD") == "1" {
		main()
		os.Exit(0)
	}
}

const faultWebhookSecret = "whsec_faultTestSecret0123456789"
const faultCallbackSecret = "whsec_c2VjcmV0LWtleS1mb3ItcGF5Z2F0ZS10ZXN0cy0xMjM0NTY="

// faultSeconds is how long each load phase runs.
func faultSeconds() time.Duration {
	if s := os.Getenv("PAYGATE_FAULT_SECONDS"); s != "" {
		var n int
		if _, err := fmt.Sscan(s, &n); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	return 1500 * time.Millisecond
}

// child is one paymentd process.
type child struct {
	cmd  *exec.Cmd
	out  *testenv.LockedBuffer
	base string
}

func startChild(t *testing.T, env []string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(os.Args[0]), out: &testenv.LockedBuffer{}}
	c.cmd.Env = append(os.Environ(), append(env, "PAYGATE_FAULT_CHILD=1")...)
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	for _, kv := range env {
		if len(kv) > 14 && kv[:14] == "PAYMENTD_ADDR=" {
			c.base = "http://" + kv[14:]
		}
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.cmd.Process.Kill(); _ = c.cmd.Wait() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := http.Get(c.base + "/api/health/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("paymentd did not become ready:\n%s", c.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// merchantCounter receives callbacks, verifying each, and counts them by webhook-id.
type merchantCounter struct {
	mu      sync.Mutex
	ids     map[string]int
	badSigs int
}

func newMerchantCounter(t *testing.T) (*merchantCounter, string) {
	m := &merchantCounter{ids: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m.mu.Lock()
		defer m.mu.Unlock()
		if err := callback.Verify(faultCallbackSecret, r.Header, body); err != nil {
			m.badSigs++
			http.Error(w, err.Error(), 400)
			return
		}
		m.ids[r.Header.Get("webhook-id")]++
	}))
	t.Cleanup(srv.Close)
	return m, srv.URL + "/paygate"
}

// sender posts signed payment_intent.succeeded events, one per payment,
// and remembers which ones were answered 2xx.
type sender struct {
	base     string
	bases    []string // several replicas, round-robin
	payments []*paygate.Payment
	next     atomic.Int64
	mu       sync.Mutex
	acked    map[string]string // event id → payment id
	statuses map[int]int
	noRetry  int // 503s without Retry-After
}

func (s *sender) event(i int) (string, []byte) {
	p := s.payments[i%len(s.payments)]
	id := fmt.Sprintf("evt_fault%07d", i)
	body := fmt.Sprintf(`{"id":%q,"object":"event","api_version":"2023-10-16","created":%d,"livemode":false,"type":"payment_intent.succeeded",
"data":{"object":{"id":%q,"object":"payment_intent","amount":%d,"amount_received":%d,"currency":"usd","status":"succeeded",
"latest_charge":"ch_%s","created":1700000000,"metadata":{"paygate_payment_id":%q}}}}`,
		id, time.Now().Unix(), p.PaymentIntentID, p.Amount, p.Amount, p.ID[4:], p.ID)
	return id, []byte(body)
}

func (s *sender) run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(s.next.Add(1) - 1)
				id, body := s.event(i)
				sig := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: faultWebhookSecret, Timestamp: time.Now()})
				base := s.base
				if len(s.bases) > 0 {
					base = s.bases[i%len(s.bases)] // round-robin over replicas
				}
				req, _ := http.NewRequest("POST", base+"/api/webhooks/stripe", bytes.NewReader(body))
				req.Header.Set("Stripe-Signature", sig.Header)
				resp, err := client.Do(req)
				status := 0
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				s.mu.Lock()
				s.statuses[status]++
				if status >= 200 && status < 300 {
					s.acked[id] = s.payments[i%len(s.payments)].ID
				}
				if status == 503 && resp.Header.Get("Retry-After") == "" {
					s.noRetry++
				}
				s.mu.Unlock()
				if err != nil {
					time.Sleep(10 * time.Millisecond) // the process is down
				}
			}
		}()
	}
	wg.Wait()
}

// faultSetup migrates a fresh database and creates payments there.
func faultSetup(t *testing.T, dbURL string, n int) (*pgxpool.Pool, []*paygate.Payment) {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := store.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	st := store.New(pool)
	now := time.Now().UTC().Truncate(time.Microsecond)
	var ps []*paygate.Payment
	for i := range n {
		p := &paygate.Payment{ID: fmt.Sprintf("pay_fault%06d", i), Method: paygate.MethodIntent, Status: paygate.StatusPending,
			Amount: int64(500 + i), Currency: "usd", Quantity: 1, Metadata: map[string]string{}, PaymentIntentID: fmt.Sprintf("pi_fault%06d", i),
			CreatedAt: now, UpdatedAt: now}
		if err := st.InsertPayment(ctx, p); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return pool, ps
}

func faultEnv(t *testing.T, dbURL, callbackURL string) []string {
	return []string{
		"DATABASE_URL=" + dbURL,
		"STRIPE_SECRET_KEY=" + testsrv.StripeMockKey,
		"STRIPE_API_BASE=" + testenv.StripeMockURL(t),
		"STRIPE_WEBHOOK_SECRET=" + faultWebhookSecret,
		"CALLBACK_URL=" + callbackURL,
		"CALLBACK_SECRET=" + faultCallbackSecret,
		"PAYMENTD_API_KEYS=fault-api-key-0123456789",
		"PAYMENTD_ADDR=" + freeAddr(t),
		"PAYMENTD_LOG_FORMAT=json",
	}
}

// checkAcked verifies that every acknowledged event is stored and applied.
func checkAcked(t *testing.T, pool *pgxpool.Pool, acked map[string]string) {
	t.Helper()
	ctx := context.Background()
	ids := make([]string, 0, len(acked))
	pays := map[string]bool{}
	for id, p := range acked {
		ids = append(ids, id)
		pays[p] = true
	}
	var stored int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM paygate_webhook_events WHERE id = ANY($1) AND status = 'processed'`, ids).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	payIDs := make([]string, 0, len(pays))
	for p := range pays {
		payIDs = append(payIDs, p)
	}
	var applied int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM paygate_payments WHERE id = ANY($1) AND status = 'succeeded'`, payIDs).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	t.Logf("acknowledged %d events (%d payments): %d stored and processed, %d payments applied", len(ids), len(payIDs), stored, applied)
	if stored != len(ids) || applied != len(payIDs) {
		t.Fatalf("lost: %d of %d acknowledged events not stored, %d of %d payments not applied", len(ids)-stored, len(ids), len(payIDs)-applied, len(payIDs))
	}
}

// checkCallbacks waits until every queued callback is delivered and checks
// the merchant got each one.
func checkCallbacks(t *testing.T, pool *pgxpool.Pool, m *merchantCounter, within time.Duration) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(within)
	for {
		var pending int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM paygate_callbacks WHERE status <> 'succeeded'`).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d callbacks not delivered after %v", pending, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rows, err := pool.Query(ctx, `SELECT id FROM paygate_callbacks`)
	if err != nil {
		t.Fatal(err)
	}
	queued, err := pgxCollectStrings(rows)
	if err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	missing, dups := 0, 0
	for _, id := range queued {
		switch n := m.ids[id]; {
		case n == 0:
			missing++
		case n > 1:
			dups++
		}
	}
	t.Logf("callbacks: %d queued, %d received (%d delivered more than once, at least once is the contract), %d bad signatures", len(queued), len(m.ids), dups, m.badSigs)
	if missing > 0 || m.badSigs > 0 || len(m.ids) != len(queued) {
		t.Fatalf("%d queued callbacks never received; %d received ids; %d bad signatures", missing, len(m.ids), m.badSigs)
	}
}

// paymentd killed with SIGKILL mid-load and restarted: every event that got
// a 2xx is stored and applied, and every queued callback is delivered after
// the restart (the dead process's leases expire within 20 s).
func TestKillNineUnderLoad(t *testing.T) {
	dbURL := testenv.SchemaURL(t)
	pool, payments := faultSetup(t, dbURL, 1500)
	m, cbURL := newMerchantCounter(t)
	env := faultEnv(t, dbURL, cbURL)
	first := startChild(t, env)
	s := &sender{base: first.base, payments: payments, acked: map[string]string{}, statuses: map[int]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.run(ctx, 8); close(done) }()

	time.Sleep(faultSeconds())
	if err := first.cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = first.cmd.Wait()
	s.mu.Lock()
	ackedBefore := len(s.acked)
	s.mu.Unlock()
	second := startChild(t, env)
	time.Sleep(faultSeconds())
	cancel()
	<-done
	t.Logf("answers: %v; acknowledged before the kill: %d", s.statuses, ackedBefore)
	if ackedBefore == 0 || len(s.acked) == ackedBefore {
		t.Fatalf("load did not run on both sides of the kill: %v", s.statuses)
	}
	if s.statuses[500] > 0 {
		t.Fatalf("500 answers: %v\n%s", s.statuses, second.out.String())
	}
	checkAcked(t, pool, s.acked)
	checkCallbacks(t, pool, m, 40*time.Second)
}

// The database restarted mid-load: no 2xx for an event that was not
// stored, 503 with Retry-After (never 500) while it is down, readiness says
// not ready, and paymentd recovers without a restart.
func TestDatabaseRestartUnderLoad(t *testing.T) {
	ctx := context.Background()
	pg, err := testsrv.StartPostgres(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Stop)
	pool, payments := faultSetup(t, pg.URL, 400)
	m, cbURL := newMerchantCounter(t)
	c := startChild(t, faultEnv(t, pg.URL, cbURL))
	s := &sender{base: c.base, payments: payments, acked: map[string]string{}, statuses: map[int]int{}}
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s.run(lctx, 8); close(done) }()

	time.Sleep(faultSeconds())
	pg.Pause()
	time.Sleep(faultSeconds())
	resp, err := http.Get(c.base + "/api/health/ready")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("readiness with the database down: %d", resp.StatusCode)
	}
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(c.base + "/api/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("paymentd did not recover:\n%s", c.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.mu.Lock()
	ackedBefore := len(s.acked)
	s.mu.Unlock()
	time.Sleep(faultSeconds())
	cancel()
	<-done
	t.Logf("answers: %v", s.statuses)
	if s.statuses[503] == 0 || s.statuses[500] > 0 || s.noRetry > 0 {
		t.Fatalf("while the database was down: %v (%d 503s without Retry-After); want 503s, no 500", s.statuses, s.noRetry)
	}
	if len(s.acked) == ackedBefore {
		t.Fatalf("no event acknowledged after the database came back: %v", s.statuses)
	}
	pool.Reset() // its connections died with the server
	checkAcked(t, pool, s.acked)
	checkCallbacks(t, pool, m, 40*time.Second)
}

func pgxCollectStrings(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close()
}) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Three paymentd replicas on one database behind round-robin: every
// acknowledged event is stored and applied once, and each callback is
// delivered exactly once although three engines share the outbox.
func TestThreeReplicas(t *testing.T) {
	dbURL := testenv.SchemaURL(t)
	pool, payments := faultSetup(t, dbURL, 600)
	m, cbURL := newMerchantCounter(t)
	var bases []string
	for range 3 {
		bases = append(bases, startChild(t, faultEnv(t, dbURL, cbURL)).base)
	}
	s := &sender{bases: bases, payments: payments, acked: map[string]string{}, statuses: map[int]int{}}
	ctx, cancel := context.WithTimeout(context.Background(), faultSeconds()*2)
	defer cancel()
	s.run(ctx, 12)
	t.Logf("answers: %v", s.statuses)
	if len(s.statuses) != 1 || s.statuses[200] == 0 {
		t.Fatalf("answers: %v", s.statuses)
	}
	checkAcked(t, pool, s.acked)
	checkCallbacks(t, pool, m, 40*time.Second)
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, n := range m.ids {
		if n != 1 {
			t.Fatalf("callback %s delivered %d times by three replicas", id, n)
		}
	}
}
