package store_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/internal/testenv"
	"github.com/numedapp/paygate/store"
	"github.com/numedapp/paygate/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// The suite's fixtures, for the PostgreSQL-only tests.
var (
	t0         = storetest.T0
	newPayment = storetest.NewPayment
)

// The PostgreSQL store passes the Store conformance suite, each subtest on
// a fresh, migrated schema of its own.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return store.New(testenv.NewPool(t)) })
}

// Concurrent Migrate calls (several replicas starting at once) apply each
// migration once.
func TestMigrateConcurrentAndIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.NewPool(t) // already migrated once
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			applied, err := store.Migrate(ctx, pool)
			if err == nil && len(applied) != 0 {
				err = fmt.Errorf("re-applied %v", applied)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ms, _ := store.Migrations()
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM paygate_migrations`).Scan(&n); err != nil || n != len(ms) {
		t.Fatalf("paygate_migrations rows = %d (%v), want %d", n, err, len(ms))
	}
}

// Migration 011 compresses new event payloads with lz4 where the server
// has it (PostgreSQL 14 and later, built with lz4, as Debian's and the
// official images are), and stored payloads read back byte for byte.
func TestEventPayloadsLZ4(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.NewPool(t)
	var lz4 bool
	if _, err := pool.Exec(ctx, `CREATE TEMP TABLE paygate_lz4_probe (j json COMPRESSION lz4)`); err == nil {
		lz4 = true
	} else {
		t.Logf("this server has no lz4 (%v): the payload column must keep the default", err)
	}
	var method string
	if err := pool.QueryRow(ctx, `SELECT attcompression::text FROM pg_attribute
		WHERE attrelid = 'paygate_webhook_events'::regclass AND attname = 'payload'`).Scan(&method); err != nil {
		t.Fatal(err)
	}
	if want := map[bool]string{true: "l", false: ""}[lz4]; method != want {
		t.Fatalf("payload compression = %q, want %q (lz4 available: %v)", method, want, lz4)
	}

	s := store.New(pool)
	ev := &paygate.WebhookEvent{ID: "evt_lz4", Type: "payment_intent.succeeded", CreatedAt: t0, ReceivedAt: t0, Status: paygate.EventIgnored}
	// Big enough to be compressed (over about 2 KB), as Stripe's events are.
	ev.Payload = []byte(fmt.Sprintf(`{"id":"evt_lz4","object":"event","data":{"object":{"description":%q}}}`, strings.Repeat("paygate ", 600)))
	if _, _, err := s.RecordWebhookEvent(ctx, ev, paygate.PaymentRefs{}, nil); err != nil {
		t.Fatal(err)
	}
	var stored, size int
	var got string
	if err := pool.QueryRow(ctx, `SELECT coalesce(pg_column_compression(payload), ''), pg_column_size(payload), octet_length(payload::text)
		FROM paygate_webhook_events WHERE id = 'evt_lz4'`).Scan(&got, &size, &stored); err != nil {
		t.Fatal(err)
	}
	if want := map[bool]string{true: "lz4", false: "pglz"}[lz4]; got != want || size >= stored {
		t.Fatalf("stored payload: compression %q, %d bytes for %d, want %s and smaller", got, size, stored, want)
	}
	back, err := s.GetWebhookEvent(ctx, "evt_lz4")
	if err != nil {
		t.Fatal(err)
	}
	if string(back.Payload) != string(ev.Payload) {
		t.Fatalf("payload read back differs: %d bytes, want %d", len(back.Payload), len(ev.Payload))
	}
}

// TestMigrationRedactsStoredClientSecrets: events stored before paygate
// replaced client secrets (as received) lose theirs to migration 012,
// wherever they sit; nothing else of the text changes.
func TestMigrationRedactsStoredClientSecrets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.NewPool(t)
	old := `{"id": "evt_old", "data": {"object": {"id": "pi_1", "client_secret": "pi_1_secret_OLD\"x", "amount": 500},` +
		` "previous_attributes": {"client_secret" : "pi_1_secret_OLDER"}}, "note": "\"client_secret\": \"kept\""}`
	want := `{"id": "evt_old", "data": {"object": {"id": "pi_1", "client_secret": "[redacted]", "amount": 500},` +
		` "previous_attributes": {"client_secret" : "[redacted]"}}, "note": "\"client_secret\": \"kept\""}`
	if _, err := pool.Exec(ctx, `INSERT INTO paygate_webhook_events (id, type, status, created_at, received_at, payload)
		VALUES ('evt_old', 'payment_intent.succeeded', 'processed', now(), now(), $1), ('evt_other', 'charge.refunded', 'processed', now(), now(), '{"id": "evt_other"}')`, old); err != nil {
		t.Fatal(err)
	}
	ms, err := store.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Name == "redact_client_secrets" {
			if _, err := pool.Exec(ctx, m.SQL); err != nil {
				t.Fatal(err)
			}
		}
	}
	for id, w := range map[string]string{"evt_old": want, "evt_other": `{"id": "evt_other"}`} {
		var got string
		if err := pool.QueryRow(ctx, `SELECT payload::text FROM paygate_webhook_events WHERE id = $1`, id).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != w {
			t.Errorf("%s after the migration:\n got %s\nwant %s", id, got, w)
		}
	}
}
