package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/callback"
	"github.com/numedapp/paygate/store"
	"github.com/numedapp/paygate/store/sqlite"
)

// defaultDatabasePath is the embedded store's file when DATABASE_URL is unset.
const defaultDatabasePath = "paymentd.db"

// openedStore is the store DATABASE_URL chose, with what paymentd does
// with it beyond paygate.Store.
type openedStore struct {
	kind  string // "postgres" or "sqlite"
	where string // for the log: the file, or the host (never a password)
	store interface {
		paygate.Store
		callback.Queue
	}
	migrate func(ctx context.Context) ([]int, error)
	// listen wakes the callback engine when another transaction (another
	// replica's, on PostgreSQL) queued callbacks.
	listen func(ctx context.Context, wake func()) error
	close  func()
	// sqlDB is the database/sql handle export and import copy tables with.
	sqlDB func() *sql.DB
}

func (o *openedStore) dialect() dialect {
	return dialect{postgres: o.kind == "postgres", db: o.sqlDB()}
}

// databaseKind tells which store DATABASE_URL names: postgres:// and
// postgresql:// URLs are PostgreSQL; sqlite:path, a file path, or nothing
// (./paymentd.db) the embedded store. It returns the file path for SQLite.
func databaseKind(url string) (kind, path string, err error) {
	switch {
	case url == "":
		return "sqlite", defaultDatabasePath, nil
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return "postgres", "", nil
	case strings.HasPrefix(url, "sqlite://"):
		path = strings.TrimPrefix(url, "sqlite://")
	case strings.HasPrefix(url, "sqlite:"):
		path = strings.TrimPrefix(url, "sqlite:")
	case strings.Contains(url, "://"):
		return "", "", errors.New("DATABASE_URL must be a postgres:// URL, sqlite:path, or a file path")
	default:
		path = url
	}
	if path == "" || strings.ContainsAny(path, "?#") || path == ":memory:" {
		return "", "", errors.New("DATABASE_URL: sqlite: needs a file path, such as sqlite:./paymentd.db")
	}
	return "sqlite", path, nil
}

// openStore opens the store DATABASE_URL names. It does not migrate.
func openStore(ctx context.Context, url string) (*openedStore, error) {
	kind, path, err := databaseKind(url)
	if err != nil {
		return nil, err
	}
	if kind == "sqlite" {
		st, err := sqlite.Open(path, sqlite.Options{})
		if err != nil {
			return nil, fmt.Errorf("database: %w", err)
		}
		return &openedStore{kind: kind, where: st.Path(), store: st,
			migrate: func(ctx context.Context) ([]int, error) { return sqlite.Migrate(ctx, st) },
			listen:  st.ListenCallbacks,
			close:   func() { _ = st.Close() },
			sqlDB:   st.DB,
		}, nil
	}
	pool, err := openPool(ctx, url)
	if err != nil {
		return nil, err
	}
	st := store.New(pool)
	return &openedStore{kind: kind, where: pool.Config().ConnConfig.Host, store: st,
		migrate: func(ctx context.Context) ([]int, error) { return store.Migrate(ctx, pool) },
		listen:  st.ListenCallbacks,
		close:   pool.Close,
		sqlDB:   func() *sql.DB { return stdlib.OpenDBFromPool(pool) },
	}, nil
}

func openPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errors.New("DATABASE_URL is not a valid PostgreSQL URL") // pgx's message may hold the URL
	}
	if !strings.Contains(url, "pool_max_conns") {
		pcfg.MaxConns = 16 // pgx's default (4 on this kind of machine) queues webhook bursts
	}
	// pgx sizes two caches of 512 statements on every connection up front:
	// paymentd runs about a hundred distinct statements, and the second
	// cache serves only the cache_describe mode. Both cost heap (about
	// half a megabyte over the pool) that the collector scans on every cycle.
	if !strings.Contains(url, "statement_cache_capacity") {
		pcfg.ConnConfig.StatementCacheCapacity = 128
	}
	if !strings.Contains(url, "description_cache_capacity") && pcfg.ConnConfig.DefaultQueryExecMode != pgx.QueryExecModeCacheDescribe {
		pcfg.ConnConfig.DescriptionCacheCapacity = 0
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database unreachable: %w", err)
	}
	return pool, nil
}
