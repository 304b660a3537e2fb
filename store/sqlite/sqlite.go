// Package sqlite is paygate's embedded storage: it implements paygate.Store
// on one SQLite file with a pure-Go driver (modernc.org/sqlite, no cgo), so
// a service or a test needs nothing installed.
//
//	st, err := sqlite.Open("paymentd.db", sqlite.Options{})
//	if err != nil { ... }
//	defer st.Close()
//	if _, err := sqlite.Migrate(ctx, st); err != nil { ... }
//	gw, err := paygate.New(paygate.Config{Store: st, ...})
//
// # One process
//
// The file belongs to one process: Open takes an exclusive lock on
// "<path>.lock" and fails with ErrLocked while another Store (in this or
// another process) holds it. Several replicas need the PostgreSQL store
// (package store); paymentd export/import moves the data there.
//
// # Durability and concurrency
//
// The database runs in WAL mode with synchronous=FULL (every commit is on
// disk before it returns: an acknowledged webhook survives a power loss)
// and foreign keys on. All writes go through a single connection, driven
// by one goroutine: writers queue in the process instead of meeting
// SQLITE_BUSY, and each write sees and changes the database alone, which is
// what PostgreSQL's row lock gives UpdatePayment. The writes queued while
// one runs are committed with it in one BEGIN IMMEDIATE transaction (group
// commit), each in a SAVEPOINT of its own, so one fsync covers them all and
// none is acknowledged before it. Reads go through a separate pool of
// read-only connections that WAL lets run beside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	sq "github.com/Masterminds/squirrel"
	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/numedapp/paygate"
)

// ErrLocked is returned by Open when another Store holds the database.
var ErrLocked = errors.New("sqlite: the database is in use by another process (the embedded store serves one process; use PostgreSQL for several)")

// Options tunes Open. Zero fields take the defaults named.
type Options struct {
	// Readers is the size of the read-only connection pool. Default
	// max(4, GOMAXPROCS).
	Readers int
	// Synchronous is SQLite's synchronous setting: "FULL" (default: a
	// commit is durable when it returns) or "NORMAL" (faster; in WAL mode a
	// power loss may undo the last commits, never corrupt the file).
	Synchronous string
}

// Store implements paygate.Store on SQLite.
type Store struct {
	path string
	w    *sql.DB // the single writer connection
	r    *sql.DB // read-only connections
	lock io.Closer

	jobs       chan *writeJob
	closing    chan struct{}
	writerDone chan struct{}
	stmtMu     sync.Mutex
	stmts      map[string]*sql.Stmt
	want       map[string]bool

	mu        sync.Mutex
	listeners map[int]func()
	nextID    int
	closeOnce sync.Once
}

var (
	_ paygate.Store          = (*Store)(nil)
	_ paygate.EventRematcher = (*Store)(nil)
)

var qb = sq.StatementBuilder.PlaceholderFormat(sq.Question)

// Open opens (creating if needed) the database at path. The schema must be
// migrated (Migrate) before use; Open never changes it.
func Open(path string, opts Options) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: a file path is required, not %q", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if dir := filepath.Dir(abs); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
	}
	// The lock is named after the file itself: a second Store reaching it
	// through a symlink must find it held (SQLite follows the link too).
	lock, err := lockFile(resolved(abs) + ".lock")
	if err != nil {
		return nil, err
	}
	sync := strings.ToUpper(opts.Synchronous)
	switch sync {
	case "":
		sync = "FULL"
	case "FULL", "NORMAL", "EXTRA":
	default:
		_ = lock.Close()
		return nil, fmt.Errorf("sqlite: Options.Synchronous must be FULL or NORMAL, not %q", opts.Synchronous)
	}
	readers := opts.Readers
	if readers <= 0 {
		readers = max(4, runtime.GOMAXPROCS(0))
	}
	base := "file:" + (&url.URL{Path: abs}).EscapedPath()
	w, err := sql.Open("sqlite", base+"?_txlock=immediate&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"+
		"&_pragma=synchronous("+sync+")&_pragma=foreign_keys(1)&_pragma=temp_store(MEMORY)")
	if err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	// The writer connection is opened first: it creates the file and turns
	// WAL on before any reader connects.
	if err := w.Ping(); err != nil {
		_ = w.Close()
		_ = lock.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", base+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)&_pragma=foreign_keys(1)")
	if err != nil {
		_ = w.Close()
		_ = lock.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	r.SetConnMaxIdleTime(0)
	r.SetConnMaxLifetime(0)
	s := &Store{path: abs, w: w, r: r, lock: lock, listeners: map[int]func(){},
		stmts: map[string]*sql.Stmt{}, want: map[string]bool{},
		jobs: make(chan *writeJob), closing: make(chan struct{}), writerDone: make(chan struct{})}
	go s.writer()
	return s, nil
}

// DB returns the handle of the single writer connection, for tools that
// copy whole tables (paymentd export and import). A transaction on it holds
// the writer: every other write waits until it ends.
func (s *Store) DB() *sql.DB { return s.w }

// Path is the database file's absolute path.
func (s *Store) Path() string { return s.path }

// Close checkpoints the WAL into the database file, closes the connections
// and releases the file's lock.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closing)
		<-s.writerDone
		_, _ = s.w.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
		err = errors.Join(s.r.Close(), s.w.Close())
		_ = s.lock.Close()
	})
	return err
}

// Ping implements paygate.Store with a round trip through the writer
// connection (the one that must be available for payments to move).
func (s *Store) Ping(ctx context.Context) error {
	var n int
	return unavailable(s.w.QueryRowContext(ctx, `SELECT 1`).Scan(&n))
}

// errClosed is returned by writes after Close.
var errClosed = errors.New("sqlite: the store is closed")

// maxGroup bounds how many writes share one commit.
const maxGroup = 128

// writeJob is one write transaction waiting for the writer.
type writeJob struct {
	ctx  context.Context
	fn   func(ctx context.Context, tx *wtx) error
	done chan error
}

// write runs fn as one write transaction and returns when it is durably
// committed (or rolled back). fn must do its queries with the ctx it is
// given, on tx.
//
// Writes are serialized on the single writer connection by one goroutine,
// which commits them in groups: the writes that queued while a group ran
// join it, each inside a SAVEPOINT of one BEGIN IMMEDIATE transaction, so
// one fsync makes a whole group durable. A write that fails rolls back to
// its savepoint, leaving the others; none is acknowledged before the commit,
// and if the commit fails every write of the group fails. Each write still
// sees the database alone, after every write before it, like a transaction
// of its own under a lock.
func (s *Store) write(ctx context.Context, fn func(ctx context.Context, tx *wtx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j := &writeJob{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.jobs <- j:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return errClosed
	}
	// Once taken, the write may commit: wait for its outcome whatever ctx
	// says, so a caller never reports a failure that was committed.
	return unavailable(<-j.done)
}

// writer runs the write groups until Close.
func (s *Store) writer() {
	defer close(s.writerDone)
	for {
		select {
		case j := <-s.jobs:
			s.group(j)
			s.prepareWanted()
		case <-s.closing:
			return
		}
	}
}

// group runs first and the writes queued behind it in one transaction.
func (s *Store) group(first *writeJob) {
	bg := context.Background()
	tx, err := s.w.BeginTx(bg, nil) // BEGIN IMMEDIATE (_txlock)
	if err != nil {
		first.done <- err
		return
	}
	w := &wtx{s: s, tx: tx}
	var jobs []*writeJob
	var results []error
	fail := func(err error) {
		_ = tx.Rollback()
		for _, j := range jobs {
			j.done <- err
		}
	}
	for j := first; j != nil; {
		jobs = append(jobs, j)
		var jerr error
		if jerr = j.ctx.Err(); jerr == nil {
			if _, err := w.ExecContext(bg, `SAVEPOINT w`); err != nil {
				fail(err)
				return
			}
			if jerr = runJob(j, w); jerr != nil {
				if _, err := w.ExecContext(bg, `ROLLBACK TO w`); err != nil {
					fail(fmt.Errorf("%w (and the transaction was lost: %v)", jerr, err))
					return
				}
			}
			if _, err := w.ExecContext(bg, `RELEASE w`); err != nil {
				fail(err)
				return
			}
		}
		results = append(results, jerr)
		j = nil
		if len(jobs) < maxGroup {
			select {
			case j = <-s.jobs:
			default:
			}
		}
	}
	if err := tx.Commit(); err != nil {
		for _, j := range jobs {
			j.done <- fmt.Errorf("sqlite: commit: %w", err)
		}
		return
	}
	for i, j := range jobs {
		j.done <- results[i]
	}
}

// runJob runs a write's fn. Its statements are not interrupted by the
// write's ctx (an interrupted statement could roll back the whole group),
// and a panic fails the write instead of the writer.
func runJob(j *writeJob, tx *wtx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("sqlite: write panicked: %v", r)
		}
	}()
	return j.fn(context.WithoutCancel(j.ctx), tx)
}

// wtx is a write transaction whose statements are prepared once: the
// writer connection keeps them (parsing SQL was a quarter of its time).
type wtx struct {
	s  *Store
	tx *sql.Tx
}

func (w *wtx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := w.s.stmt(query); st != nil {
		return w.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return w.tx.ExecContext(ctx, query, args...)
}

func (w *wtx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := w.s.stmt(query); st != nil {
		return w.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return w.tx.QueryContext(ctx, query, args...)
}

func (w *wtx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := w.s.stmt(query); st != nil {
		return w.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return w.tx.QueryRowContext(ctx, query, args...)
}

// maxStmts bounds the statement cache.
const maxStmts = 256

// stmt returns the prepared statement of query, or nil and asks the
// writer to prepare it once the connection is free (between groups: a
// statement prepared inside the writer's transaction would be bound to it).
func (s *Store) stmt(query string) *sql.Stmt {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	st := s.stmts[query]
	if st == nil && len(s.stmts)+len(s.want) < maxStmts {
		s.want[query] = true
	}
	return st
}

// prepareWanted prepares the statements asked for; one that fails (a table
// not migrated yet) is asked for again at its next use.
func (s *Store) prepareWanted() {
	s.stmtMu.Lock()
	var qs []string
	for q := range s.want {
		qs = append(qs, q)
	}
	clear(s.want)
	s.stmtMu.Unlock()
	for _, q := range qs {
		st, err := s.w.PrepareContext(context.Background(), q)
		if err != nil {
			continue
		}
		s.stmtMu.Lock()
		s.stmts[q] = st
		s.stmtMu.Unlock()
	}
}

// read runs fn in a read transaction on a reader connection: its queries
// see one snapshot.
func (s *Store) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return unavailable(err)
	}
	defer func() { _ = tx.Rollback() }()
	return unavailable(fn(tx))
}

// ListenCallbacks calls wake whenever a transaction that queued callbacks
// commits in this Store, until ctx is done (then it returns nil). It is the
// embedded counterpart of the PostgreSQL store's LISTEN/NOTIFY: the file
// has one process, so an in-process notification reaches every engine.
func (s *Store) ListenCallbacks(ctx context.Context, wake func()) error {
	s.mu.Lock()
	id := s.nextID
	s.nextID++
	s.listeners[id] = wake
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	delete(s.listeners, id)
	s.mu.Unlock()
	return nil
}

func (s *Store) notifyCallbacks() {
	s.mu.Lock()
	fns := make([]func(), 0, len(s.listeners))
	for _, f := range s.listeners {
		fns = append(fns, f)
	}
	s.mu.Unlock()
	for _, f := range fns {
		f()
	}
}

// Timestamps are TEXT in one fixed-width UTC form with microseconds (as
// PostgreSQL keeps them), so that comparing text compares times.
const tsLayout = "2006-01-02T15:04:05.000000Z"

func ts(t time.Time) string { return t.UTC().Truncate(time.Microsecond).Format(tsLayout) }

func tsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return ts(*t)
}

func parseTS(v any) (time.Time, error) {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case []byte:
		s = string(x)
	case time.Time:
		return x.UTC(), nil
	default:
		return time.Time{}, fmt.Errorf("sqlite: timestamp of type %T", v)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlite: timestamp %q: %w", s, err)
	}
	return t.UTC(), nil
}

// tsScan scans a timestamp column into *T.
type tsScan struct{ t *time.Time }

func (s tsScan) Scan(v any) error {
	t, err := parseTS(v)
	*s.t = t
	return err
}

// tsNullScan scans a nullable timestamp column into **T.
type tsNullScan struct{ t **time.Time }

func (s tsNullScan) Scan(v any) error {
	if v == nil {
		*s.t = nil
		return nil
	}
	t, err := parseTS(v)
	*s.t = &t
	return err
}

// jsonScan decodes a JSON text column into v.
type jsonScan struct{ v any }

func (s jsonScan) Scan(src any) error {
	var b []byte
	switch x := src.(type) {
	case string:
		b = []byte(x)
	case []byte:
		b = x
	case nil:
		return nil
	default:
		return fmt.Errorf("sqlite: JSON of type %T", src)
	}
	return json.Unmarshal(b, s.v)
}

// rawScan scans a text column into a json.RawMessage (a copy).
type rawScan struct{ b *json.RawMessage }

func (s rawScan) Scan(src any) error {
	switch x := src.(type) {
	case string:
		*s.b = json.RawMessage(x)
	case []byte:
		*s.b = append(json.RawMessage(nil), x...)
	case nil:
		*s.b = nil
	default:
		return fmt.Errorf("sqlite: text of type %T", src)
	}
	return nil
}

// jsonText encodes v as JSON text; a nil slice or map as "[]" or "{}".
func jsonText(v any, empty string) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("sqlite: encode %T: %v", v, err)) // plain structs of strings and numbers
	}
	if string(b) == "null" {
		return empty
	}
	return string(b)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// resolved is abs with its symlinks resolved, as SQLite resolves them: a
// symlink whose target does not exist yet is followed too (SQLite creates
// the target).
func resolved(abs string) string {
	p := abs
	for range 40 { // a loop of links ends here
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			break
		}
		t, err := os.Readlink(p)
		if err != nil {
			break
		}
		if !filepath.IsAbs(t) {
			t = filepath.Join(filepath.Dir(p), t)
		}
		p = t
	}
	if d, err := filepath.EvalSymlinks(filepath.Dir(p)); err == nil {
		return filepath.Join(d, filepath.Base(p))
	}
	return p
}

// unavailableError is an error of the database file that means "not now"
// rather than a defect: the file is locked by another program past the busy
// timeout, the disk is full, the file cannot be read or written. It carries
// the SQLSTATE PostgreSQL gives the same condition, so paygate answers it
// as it answers PostgreSQL's (503 with Retry-After), and unwraps to the
// driver's error.
type unavailableError struct {
	err   error
	state string
}

func (e *unavailableError) Error() string    { return e.err.Error() }
func (e *unavailableError) Unwrap() error    { return e.err }
func (e *unavailableError) SQLState() string { return e.state }

// unavailable marks err as an unavailableError when it is one of those.
func unavailable(err error) error {
	var e *sqlite.Error
	if err == nil || !errors.As(err, &e) {
		return err
	}
	var state string
	switch e.Code() & 0xff { // the primary result code
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		state = "55P03" // lock_not_available
	case sqlite3.SQLITE_FULL:
		state = "53100" // disk_full
	case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PROTOCOL:
		state = "58030" // io_error
	default:
		return err
	}
	return &unavailableError{err: err, state: state}
}

// isConstraint reports whether err is a violation of a UNIQUE or PRIMARY
// KEY constraint, and returns its message.
func isConstraint(err error) (string, bool) {
	var e *sqlite.Error
	if errors.As(err, &e) && (e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE) {
		return e.Error(), true
	}
	return "", false
}
