package paygate_test

import (
	"context"
	"testing"
	"time"

	"github.com/numedapp/paygate"
)

// runGateway runs gw's background parts until the test ends, and fails
// the test if Run returns an error or does not return within 30 s of the
// end.
func runGateway(t testing.TB, gw *paygate.Gateway) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return within 30 s of its context ending")
		}
	})
}
