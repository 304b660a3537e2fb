//go:build !unix

package sqlite

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// lockFile creates path exclusively: where flock is not available, a lock
// file left by a crashed process must be removed by hand.
func lockFile(path string) (io.Closer, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%w: %s exists (remove it if no process uses the database)", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: lock file: %w", err)
	}
	return &removeOnClose{f}, nil
}

type removeOnClose struct{ *os.File }

func (r *removeOnClose) Close() error {
	err := r.File.Close()
	_ = os.Remove(r.Name())
	return err
}
