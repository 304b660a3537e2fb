package paygatetest

import (
	"fmt"
	"os"
	"sync"
)

// TB is the part of testing.TB that paygatetest uses; *testing.T and
// *testing.B are TBs, and so is what [Standalone] returns.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
	// TempDir returns a directory removed when the test ends (a file
	// store's home).
	TempDir() string
}

// Standalone returns a TB for code that has no *testing.T — an Example
// function, a main program trying paygate out — and the stop function that
// runs its cleanups (last registered first). Its Fatalf prints the message
// to stderr, runs the cleanups and exits with status 1.
func Standalone() (t TB, stop func()) {
	s := &standalone{}
	return s, s.stop
}

type standalone struct {
	mu       sync.Mutex
	cleanups []func()
}

func (s *standalone) Helper() {}

func (s *standalone) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

func (s *standalone) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	s.stop()
	os.Exit(1)
}

func (s *standalone) TempDir() string {
	dir, err := os.MkdirTemp("", "paygatetest-")
	if err != nil {
		s.Fatalf("paygatetest: %v", err)
	}
	s.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func (s *standalone) Cleanup(f func()) {
	s.mu.Lock()
	s.cleanups = append(s.cleanups, f)
	s.mu.Unlock()
}

func (s *standalone) stop() {
	for {
		s.mu.Lock()
		n := len(s.cleanups)
		if n == 0 {
			s.mu.Unlock()
			return
		}
		f := s.cleanups[n-1]
		s.cleanups = s.cleanups[:n-1]
		s.mu.Unlock()
		f()
	}
}
