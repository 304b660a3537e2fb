package paygate_test

import (
	"strings"
	"testing"
	"time"

	"github.com/numedapp/paygate"
)

// TestHugeLimitIsOutOfRange: a limit past int64 (the contract's integer;
// openapi.json refuses it too) is a 400 naming limit that says so, not the
// false "must be at least 1"; a limit above the maximum but in range is
// clamped (data.limit).
func TestHugeLimitIsOutOfRange(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, path := range []string{"/api/payments", "/api/payments/history", "/api/webhooks/events", "/api/webhooks/callbacks", "/api/logs/logs"} {
		r := e.do("GET", path+"?limit=100000000000000000000", "")
		if r.Status != 400 || r.param() != "limit" || !strings.Contains(r.Raw, "out of range") {
			t.Errorf("%s?limit=1e20 (digits): %d %s; want 400 naming limit, out of range", path, r.Status, r.Raw)
		}
		var page struct {
			Limit int `json:"limit"`
		}
		e.do("GET", path+"?limit=9223372036854775807", "").must(t, 200, &page)
		if page.Limit != paygate.MaxPageLimit {
			t.Errorf("%s?limit=MaxInt64: data.limit %d, want %d", path, page.Limit, paygate.MaxPageLimit)
		}
	}
}

// TestCursorOfAnotherListIsRefused: a cursor names its list; one list's
// cursor handed to another is a 400 naming cursor, not read as a position
// in it (payments and events share the (time, id) shape).
func TestCursorOfAnotherListIsRefused(t *testing.T) {
	e := newEnv(t, withWebhookSecrets(whsecNew))
	for i := 0; i < 3; i++ {
		e.webhookPayment(paygate.MethodIntent, 1000)
		time.Sleep(2 * time.Millisecond)
	}
	next := func(path string) string {
		t.Helper()
		var page struct {
			NextCursor *string `json:"nextCursor"`
		}
		e.do("GET", path, "").must(t, 200, &page)
		if page.NextCursor == nil {
			t.Fatalf("setup: %s has one page", path)
		}
		return *page.NextCursor
	}
	payCursor := next("/api/payments?limit=1")
	r := e.do("GET", "/api/webhooks/events?cursor="+payCursor, "")
	if r.Status != 400 || r.param() != "cursor" {
		t.Errorf("a payments cursor on /api/webhooks/events: %d %s; want 400 naming cursor", r.Status, r.Raw)
	}
}
