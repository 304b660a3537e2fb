// Command webhookload measures webhook ingest over real HTTP: it starts a
// throwaway PostgreSQL (or opens a throwaway SQLite file with -store
// sqlite), serves the Gateway on loopback, and has N senders post signed
// Stripe events (each a new event for one of many payments) for a fixed
// time, then prints events/s and latency percentiles. With -workload
// create the senders create payments instead (POST
// /api/payments/payment-intent, Stripe played by stripe-mock).
//
//	go run ./internal/cmd/webhookload -senders 1,8,32 -duration 10s
//	go run ./internal/cmd/webhookload -senders 1,8,32 -duration 10s -store sqlite
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/internal/testsrv"
	"github.com/numedapp/paygate/store"
	"github.com/numedapp/paygate/store/sqlite"
)

const secret = "whsec_loadTestSecret0123456789"

func main() {
	sendersFlag := flag.String("senders", "1,8,32", "comma-separated concurrent sender counts")
	duration := flag.Duration("duration", 10*time.Second, "how long each level runs")
	payments := flag.Int("payments", 2000, "payments the events are spread over")
	poolSize := flag.Int("pool", 16, "database connections")
	ops := flag.Bool("ops", true, "system logs and metrics on, as in paymentd")
	durable := flag.Bool("durable", false, "run the throwaway PostgreSQL with fsync, full_page_writes and synchronous_commit on")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the load (server and senders, not the setup) here")
	callbacks := flag.Bool("callbacks", false, "run the Gateway (Run) with callbacks to a receiver in this process that answers 204, as paymentd under perf/compare")
	batching := flag.String("batching", "on", "group commit of webhooks: on, off, or both (each level run both ways, interleaved)")
	dbStats := flag.Bool("dbstats", true, "print what each event cost the database: commits, WAL bytes, rows and index entries written, statements (pg_stat_statements)")
	storeKind := flag.String("store", "postgres", "postgres or sqlite (a throwaway file, synchronous=FULL unless -sqlite-sync)")
	sqliteSync := flag.String("sqlite-sync", "FULL", "SQLite synchronous setting: FULL or NORMAL")
	workload := flag.String("workload", "webhook", "webhook (ingest events) or create (create payments through stripe-mock)")
	flag.Parse()
	runCtx, stopRuns := context.WithCancel(context.Background())
	var runs sync.WaitGroup
	defer stopRuns()
	if *duration > 2*time.Minute {
		log.Fatal("-duration is capped at 2m")
	}
	ctx := context.Background()
	var st paygate.Store
	var pool *pgxpool.Pool
	switch *storeKind {
	case "postgres":
		dbURL := os.Getenv("PAYGATE_TEST_DATABASE_URL")
		if dbURL == "" {
			var settings []string
			if *durable {
				settings = []string{"fsync=on", "synchronous_commit=on", "full_page_writes=on"}
			}
			settings = append(settings, "shared_preload_libraries=pg_stat_statements", "track_io_timing=on")
			pg, err := testsrv.StartPostgres(ctx, settings...)
			if err != nil {
				log.Fatal(err)
			}
			defer pg.Stop()
			dbURL = pg.URL
		}
		cfg, err := pgxpool.ParseConfig(dbURL)
		if err != nil {
			log.Fatal(err)
		}
		cfg.MaxConns = int32(*poolSize)
		pool, err = pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			log.Fatal(err)
		}
		defer pool.Close()
		if _, err := store.Migrate(ctx, pool); err != nil {
			log.Fatal(err)
		}
		st = store.New(pool)
	case "sqlite":
		*dbStats = false // PostgreSQL's statistics
		dir, err := os.MkdirTemp("", "webhookload-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
		s, err := sqlite.Open(filepath.Join(dir, "load.db"), sqlite.Options{Synchronous: *sqliteSync})
		if err != nil {
			log.Fatal(err)
		}
		defer s.Close()
		if _, err := sqlite.Migrate(ctx, s); err != nil {
			log.Fatal(err)
		}
		st = s
	default:
		log.Fatal("-store must be postgres or sqlite")
	}
	var stripeKey, stripeBase string
	handler := func(gw *paygate.Gateway) http.Handler { return gw.WebhookHandler() }
	path := "/api/webhooks/stripe"
	switch *workload {
	case "webhook":
	case "create":
		mock, err := testsrv.StartStripeMock(ctx)
		if err != nil {
			log.Fatal(err)
		}
		defer mock.Stop()
		stripeKey, stripeBase = testsrv.StripeMockKey, mock.URL
		handler = func(gw *paygate.Gateway) http.Handler { return gw.Handler() }
		path = "/api/payments/payment-intent"
	default:
		log.Fatal("-workload must be webhook or create")
	}
	newGateway := func(batch bool) *paygate.Gateway {
		cfg := paygate.Config{Store: st, InsecureNoAuth: true, WebhookSecrets: []string{secret},
			Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), SystemLogs: *ops, Metrics: *ops, NoWebhookBatching: !batch,
			StripeSecretKey: stripeKey, StripeAPIBase: stripeBase}
		if *callbacks {
			rcv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.WriteHeader(http.StatusNoContent)
			})}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				log.Fatal(err)
			}
			go rcv.Serve(ln)
			cfg.CallbackURL = "http://" + ln.Addr().String() + "/callbacks"
			cfg.CallbackSecrets = []string{"whsec_c2VjcmV0LWtleS1mb3ItcGF5Z2F0ZS10ZXN0cy0xMjM0NTY="}
		}
		gw, err := paygate.New(cfg)
		if err != nil {
			log.Fatal(err)
		}
		if *callbacks {
			runs.Go(func() { _ = gw.Run(runCtx) })
		}
		return gw
	}
	gateways := map[bool]*paygate.Gateway{true: newGateway(true), false: newGateway(false)}
	var current atomic.Pointer[paygate.Gateway]
	current.Store(gateways[*batching != "off"])
	modes := map[string][]bool{"on": {true}, "off": {false}, "both": {false, true}}[*batching]
	if modes == nil {
		log.Fatal("-batching must be on, off or both")
	}
	if *dbStats {
		if _, err := pool.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
			log.Printf("no statement statistics: %v", err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler(current.Load()).ServeHTTP(w, r)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String() + path

	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	// Each mode has payments of its own, so that both see the same events
	// (the first events of a payment change it, later ones do not).
	idsOf := map[bool][]string{}
	now := time.Now().UTC().Truncate(time.Microsecond)
	for _, batch := range modes {
		ids := make([]string, *payments)
		for i := range ids {
			ids[i] = fmt.Sprintf("pi_load%s_%v_%d", run, batch, i)
			p := &paygate.Payment{ID: fmt.Sprintf("pay_load%s%v%d", run, batch, i), Method: paygate.MethodIntent, Status: paygate.StatusPending,
				Amount: 1000, Currency: "usd", Quantity: 1, PaymentIntentID: ids[i], CreatedAt: now, UpdatedAt: now}
			if err := st.InsertPayment(ctx, p); err != nil {
				log.Fatal(err)
			}
		}
		idsOf[batch] = ids
	}

	for _, gw := range gateways {
		defer gw.Close(context.Background())
	}
	fmt.Printf("%s over HTTP on %s: %d payments, %v per level, pool %d, GOMAXPROCS %d, durable %v (sqlite synchronous=%s), system logs and metrics %v\n",
		*workload, *storeKind, *payments, *duration, *poolSize, runtime.GOMAXPROCS(0), *durable, *sqliteSync, *ops)
	fmt.Printf("%-8s %-6s %10s %10s %10s %10s %8s", "senders", "batch", "events", "events/s", "p50", "p99", "errors")
	if *dbStats {
		fmt.Printf(" %10s %10s %10s %10s %10s %10s", "commits/ev", "WAL B/ev", "rows/ev", "idx/ev", "HOT %", "stmts/ev")
	}
	fmt.Printf(" %10s %10s", "pg ms/ev", "self ms/ev")
	fmt.Println()
	if *cpuprofile != "" {
		// Only the load: not the setup (payments are inserted above).
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		// Stopped explicitly at the end too: the deferred closes below may
		// wait for the Gateways' Run to let go of its connections.
		defer pprof.StopCPUProfile()
	}
	var report []string
	seq := map[bool]int64{}
	var seqMu sync.Mutex
	var ids []string
	var mode bool
	next := func() int64 { seqMu.Lock(); defer seqMu.Unlock(); seq[mode]++; return seq[mode] }
	types := []string{"payment_intent.processing", "payment_intent.succeeded", "charge.refunded"}
	for _, s := range strings.Split(*sendersFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 256 {
			log.Fatalf("bad sender count %q", s)
		}
		for _, batch := range modes {
			current.Store(gateways[batch])
			seqMu.Lock()
			mode, ids = batch, idsOf[batch]
			seqMu.Unlock()
			var before dbSnapshot
			if *dbStats {
				before = snapshot(ctx, pool)
			}
			pgCPU0, selfCPU0 := postgresCPU(), selfCPU()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}, Timeout: 10 * time.Second}
			var mu sync.Mutex
			var lat []time.Duration
			errs := 0
			deadline := time.Now().Add(*duration)
			var wg sync.WaitGroup
			start := time.Now()
			for w := 0; w < n; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var mine []time.Duration
					myErrs := 0
					for time.Now().Before(deadline) {
						k := next()
						pi := ids[int(k)%len(ids)]
						typ := types[int(k/int64(len(ids)))%len(types)]
						var req *http.Request
						if *workload == "create" {
							req, _ = http.NewRequest("POST", url, strings.NewReader(`{"amount": "10.00", "metadata": {"orderId": "load"}}`))
							req.Header.Set("Content-Type", "application/json")
						} else {
							body := event(run, k, typ, pi)
							sig := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret}).Header
							req, _ = http.NewRequest("POST", url, bytes.NewReader(body))
							req.Header.Set("Stripe-Signature", sig)
						}
						t0 := time.Now()
						resp, err := client.Do(req)
						d := time.Since(t0)
						if err != nil {
							myErrs++
							continue
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 && resp.StatusCode != 201 {
							myErrs++
							continue
						}
						mine = append(mine, d)
					}
					mu.Lock()
					lat = append(lat, mine...)
					errs += myErrs
					mu.Unlock()
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			pgCPU, self := postgresCPU()-pgCPU0, selfCPU()-selfCPU0
			slices.Sort(lat)
			pct := func(p float64) time.Duration {
				if len(lat) == 0 {
					return 0
				}
				return lat[min(len(lat)-1, int(float64(len(lat))*p))]
			}
			fmt.Printf("%-8d %-6v %10d %10.0f %10s %10s %8d", n, batch, len(lat), float64(len(lat))/elapsed.Seconds(),
				pct(0.50).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), errs)
			if *dbStats && len(lat) > 0 {
				time.Sleep(1500 * time.Millisecond) // statistics are flushed about once a second
				d := snapshot(ctx, pool).minus(before)
				ev := float64(len(lat))
				hot := 0.0
				if d.updates > 0 {
					hot = 100 * d.hotUpdates / d.updates
				}
				fmt.Printf(" %10.3f %10.0f %10.2f %10.2f %10.0f %10.2f", d.commits/ev, d.walBytes/ev, d.rows/ev, d.indexEntries/ev, hot, d.calls/ev)
				report = append(report, fmt.Sprintf("senders %d, batching %v — statements per event (calls/ev, ms/ev):\n%s", n, batch, d.top(ev)))
			} else if *dbStats {
				fmt.Printf(" %10s %10s %10s %10s %10s %10s", "", "", "", "", "", "")
			}
			if ev := float64(len(lat)); ev > 0 {
				fmt.Printf(" %10.3f %10.3f", pgCPU.Seconds()*1000/ev, self.Seconds()*1000/ev)
			}
			fmt.Println()
		}
	}
	stopRuns()
	runs.Wait() // before the pool closes: Run holds connections
	pprof.StopCPUProfile()
	for _, r := range report {
		fmt.Println()
		fmt.Print(r)
	}
}

// dbSnapshot is what the database has done so far.
type dbSnapshot struct {
	commits, walBytes, rows, indexEntries, updates, hotUpdates, calls float64
	statements                                                        map[string][2]float64 // query → calls, total ms
}

func snapshot(ctx context.Context, pool *pgxpool.Pool) dbSnapshot {
	var s dbSnapshot
	var lsn string
	if err := pool.QueryRow(ctx, `SELECT xact_commit, pg_current_wal_lsn()::text FROM pg_stat_database WHERE datname = current_database()`).Scan(&s.commits, &lsn); err != nil {
		log.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT pg_wal_lsn_diff($1::pg_lsn, '0/0')`, lsn).Scan(&s.walBytes); err != nil {
		log.Fatal(err)
	}
	// Index entries written: each inserted row and each non-HOT update
	// writes one entry per index of its table.
	if err := pool.QueryRow(ctx, `SELECT coalesce(sum(t.n_tup_ins + t.n_tup_upd + t.n_tup_del), 0),
			coalesce(sum((t.n_tup_ins + t.n_tup_upd - t.n_tup_hot_upd) * (SELECT count(*) FROM pg_index i WHERE i.indrelid = t.relid)), 0),
			coalesce(sum(t.n_tup_upd), 0), coalesce(sum(t.n_tup_hot_upd), 0)
		FROM pg_stat_user_tables t`).Scan(&s.rows, &s.indexEntries, &s.updates, &s.hotUpdates); err != nil {
		log.Fatal(err)
	}
	s.statements = map[string][2]float64{}
	rows, err := pool.Query(ctx, `SELECT query, calls, total_exec_time FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`)
	if err != nil {
		return s // no extension: no statement figures
	}
	defer rows.Close()
	for rows.Next() {
		var q string
		var calls, ms float64
		if err := rows.Scan(&q, &calls, &ms); err != nil {
			log.Fatal(err)
		}
		q = strings.Join(strings.Fields(q), " ")
		st := s.statements[q]
		s.statements[q] = [2]float64{st[0] + calls, st[1] + ms}
		s.calls += calls
	}
	return s
}

func (a dbSnapshot) minus(b dbSnapshot) dbSnapshot {
	d := dbSnapshot{commits: a.commits - b.commits, walBytes: a.walBytes - b.walBytes, rows: a.rows - b.rows,
		indexEntries: a.indexEntries - b.indexEntries, updates: a.updates - b.updates, hotUpdates: a.hotUpdates - b.hotUpdates,
		calls: a.calls - b.calls, statements: map[string][2]float64{}}
	for q, v := range a.statements {
		w := b.statements[q]
		if c := v[0] - w[0]; c > 0 {
			d.statements[q] = [2]float64{c, v[1] - w[1]}
		}
	}
	return d
}

// top lists the statements that took the most time, per event.
func (d dbSnapshot) top(events float64) string {
	type st struct {
		q         string
		calls, ms float64
	}
	var all []st
	for q, v := range d.statements {
		if strings.Contains(q, "pg_stat") || strings.Contains(q, "pg_current_wal_lsn") || strings.Contains(q, "pg_wal_lsn_diff") {
			continue
		}
		all = append(all, st{q, v[0], v[1]})
	}
	slices.SortFunc(all, func(a, b st) int { return int(b.ms*1000 - a.ms*1000) })
	var sb strings.Builder
	for i, s := range all {
		if i == 10 {
			break
		}
		q := s.q
		if len(q) > 110 {
			q = q[:110] + "…"
		}
		fmt.Fprintf(&sb, "  %6.2f %7.3f  %s\n", s.calls/events, s.ms/events, q)
	}
	return sb.String()
}

// event is a realistic Stripe event body for a PaymentIntent or its charge.
func event(run string, k int64, typ, pi string) []byte {
	var obj string
	switch typ {
	case "charge.refunded":
		obj = fmt.Sprintf(`{"id": "ch_%s", "object": "charge", "amount": 1000, "amount_captured": 1000, "amount_refunded": 300,
			"captured": true, "currency": "usd", "metadata": {}, "paid": true, "payment_intent": %q, "refunded": false, "status": "succeeded",
			"payment_method_details": {"card": {"brand": "visa", "last4": "4242"}, "type": "card"}}`, pi[3:], pi)
	default:
		status := strings.TrimPrefix(typ, "payment_intent.")
		obj = fmt.Sprintf(`{"id": %q, "object": "payment_intent", "amount": 1000, "amount_received": 1000, "capture_method": "automatic",
			"client_secret": "%s_secret_x", "confirmation_method": "automatic", "created": 1700000000, "currency": "usd",
			"latest_charge": "ch_%s", "livemode": false, "metadata": {"orderId": "7"}, "payment_method": "pm_1",
			"payment_method_types": ["card"], "status": %q}`, pi, pi, pi[3:], status)
	}
	return []byte(fmt.Sprintf(`{"id": "evt_%s_%d", "object": "event", "api_version": "2023-10-16", "created": %d,
		"data": {"object": %s}, "livemode": false, "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null}, "type": %q}`,
		run, k, time.Now().Unix(), obj, typ))
}

// postgresCPU is the CPU time (user and system) used so far by the
// processes named postgres on this machine: the server's backends and
// helpers (Linux only; 0 elsewhere). A backend that exited is not counted:
// the pool's connections live through a level.
func postgresCPU() time.Duration {
	dirs, _ := os.ReadDir("/proc")
	var ticks int64
	for _, d := range dirs {
		if d.Name()[0] < '0' || d.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... utime(14) stime(15)
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || !bytes.HasSuffix(b[:i], []byte("(postgres")) {
			continue
		}
		f := strings.Fields(string(b[i+2:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		sy, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + sy
	}
	return time.Duration(ticks) * (time.Second / 100) // USER_HZ
}

// selfCPU is this process's CPU time so far (server and senders).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
