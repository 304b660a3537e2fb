package paygate_test

import (
	"net/http"
	"testing"

	"github.com/numedapp/paygate"
)

// TestSystemLogBadPathKeepsBatch: e83efd9 made the PostgreSQL
// store clean the text it writes for callbacks (storable: valid UTF-8, no
// NUL), because "a text it refused would fail the whole group". The system
// log writer has the same shape and was missed: the http row's Path and
// Message are r.URL.Path, which a client chooses byte by byte with
// percent-escapes (%FF is invalid UTF-8, %00 is NUL). InsertSystemLogs
// writes the whole batch (every request of the last 250 ms, up to 500
// rows) in one COPY, and PostgreSQL refuses the COPY for that one row:
// the writer counts the batch as dropped. So one unauthenticated request
// — repeated — erases every other request's audit row, including the
// payment actions' rows written in the same batch.
//
// Expected: the row of an ordinary request sent right after is stored (the
// bad path is cleaned, as storable does for callbacks). Instead the batch
// is lost. Fault: syslog.go observe (Path/Message not cleaned) and
// store/systemlogs.go InsertSystemLogs (no storable). Fix: clean Path,
// Message, RequestID and Method with the same storable/printable before
// queuing the row, or in InsertSystemLogs.
func TestSystemLogBadPathKeepsBatch(t *testing.T) {
	e := newEnv(t, withSystemLogs(1024))
	runGateway(t, e.gw)

	get := func(path, reqID string) {
		req, err := http.NewRequest("GET", e.srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Request-Id", reqID)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// No API key needed: the row is written for a 401/404 too.
	get("/api/payments/%FF", "req-review-bad-1")
	get("/nothing/a%00b", "req-review-bad-2")
	get("/api/health", "req-review-good")

	rows := e.logsWhere(t, paygate.SystemLogFilter{RequestID: "req-review-good"}, 1)
	if len(rows) != 1 {
		t.Fatalf("the row of GET /api/health was lost with the batch of a request whose path held %%FF / %%00: rows %+v", rows)
	}
}
