package main

import (
	"os"
	"runtime/debug"
	"testing"
)

// defaultMemoryLimit is paymentd's soft memory limit when GOMEMLIMIT is not
// set: the garbage collector works harder as the heap nears it, so the
// process stays small under load (paymentd's live heap is a few MB: pool
// connections, the system log buffer, requests in flight). GOMEMLIMIT
// overrides it; GOMEMLIMIT=off leaves the runtime's default.
const defaultMemoryLimit = 20 << 20

func init() {
	if os.Getenv("GOMEMLIMIT") == "" && !testing.Testing() {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
}
