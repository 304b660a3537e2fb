// Package testsrv starts the real servers paygate's tests (and the local
// `paymentd dev` run) need: a throwaway PostgreSQL cluster made from the
// machine's PostgreSQL binaries, and Stripe's official stripe-mock at a
// pinned version. Both run on loopback only and are removed on Stop.
package testsrv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a running throwaway PostgreSQL cluster.
type Postgres struct {
	// URL connects as the superuser "postgres" over a unix socket.
	URL      string
	dir      string
	bin      string
	cred     *syscall.Credential
	settings []string
	cmd      *exec.Cmd
	done     chan error
}

// findPGBin returns the directory of the PostgreSQL server binaries:
// $PAYGATE_PG_BIN, the directory initdb on PATH links into, or the newest
// /usr/lib/postgresql/*/bin.
func findPGBin() (string, error) {
	if d := os.Getenv("PAYGATE_PG_BIN"); d != "" {
		return d, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			if _, err := os.Stat(filepath.Join(filepath.Dir(real), "postgres")); err == nil {
				return filepath.Dir(real), nil
			}
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("testsrv: no PostgreSQL server binaries found (initdb, postgres): install PostgreSQL " +
		"(Debian: apt-get install postgresql), set PAYGATE_PG_BIN to their directory, " +
		"or set PAYGATE_TEST_DATABASE_URL to an existing database")
}

func pgMajor(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// StartPostgres creates a cluster in a temporary directory and starts it
// listening on a unix socket there only (no TCP). initdb and postgres refuse
// to run as root, so as root they run as the "postgres" user. The cluster
// trades durability for speed (fsync and synchronous_commit off); settings
// ("fsync=on") are passed to postgres as -c options after those defaults.
func StartPostgres(ctx context.Context, settings ...string) (*Postgres, error) {
	bin, err := findPGBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "paygate-pg-")
	if err != nil {
		return nil, err
	}
	pg := &Postgres{dir: dir}
	ok := false
	defer func() {
		if !ok {
			pg.Stop()
		}
	}()
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("testsrv: running as root, PostgreSQL must run as another user, and user postgres does not exist: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("testsrv: initdb: %w\n%s", err, out)
	}
	pg.bin, pg.cred, pg.settings = bin, cred, settings
	pg.URL = "postgres:///postgres?host=" + dir + "&port=5432&user=postgres&sslmode=disable"
	if err := pg.Start(ctx); err != nil {
		return nil, err
	}
	ok = true
	return pg, nil
}

// Start starts the server of a cluster made by StartPostgres and stopped by
// Pause, and waits until it accepts connections.
func (pg *Postgres) Start(ctx context.Context) error {
	data := filepath.Join(pg.dir, "data")
	pg.cmd = exec.Command(filepath.Join(pg.bin, "postgres"), "-D", data, "-k", pg.dir, "-p", "5432",
		"-c", "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=128MB")
	for _, kv := range pg.settings {
		pg.cmd.Args = append(pg.cmd.Args, "-c", kv)
	}
	pg.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	logf, err := os.OpenFile(filepath.Join(pg.dir, "postgres.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	pg.cmd.Stdout, pg.cmd.Stderr = logf, logf
	if err := pg.cmd.Start(); err != nil {
		return fmt.Errorf("testsrv: start postgres: %w", err)
	}
	done := make(chan error, 1)
	pg.done = done
	go func(cmd *exec.Cmd) { done <- cmd.Wait() }(pg.cmd)

	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := pgx.Connect(ctx, pg.URL)
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case werr := <-pg.done:
			log, _ := os.ReadFile(filepath.Join(pg.dir, "postgres.log"))
			return fmt.Errorf("testsrv: postgres exited: %v\n%s", werr, log)
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("testsrv: postgres did not accept connections: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Pause shuts the server down (a fast shutdown: connections are cut) and
// keeps the cluster, for Start to bring it back.
func (pg *Postgres) Pause() {
	if pg.cmd != nil && pg.cmd.Process != nil {
		_ = pg.cmd.Process.Signal(syscall.SIGINT)
		<-pg.done
		pg.cmd = nil
	}
}

// Stop shuts the cluster down and removes its directory.
func (pg *Postgres) Stop() {
	if pg.cmd != nil && pg.cmd.Process != nil {
		_ = pg.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
		select {
		case <-pg.done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-pg.cmd.Process.Pid, syscall.SIGKILL)
			<-pg.done
		}
	}
	if pg.dir != "" && strings.Contains(pg.dir, "paygate-pg-") {
		_ = os.RemoveAll(pg.dir)
	}
}
