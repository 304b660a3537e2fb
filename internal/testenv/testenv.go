// Package testenv gives tests the real servers they need, started once per
// test process: PostgreSQL (PAYGATE_TEST_DATABASE_URL, or a throwaway
// cluster) and stripe-mock (STRIPE_MOCK_URL, or the pinned binary).
// A test that cannot get them fails with how to fix it; it never skips.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/numedapp/paygate/internal/testsrv"
	"github.com/numedapp/paygate/store"
	"github.com/numedapp/paygate/store/sqlite"
)

var (
	shared struct {
		sync.Mutex
		pg     *testsrv.Postgres
		pgURL  string
		pgErr  error
		mock   *testsrv.StripeMock
		mockOK bool
		mkErr  error
	}
)

// Main runs a package's tests and stops the servers they started. Use it
// in TestMain: os.Exit(testsrv.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	Stop()
	return code
}

// Stop stops the servers started for this process (Main calls it); a later
// DatabaseURL or StripeMockURL starts new ones.
func Stop() {
	shared.Lock()
	defer shared.Unlock()
	if shared.pg != nil {
		shared.pg.Stop()
	}
	if shared.mock != nil {
		shared.mock.Stop()
	}
	shared.pg, shared.pgURL, shared.pgErr = nil, "", nil
	shared.mock, shared.mkErr = nil, nil
}

// DatabaseURL returns $PAYGATE_TEST_DATABASE_URL, or the URL of a throwaway
// cluster started on first use. It fails the test (never skips) when neither
// is possible.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	u, err := SharedDatabaseURL()
	if err != nil {
		t.Fatalf("PostgreSQL is required: %v", err)
	}
	return u
}

// SharedDatabaseURL is DatabaseURL for callers without a testing.TB: it
// returns the error instead of failing a test.
func SharedDatabaseURL() (string, error) {
	if u := os.Getenv("PAYGATE_TEST_DATABASE_URL"); u != "" {
		return u, nil
	}
	shared.Lock()
	defer shared.Unlock()
	if shared.pg == nil && shared.pgErr == nil {
		shared.pg, shared.pgErr = testsrv.StartPostgres(context.Background())
		if shared.pgErr == nil {
			shared.pgURL = shared.pg.URL
		}
	}
	return shared.pgURL, shared.pgErr
}

// StripeMockURL returns $STRIPE_MOCK_URL, or the URL of a stripe-mock
// started on first use. It fails the test (never skips) when neither is possible.
func StripeMockURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("STRIPE_MOCK_URL"); u != "" {
		return u
	}
	shared.Lock()
	defer shared.Unlock()
	if shared.mock == nil && shared.mkErr == nil {
		shared.mock, shared.mkErr = testsrv.StartStripeMock(context.Background())
	}
	if shared.mkErr != nil {
		t.Fatalf("stripe-mock is required: %v", shared.mkErr)
	}
	return shared.mock.URL
}

// NewSchema creates a schema of its own for the test, dropped when the test
// ends, and returns its name.
func NewSchema(t testing.TB) string {
	t.Helper()
	return NewSchemaAt(t, DatabaseURL(t), "t_")
}

// TB is the part of testing.TB that NewSchemaAt uses (paygatetest has its
// own TB, for Example functions).
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// NewSchemaAt creates a schema named prefix + random hex in the database at
// base, dropped when the test ends, and returns its name.
func NewSchemaAt(t TB, base, prefix string) string {
	t.Helper()
	ctx := context.Background()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := prefix + hex.EncodeToString(b[:])
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to the test database: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	})
	return schema
}

// SchemaURL returns a database URL whose connections use a fresh schema of
// the test's own (search_path), for code that opens its own pool.
func SchemaURL(t testing.TB) string {
	t.Helper()
	base, schema := DatabaseURL(t), NewSchema(t)
	if strings.Contains(base, "?") {
		return base + "&search_path=" + schema
	}
	return base + "?search_path=" + schema
}

// NewPool returns a pool on a fresh, migrated schema of its own that is
// dropped when the test ends, so tests are isolated and may run in parallel.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	pool, err := PoolInSchema(ctx, DatabaseURL(t), NewSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close) // runs before the schema is dropped
	if _, err := store.Migrate(ctx, pool); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return pool
}

// LockedBuffer collects log output written from several goroutines.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// PoolInSchema opens a pool whose connections use schema as search_path.
func PoolInSchema(ctx context.Context, url, schema string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 8
	return pgxpool.NewWithConfig(ctx, cfg)
}

// NewSQLite returns an embedded store on a migrated file of the test's own,
// closed when the test ends.
func NewSQLite(t testing.TB) *sqlite.Store {
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
