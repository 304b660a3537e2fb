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

// Exec runs a statement on the writer connection.
func Exec(t testing.TB, s *Store, query string, args ...any) {
	t.Helper()
	if _, err := s.w.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatal(err)
	}
}

// QueryString reads one text value on the writer connection.
func QueryString(t testing.TB, s *Store, query string, args ...any) string {
	t.Helper()
	var v string
	if err := s.w.QueryRowContext(context.Background(), query, args...).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}
