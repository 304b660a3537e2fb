package promtext

import (
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTextFormat(t *testing.T) {
	var r Registry
	req := NewCounterVec("app_requests_total", "Requests by route\\status.\nSecond line.", "route", "method")
	req.With("GET /x", "GET").Inc()
	req.With("GET /x", "GET").Add(2)
	req.With(`a"b\c`+"\n", "POST").Inc()
	plain := NewCounterVec("app_plain_total", "No labels.")
	lat := NewHistogramVec("app_seconds", "Latency.", []float64{0.1, 1, 2.5}, "route")
	for _, v := range []float64{0.05, 0.1, 0.7, 3} {
		lat.With("r").Observe(v)
	}
	g := NewGauge("app_lag_seconds", "Lag.")
	g.Set(7200.5)
	r.Register(req, plain, lat, g, NewGaugeFunc("app_depth", "Depth.", func() float64 { return 1e6 }))
	var b strings.Builder
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	want := `# HELP app_depth Depth.
# TYPE app_depth gauge
app_depth 1e+06
# HELP app_lag_seconds Lag.
# TYPE app_lag_seconds gauge
app_lag_seconds 7200.5
# HELP app_plain_total No labels.
# TYPE app_plain_total counter
app_plain_total 0
# HELP app_requests_total Requests by route\\status.\nSecond line.
# TYPE app_requests_total counter
app_requests_total{method="GET",route="GET /x"} 3
app_requests_total{method="POST",route="a\"b\\c\n"} 1
# HELP app_seconds Latency.
# TYPE app_seconds histogram
app_seconds_bucket{route="r",le="0.1"} 2
app_seconds_bucket{route="r",le="1"} 3
app_seconds_bucket{route="r",le="2.5"} 3
app_seconds_bucket{route="r",le="+Inf"} 4
app_seconds_sum{route="r"} 3.85
app_seconds_count{route="r"} 4
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

func TestHandlerAndRuntime(t *testing.T) {
	var r Registry
	r.Register(Runtime()...)
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("content type %q", ct)
	}
	body := rec.Body.String()
	for _, want := range []string{"\ngo_goroutines ", "\nprocess_cpu_seconds_total ", "\nprocess_resident_memory_bytes ", `go_info{version="go`} {
		if !strings.Contains(body, want) {
			t.Errorf("no %q in\n%s", want, body)
		}
	}
	if strings.Contains(body, "process_resident_memory_bytes 0\n") {
		t.Errorf("resident memory 0:\n%s", body)
	}
}

func TestMisuse(t *testing.T) {
	for name, f := range map[string]func(){
		"registered twice": func() {
			var r Registry
			r.Register(NewGauge("x", ""), NewGauge("x", ""))
		},
		"label count":      func() { NewCounterVec("x", "", "a").With() },
		"negative add":     func() { NewCounterVec("x", "").With().Add(-1) },
		"unsorted buckets": func() { NewHistogramVec("x", "", []float64{2, 1}) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// Updates and scrapes at once (run with -race): every observation is
// counted, and a scrape's buckets stay cumulative.
func TestConcurrent(t *testing.T) {
	var r Registry
	c := NewCounterVec("c_total", "", "k")
	h := NewHistogramVec("h", "", []float64{1, 2})
	r.Register(c, h)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 1000 {
				c.With(string(rune('a' + i%2))).Inc()
				h.With().Observe(float64(j % 3))
			}
		}()
	}
	for range 20 {
		var b strings.Builder
		r.WriteTo(&b)
	}
	wg.Wait()
	var b strings.Builder
	r.WriteTo(&b)
	for _, want := range []string{`c_total{k="a"} 4000`, `c_total{k="b"} 4000`, `h_count 8000`, `h_bucket{le="+Inf"} 8000`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in\n%s", want, b.String())
		}
	}
}
