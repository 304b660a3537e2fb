package sqlite_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

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
