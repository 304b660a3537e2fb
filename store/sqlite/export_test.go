package sqlite

import (
	"context"
	"testing"
)

// Pragma reads a pragma on the writer connection.
func Pragma(t testing.TB, s *Store, name string) string {
	t.Helper()
	var v string
	if err := s.w.QueryRowContext(context.Background(), "PRAGMA "+name).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}
