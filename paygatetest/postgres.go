package paygatetest

import (
	"context"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/internal/testenv"
	"github.com/numedapp/paygate/store"
)

// Main runs a package's tests and then stops the PostgreSQL cluster
// [PostgresStore] started, if any. Use it in TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(paygatetest.Main(m)) }
//
// Without it the cluster is killed with the test process, and its
// temporary directory may stay behind.
func Main(m interface{ Run() int }) int {
	code := m.Run()
	StopPostgres()
	return code
}

// StopPostgres stops the cluster PostgresStore started, if any, with the
// other servers of paygate's test harness (Main calls it). A later
// PostgresStore starts a new one.
func StopPostgres() { testenv.Stop() }

func databaseURL(t TB) string {
	t.Helper()
	u, err := testenv.SharedDatabaseURL()
	if err != nil {
		t.Fatalf("paygatetest: PostgreSQL is required (install the PostgreSQL server binaries, set PAYGATE_PG_BIN, or set PAYGATE_TEST_DATABASE_URL): %v", err)
	}
	return u
}

// PostgresStore is the default StoreFunc: store.New on a fresh, migrated
// schema of its own, dropped when the test ends. The database is
// $PAYGATE_TEST_DATABASE_URL, or a throwaway cluster started once per test
// process with the PostgreSQL server binaries (initdb, postgres) found on
// PATH, under /usr/lib/postgresql/*/bin, or in $PAYGATE_PG_BIN, in a
// temporary directory on a unix socket. Without either it fails the test
// with what to install; it never skips.
func PostgresStore(t TB) paygate.Store {
	t.Helper()
	ctx := context.Background()
	base := databaseURL(t)
	schema := testenv.NewSchemaAt(t, base, "pgt_")
	pool, err := testenv.PoolInSchema(ctx, base, schema)
	if err != nil {
		t.Fatalf("paygatetest: %v", err)
	}
	t.Cleanup(pool.Close) // before the schema is dropped
	if _, err := store.Migrate(ctx, pool); err != nil {
		t.Fatalf("paygatetest: migrate: %v", err)
	}
	return store.New(pool)
}
