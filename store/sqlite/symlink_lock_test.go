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
