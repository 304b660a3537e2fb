// Package promtext is a small metrics registry that writes the Prometheus
// text exposition format (version 0.0.4): counters, gauges and histograms,
// with or without labels, and metrics read from a function at scrape time.
//
// paygate used github.com/prometheus/client_golang before; it and the
// protocol buffers it brings cost paymentd about 2.6 MB of resident memory
// at start (of about 35 MB allowed under load), for a few dozen series that
// this writes in a page of code. The output is what a Prometheus server
// scrapes: families sorted by name, labels sorted by name within a series,
// series sorted by their labels, values as Go's shortest float form.
package promtext

import (
	"bufio"
	"io"
	"math"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Registry holds metric families and writes them.
type Registry struct {
	mu       sync.Mutex
	families []Family
}

// Family is a metric family: a name, its help, its type and its series.
type Family interface {
	name() string
	write(w *bufio.Writer)
}

// Register adds families; a name registered twice panics (a programming
// error, as in client_golang).
func (r *Registry) Register(fs ...Family) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range fs {
		for _, g := range r.families {
			if g.name() == f.name() {
				panic("promtext: " + f.name() + " registered twice")
			}
		}
		r.families = append(r.families, f)
	}
	slices.SortFunc(r.families, func(a, b Family) int { return strings.Compare(a.name(), b.name()) })
}

// WriteTo writes every Family in the text format.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	fs := slices.Clone(r.families)
	r.mu.Unlock()
	cw := &countingWriter{w: w}
	bw := bufio.NewWriter(cw)
	for _, f := range fs {
		f.write(bw)
	}
	err := bw.Flush()
	return cw.n, err
}

// Handler serves the registry.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = r.WriteTo(w)
	})
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// meta is a Family's name, help and label names.
type meta struct {
	Name, Help string
	Labels     []string
}

func (m *meta) name() string { return m.Name }

func (m *meta) header(w *bufio.Writer, typ string) {
	w.WriteString("# HELP " + m.Name + " ")
	w.WriteString(helpEscaper.Replace(m.Help))
	w.WriteString("\n# TYPE " + m.Name + " " + typ + "\n")
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	valueEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

// series writes name{labels} value; extra is one more label pair (a
// histogram's le), already formatted, or "".
func series(w *bufio.Writer, name string, names, values []string, extra string, v float64) {
	w.WriteString(name)
	if len(names) > 0 || extra != "" {
		w.WriteByte('{')
		order := make([]int, len(names))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int { return strings.Compare(names[a], names[b]) })
		for j, i := range order {
			if j > 0 {
				w.WriteByte(',')
			}
			w.WriteString(names[i] + `="` + valueEscaper.Replace(values[i]) + `"`)
		}
		if extra != "" {
			if len(names) > 0 {
				w.WriteByte(',')
			}
			w.WriteString(extra)
		}
		w.WriteByte('}')
	}
	w.WriteByte(' ')
	w.WriteString(formatFloat(v))
	w.WriteByte('\n')
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// value is a float64 updated atomically.
type value struct{ bits atomic.Uint64 }

func (v *value) add(d float64) {
	for {
		old := v.bits.Load()
		if v.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+d)) {
			return
		}
	}
}
func (v *value) set(x float64) { v.bits.Store(math.Float64bits(x)) }
func (v *value) get() float64  { return math.Float64frombits(v.bits.Load()) }

// vec keeps one child per combination of label values.
type vec[T any] struct {
	mu       sync.RWMutex
	children map[string]*T
	values   map[string][]string
	make     func() *T
}

func (v *vec[T]) with(n int, values []string) *T {
	if len(values) != n {
		panic("promtext: " + strconv.Itoa(len(values)) + " label values for " + strconv.Itoa(n) + " labels")
	}
	key := strings.Join(values, "\xff")
	v.mu.RLock()
	c := v.children[key]
	v.mu.RUnlock()
	if c != nil {
		return c
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if c = v.children[key]; c == nil {
		if v.children == nil {
			v.children, v.values = map[string]*T{}, map[string][]string{}
		}
		c = v.make()
		v.children[key], v.values[key] = c, slices.Clone(values)
	}
	return c
}

// each calls fn for every child, in the order of their label values.
func (v *vec[T]) each(fn func(values []string, c *T)) {
	v.mu.RLock()
	keys := make([]string, 0, len(v.children))
	for k := range v.children {
		keys = append(keys, k)
	}
	v.mu.RUnlock()
	slices.Sort(keys)
	for _, k := range keys {
		v.mu.RLock()
		c, vals := v.children[k], v.values[k]
		v.mu.RUnlock()
		fn(vals, c)
	}
}

// Counter is a value that only goes up.
type Counter struct{ v value }

// Inc adds 1.
func (c *Counter) Inc() { c.v.add(1) }

// Add adds d, which must not be negative.
func (c *Counter) Add(d float64) {
	if d < 0 {
		panic("promtext: a counter cannot decrease")
	}
	c.v.add(d)
}

// CounterVec is a counter Family with labels.
type CounterVec struct {
	meta
	vec vec[Counter]
	typ string // "counter"; "gauge" for go_info
}

// NewCounterVec returns a counter Family. With no labels it has one series,
// written even at 0.
func NewCounterVec(name, help string, labels ...string) *CounterVec {
	c := &CounterVec{meta: meta{Name: name, Help: help, Labels: labels}, typ: "counter"}
	c.vec.make = func() *Counter { return &Counter{} }
	if len(labels) == 0 {
		c.vec.with(0, nil)
	}
	return c
}

// With returns the counter for these label values (in the order of the
// labels given to NewCounterVec).
func (c *CounterVec) With(values ...string) *Counter { return c.vec.with(len(c.Labels), values) }

func (c *CounterVec) write(w *bufio.Writer) {
	c.header(w, c.typ)
	c.vec.each(func(values []string, x *Counter) { series(w, c.Name, c.Labels, values, "", x.v.get()) })
}

// Gauge is a value that goes up and down.
type Gauge struct {
	meta
	v value
}

// NewGauge returns a gauge (no labels).
func NewGauge(name, help string) *Gauge { return &Gauge{meta: meta{Name: name, Help: help}} }

// Set sets the gauge.
func (g *Gauge) Set(x float64) { g.v.set(x) }

// SetToCurrentTime sets the gauge to the Unix time now, in seconds.
func (g *Gauge) SetToCurrentTime() { g.v.set(float64(time.Now().UnixNano()) / 1e9) }

func (g *Gauge) write(w *bufio.Writer) {
	g.header(w, "gauge")
	series(w, g.Name, nil, nil, "", g.v.get())
}

// Func is a counter or a gauge whose value is read at scrape time.
type Func struct {
	meta
	typ string
	fn  func() float64
}

// NewCounterFunc returns a counter read from fn.
func NewCounterFunc(name, help string, fn func() float64) *Func {
	return &Func{meta: meta{Name: name, Help: help}, typ: "counter", fn: fn}
}

// NewGaugeFunc returns a gauge read from fn.
func NewGaugeFunc(name, help string, fn func() float64) *Func {
	return &Func{meta: meta{Name: name, Help: help}, typ: "gauge", fn: fn}
}

func (f *Func) write(w *bufio.Writer) {
	f.header(w, f.typ)
	series(w, f.Name, nil, nil, "", f.fn())
}

// Histogram counts observations in cumulative buckets.
type Histogram struct {
	upper  []float64
	counts []atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	sum    value
	count  atomic.Uint64
}

// Observe records x.
func (h *Histogram) Observe(x float64) {
	i, _ := slices.BinarySearch(h.upper, x) // the first bucket with upper >= x
	h.counts[i].Add(1)
	h.sum.add(x)
	h.count.Add(1)
}

// HistogramVec is a histogram Family with labels.
type HistogramVec struct {
	meta
	vec vec[Histogram]
	le  []string
}

// NewHistogramVec returns a histogram Family with these upper bounds
// (sorted; +Inf is added). With no labels it has one series.
func NewHistogramVec(name, help string, buckets []float64, labels ...string) *HistogramVec {
	if !slices.IsSorted(buckets) {
		panic("promtext: buckets of " + name + " not sorted")
	}
	h := &HistogramVec{meta: meta{Name: name, Help: help, Labels: labels}}
	for _, b := range buckets {
		h.le = append(h.le, `le="`+formatFloat(b)+`"`)
	}
	h.le = append(h.le, `le="+Inf"`)
	up := slices.Clone(buckets)
	h.vec.make = func() *Histogram { return &Histogram{upper: up, counts: make([]atomic.Uint64, len(up)+1)} }
	if len(labels) == 0 {
		h.vec.with(0, nil)
	}
	return h
}

// With returns the histogram for these label values.
func (h *HistogramVec) With(values ...string) *Histogram { return h.vec.with(len(h.Labels), values) }

func (h *HistogramVec) write(w *bufio.Writer) {
	h.header(w, "histogram")
	h.vec.each(func(values []string, x *Histogram) {
		// Read the total first: buckets read after it may hold a few more
		// observations, never fewer, so they stay cumulative.
		count, sum := x.count.Load(), x.sum.get()
		var cum uint64
		for i := range x.counts {
			cum += x.counts[i].Load()
			if i == len(x.counts)-1 {
				cum = max(cum, count)
			}
			series(w, h.Name+"_bucket", h.Labels, values, h.le[i], float64(cum))
		}
		series(w, h.Name+"_sum", h.Labels, values, "", sum)
		series(w, h.Name+"_count", h.Labels, values, "", float64(max(cum, count)))
	})
}

// Runtime returns the Go runtime's and the process's usual metrics, under
// client_golang's names: go_goroutines, go_threads, go_info,
// go_memstats_heap_alloc_bytes, go_memstats_heap_inuse_bytes,
// go_memstats_sys_bytes, go_gc_cycles_total (go_gc_duration_seconds is
// not kept), process_cpu_seconds_total, process_resident_memory_bytes,
// process_open_fds, process_start_time_seconds.
func Runtime() []Family {
	start := float64(time.Now().UnixNano()) / 1e9
	read := func(name string) float64 {
		s := []metrics.Sample{{Name: name}}
		metrics.Read(s)
		switch s[0].Value.Kind() {
		case metrics.KindUint64:
			return float64(s[0].Value.Uint64())
		case metrics.KindFloat64:
			return s[0].Value.Float64()
		}
		return 0
	}
	info := NewCounterVec("go_info", "Information about the Go environment.", "version")
	info.typ = "gauge"
	fs := []Family{
		NewGaugeFunc("go_goroutines", "Number of goroutines that currently exist.", func() float64 { return float64(runtime.NumGoroutine()) }),
		NewGaugeFunc("go_threads", "Number of OS threads created.", func() float64 {
			n, _ := runtime.ThreadCreateProfile(nil)
			return float64(n)
		}),
		info,
		NewGaugeFunc("go_memstats_heap_alloc_bytes", "Number of heap bytes allocated and still in use.", func() float64 {
			return read("/memory/classes/heap/objects:bytes")
		}),
		NewGaugeFunc("go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use.", func() float64 {
			return read("/memory/classes/heap/objects:bytes") + read("/memory/classes/heap/unused:bytes")
		}),
		NewGaugeFunc("go_memstats_sys_bytes", "Number of bytes obtained from system.", func() float64 { return read("/memory/classes/total:bytes") }),
		NewCounterFunc("go_gc_cycles_total", "Completed GC cycles.", func() float64 { return read("/gc/cycles/total:gc-cycles") }),
		NewCounterFunc("process_cpu_seconds_total", "Total user and system CPU time spent in seconds (Unix; 0 elsewhere).", cpuSeconds),
		NewGaugeFunc("process_resident_memory_bytes", "Resident memory size in bytes (Linux; 0 elsewhere).", residentBytes),
		NewGaugeFunc("process_open_fds", "Number of open file descriptors (Linux; 0 elsewhere).", func() float64 {
			fds, err := os.ReadDir("/proc/self/fd")
			if err != nil {
				return 0
			}
			return float64(len(fds))
		}),
		NewGaugeFunc("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", func() float64 { return start }),
	}
	info.With(runtime.Version()).Inc()
	return fs
}

func residentBytes() float64 {
	b, err := os.ReadFile("/proc/self/statm") // size resident shared … in pages
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseFloat(f[1], 64)
	return pages * float64(os.Getpagesize())
}
