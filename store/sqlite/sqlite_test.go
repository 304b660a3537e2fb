package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/numedapp/paygate"

	"github.com/numedapp/paygate/store/sqlite"
	"github.com/numedapp/paygate/store/storetest"
)

// newStore opens a migrated store on a file of the test's own.
func newStore(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "paygate.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := sqlite.Migrate(context.Background(), s); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s
}

// The embedded store passes the Store conformance suite.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return newStore(t) })
}

// A second Store on the same file, in this process or another, is refused
// clearly; once the first closes, the file opens again.
func TestSecondWriterRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "one.db")
	first, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.Open(path, sqlite.Options{}); !errors.Is(err, sqlite.ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		t.Fatalf("reopen after Close: %v", err)
	}
	_ = again.Close()
}

// Migrate is idempotent, and the pragmas money depends on are set.
func TestMigrateAndPragmas(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if applied, err := sqlite.Migrate(ctx, s); err != nil || len(applied) != 0 {
		t.Fatalf("second Migrate applied %v, %v", applied, err)
	}
	for pragma, want := range map[string]string{"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1"} {
		if got := sqlite.Pragma(t, s, pragma); got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
}

// Writes that share a group commit fail alone: of concurrent inserts of the
// same ids, one of each wins and the others get ErrConflict, and nothing of
// a failed write stays.
func TestGroupCommitFailsWritesAlone(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := map[string]int{}
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("pay_g%d", i%10)
			err := s.InsertPayment(ctx, storetest.NewPayment(id, storetest.T0, func(p *paygate.Payment) {
				p.PaymentIntentID = fmt.Sprintf("pi_g%d", i) // a ref row per attempt: must vanish with a failed insert
			}))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won[id]++
			case !errors.Is(err, paygate.ErrConflict):
				t.Errorf("insert %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if len(won) != 10 {
		t.Fatalf("%d ids stored, want 10", len(won))
	}
	refs := 0
	for id, n := range won {
		if n != 1 {
			t.Fatalf("%s inserted %d times", id, n)
		}
		p, err := s.GetPayment(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetPaymentByStripeID(ctx, p.PaymentIntentID); err != nil || got.ID != id {
			t.Fatalf("%s: its own ref: %v", id, err)
		}
	}
	for i := 0; i < 40; i++ {
		if _, err := s.GetPaymentByStripeID(ctx, fmt.Sprintf("pi_g%d", i)); err == nil {
			refs++
		}
	}
	if refs != 10 {
		t.Fatalf("%d refs stored, want 10 (a failed insert left its refs)", refs)
	}
}

// A canceled context before the write is queued stores nothing; Close
// refuses later writes.
func TestCanceledAndClosed(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.InsertPayment(ctx, storetest.NewPayment("pay_c", storetest.T0)); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled insert: %v", err)
	}
	if _, err := s.GetPayment(context.Background(), "pay_c"); !errors.Is(err, paygate.ErrNotFound) {
		t.Fatalf("a canceled insert was stored: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertPayment(context.Background(), storetest.NewPayment("pay_d", storetest.T0)); err == nil {
		t.Fatal("insert after Close succeeded")
	}
}

// TestMigrationRedactsStoredClientSecrets: events stored before paygate
// replaced client secrets (as received) lose theirs to migration 002.
func TestMigrationRedactsStoredClientSecrets(t *testing.T) {
	s := newStore(t)
	sqlite.Exec(t, s, `INSERT INTO paygate_webhook_events (id, type, status, created_at, received_at, payload)
		VALUES ('evt_old', 'payment_intent.succeeded', 'processed', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z',
		'{"id": "evt_old", "data": {"object": {"id": "pi_1", "client_secret": "pi_1_secret_OLD", "amount": 500}}}'),
		('evt_other', 'charge.refunded', 'processed', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '{"id": "evt_other"}')`)
	ms, err := sqlite.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Name == "redact_client_secrets" {
			sqlite.Exec(t, s, m.SQL)
		}
	}
	if got := sqlite.QueryString(t, s, `SELECT payload FROM paygate_webhook_events WHERE id = 'evt_old'`); strings.Contains(got, "OLD") ||
		sqlite.QueryString(t, s, `SELECT json_extract(payload, '$.data.object.client_secret') FROM paygate_webhook_events WHERE id = 'evt_old'`) != "[redacted]" ||
		sqlite.QueryString(t, s, `SELECT json_extract(payload, '$.data.object.amount') FROM paygate_webhook_events WHERE id = 'evt_old'`) != "500" {
		t.Errorf("after the migration: %s", got)
	}
	if got := sqlite.QueryString(t, s, `SELECT payload FROM paygate_webhook_events WHERE id = 'evt_other'`); got != `{"id": "evt_other"}` {
		t.Errorf("an event without a secret changed: %s", got)
	}
}
