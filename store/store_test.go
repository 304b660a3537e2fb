package store_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

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
