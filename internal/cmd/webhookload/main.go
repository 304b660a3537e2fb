// Command webhookload measures webhook ingest over real HTTP: it starts a
// throwaway PostgreSQL, serves the Gateway on loopback, and has N senders
// post signed Stripe events (each a new event for one of many payments) for
// a fixed time, then prints events/s and latency percentiles.
//
//	go run ./internal/cmd/webhookload -senders 1,8,32 -duration 10s
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
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/internal/testsrv"
	"github.com/numedapp/paygate/store"
)

const secret = "whsec_loadTestSecret0123456789"

func main() {
	sendersFlag := flag.String("senders", "1,8,32", "comma-separated concurrent sender counts")
	duration := flag.Duration("duration", 10*time.Second, "how long each level runs")
	payments := flag.Int("payments", 2000, "payments the events are spread over")
	poolSize := flag.Int("pool", 16, "database connections")
	ops := flag.Bool("ops", true, "system logs and metrics on, as in paymentd")
	durable := flag.Bool("durable", false, "run the throwaway PostgreSQL with fsync, full_page_writes and synchronous_commit on")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run (server and senders) here")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	if *duration > 2*time.Minute {
		log.Fatal("-duration is capped at 2m")
	}
	ctx := context.Background()
	dbURL := os.Getenv("PAYGATE_TEST_DATABASE_URL")
	if dbURL == "" {
		var settings []string
		if *durable {
			settings = []string{"fsync=on", "synchronous_commit=on", "full_page_writes=on"}
		}
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
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	if _, err := store.Migrate(ctx, pool); err != nil {
		log.Fatal(err)
	}
	st := store.New(pool)
	gw, err := paygate.New(paygate.Config{Store: st, InsecureNoAuth: true, WebhookSecrets: []string{secret},
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), SystemLogs: *ops, Metrics: *ops})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: gw.WebhookHandler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/api/webhooks/stripe"

	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	ids := make([]string, *payments)
	now := time.Now().UTC().Truncate(time.Microsecond)
	for i := range ids {
		ids[i] = fmt.Sprintf("pi_load%s_%d", run, i)
		p := &paygate.Payment{ID: fmt.Sprintf("pay_load%s%d", run, i), Method: paygate.MethodIntent, Status: paygate.StatusPending,
			Amount: 1000, Currency: "usd", Quantity: 1, PaymentIntentID: ids[i], CreatedAt: now, UpdatedAt: now}
		if err := st.InsertPayment(ctx, p); err != nil {
			log.Fatal(err)
		}
	}

	defer gw.Close(context.Background())
	fmt.Printf("webhook ingest over HTTP: %d payments, %v per level, pool %d, GOMAXPROCS %d, durable %v, system logs and metrics %v\n",
		*payments, *duration, *poolSize, runtime.GOMAXPROCS(0), *durable, *ops)
	fmt.Printf("%-8s %10s %10s %10s %10s %8s\n", "senders", "events", "events/s", "p50", "p99", "errors")
	var seq int64
	var seqMu sync.Mutex
	next := func() int64 { seqMu.Lock(); defer seqMu.Unlock(); seq++; return seq }
	types := []string{"payment_intent.processing", "payment_intent.succeeded", "charge.refunded"}
	for _, s := range strings.Split(*sendersFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 256 {
			log.Fatalf("bad sender count %q", s)
		}
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
					body := event(run, k, typ, pi)
					sig := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret}).Header
					req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
					req.Header.Set("Stripe-Signature", sig)
					t0 := time.Now()
					resp, err := client.Do(req)
					d := time.Since(t0)
					if err != nil {
						myErrs++
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
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
		slices.Sort(lat)
		pct := func(p float64) time.Duration {
			if len(lat) == 0 {
				return 0
			}
			return lat[min(len(lat)-1, int(float64(len(lat))*p))]
		}
		fmt.Printf("%-8d %10d %10.0f %10s %10s %8d\n", n, len(lat), float64(len(lat))/elapsed.Seconds(),
			pct(0.50).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), errs)
	}
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
