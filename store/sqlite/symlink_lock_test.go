package sqlite_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/numedapp/paygate/store/sqlite"
)

// TestSecondStoreThroughSymlinkRefused: the file belongs to one Store
// (Open locks it), whatever name it is reached by: a second Open through a
// symlink to a database another Store holds fails with ErrLocked, as it
// does for the same path. (A hard link fails in SQLite itself.)
func TestSecondStoreThroughSymlinkRefused(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "paymentd.db")
	first, err := sqlite.Open(real, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	alias := filepath.Join(dir, "current.db")
	if err := os.Symlink(real, alias); err != nil {
		t.Fatal(err)
	}
	second, err := sqlite.Open(alias, sqlite.Options{})
	if err == nil {
		_ = second.Close()
		t.Fatal("Open through a symlink to a database another Store holds succeeded; want ErrLocked")
	}
	if !errors.Is(err, sqlite.ErrLocked) {
		t.Fatalf("Open through a symlink: %v, want ErrLocked", err)
	}
}

// TestDanglingSymlinkLocksItsTarget: a symlink to a database not created
// yet is followed, as SQLite follows it to create the file: a Store opened
// through it holds the target, and a second one opened by the target's
// own path is refused.
func TestDanglingSymlinkLocksItsTarget(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "data", "paymentd.db")
	if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
		t.Fatal(err)
	}
	alias := filepath.Join(dir, "current.db")
	if err := os.Symlink("data/paymentd.db", alias); err != nil {
		t.Fatal(err)
	}
	first, err := sqlite.Open(alias, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if _, err := os.Stat(real); err != nil {
		t.Fatalf("the target was not created through the link: %v", err)
	}
	second, err := sqlite.Open(real, sqlite.Options{})
	if err == nil {
		_ = second.Close()
		t.Fatal("Open by the target's path while a Store holds it through a dangling symlink succeeded; want ErrLocked")
	}
	if !errors.Is(err, sqlite.ErrLocked) {
		t.Fatalf("Open by the target's path: %v, want ErrLocked", err)
	}
}
