package paygate_test

import (
	"context"
	"database/sql"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/internal/testenv"
	"github.com/numedapp/paygate/store/sqlite"
)

// newSQLiteEnv is newEnv on a Gateway whose store is the embedded one.
func newSQLiteEnv(t *testing.T) (*env, *sqlite.Store) {
	t.Helper()
	st := testenv.NewSQLite(t)
	e := newEnv(t, func(c *paygate.Config) { c.Store = st })
	return e, st
}

// TestSQLiteBusyIsUnavailable: the embedded store's file is write-locked
// by another program (an operator's sqlite3 shell inside a transaction, a
// backup tool), so the writer's BEGIN IMMEDIATE waits its busy timeout and
// fails with SQLITE_BUSY. That is the embedded store's lock timeout, and it
// is answered as PostgreSQL's (55P03): 503 with Retry-After, not a 500.
func TestSQLiteBusyIsUnavailable(t *testing.T) {
	t.Parallel()
	e, st := newSQLiteEnv(t)
	// Another connection to the same file, outside the Store (as the
	// sqlite3 shell would be), holding the write lock.
	other, err := sql.Open("sqlite", "file:"+(&url.URL{Path: st.Path()}).EscapedPath())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx := context.Background()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = conn.ExecContext(ctx, `ROLLBACK`) }()

	start := time.Now()
	r := e.do("POST", "/api/payments/payment-intent", `{"amount": 15}`)
	t.Logf("after %v: %d %s", time.Since(start).Round(time.Millisecond), r.Status, r.Raw)
	if !strings.Contains(e.logs.String(), "database is locked") {
		t.Fatalf("not refused by SQLITE_BUSY; logs:\n%s", e.logs.String())
	}
	if r.Status != 503 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("a write refused with SQLITE_BUSY answered %d (Retry-After %q), want 503 with Retry-After as PostgreSQL's lock timeout: %s",
			r.Status, r.Header.Get("Retry-After"), r.Raw)
	}
}

// TestSQLiteDiskFullIsUnavailable: the embedded store's disk is full
// (SQLITE_FULL, forced with max_page_count on the writer connection): 503
// with Retry-After, as PostgreSQL's disk_full (53100).
func TestSQLiteDiskFullIsUnavailable(t *testing.T) {
	t.Parallel()
	e, st := newSQLiteEnv(t)
	ctx := context.Background()
	var pages int64
	if err := st.DB().QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().ExecContext(ctx, `PRAGMA max_page_count = `+strconv.FormatInt(pages, 10)); err != nil {
		t.Fatal(err)
	}
	// The pages there have some room left: create payments until the file
	// must grow. The first refusal is the one checked.
	for i := range 200 {
		r := e.do("POST", "/api/payments/payment-intent", `{"amount": 15, "description": "`+strings.Repeat("x", 900)+`"}`)
		if r.Status == 201 {
			continue
		}
		t.Logf("payment %d: %d %s", i, r.Status, r.Raw)
		if !strings.Contains(e.logs.String(), "database or disk is full") {
			t.Fatalf("not refused by SQLITE_FULL; logs:\n%s", e.logs.String())
		}
		if r.Status != 503 || r.Header.Get("Retry-After") == "" {
			t.Fatalf("a write refused with SQLITE_FULL answered %d (Retry-After %q), want 503 with Retry-After as PostgreSQL's disk_full: %s",
				r.Status, r.Header.Get("Retry-After"), r.Raw)
		}
		return
	}
	t.Fatal("the database never filled up")
}
