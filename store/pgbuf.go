package store

import (
	"context"
	"errors"
	"reflect"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// A batch of webhook events is sent to PostgreSQL as a few statements
// whose parameters are arrays holding every event's payload (3 KB or so
// each): 50 KB and more at once. pgx encodes a statement's parameters into
// a buffer that starts at 256 bytes for every statement, and the messages
// into a write buffer that it shrinks to 1 KB after every flush, so both
// grew by doubling, from nothing, for every batch: twice the batch's size
// allocated and copied in each, 45 % of all paymentd allocated under load
// (docs/benchmarks.md). Garbage is paid for in collections, which
// paymentd's memory limit makes frequent. These helpers size both buffers
// once, to what the batch needs.

// sized is a statement parameter whose encoding is known to take about n
// bytes, together with those of the parameters after it: the first
// parameter of a statement, wrapped, sizes pgx's buffer for all of them.
// It is encoded only on a connection prepared by sizeBuffers.
type sized[T any] struct {
	v T
	n int
}

// withSize wraps v, the first parameter of a statement whose parameters
// take about n bytes encoded.
func withSize[T any](v T, n int) sized[T] { return sized[T]{v, n} }

// sizer is what every sized[T] is, whatever its T.
type sizer interface {
	unwrap() any
	size() int
	plan() pgtype.WrappedEncodePlanNextSetter
}

func (s sized[T]) unwrap() any                              { return s.v }
func (s sized[T]) size() int                                { return s.n }
func (s sized[T]) plan() pgtype.WrappedEncodePlanNextSetter { return &sizedPlan[T]{} }

// sizedPlan grows the buffer, then encodes the value as pgx would have.
// pgx keeps one plan per Go type, so there is one per T.
type sizedPlan[T any] struct{ next pgtype.EncodePlan }

func (p *sizedPlan[T]) SetNext(next pgtype.EncodePlan) { p.next = next }

func (p *sizedPlan[T]) Encode(value any, buf []byte) ([]byte, error) {
	s := value.(sized[T])
	return p.next.Encode(s.v, slices.Grow(buf, s.n))
}

func tryWrapSized(value any) (pgtype.WrappedEncodePlanNextSetter, any, bool) {
	if s, ok := value.(sizer); ok {
		return s.plan(), s.unwrap(), true
	}
	return nil, nil, false
}

// sizeBuffers readies conn to send b: it makes the connection able to
// encode sized parameters (once: the connection's type map keeps it), and
// grows its write buffer to hold b's messages, as the sizes b's statements
// were given say. The buffer keeps that room until it is next flushed, so
// b must be the next thing sent on conn; when ctx is done, sending will
// fail before any flush, and the room is not made (a connection would keep
// it until its next large write).
func sizeBuffers(ctx context.Context, conn *pgx.Conn, b *pgx.Batch) {
	m := conn.TypeMap()
	if fs := m.TryWrapEncodePlanFuncs; len(fs) == 0 || reflect.ValueOf(fs[0]).Pointer() != reflect.ValueOf(tryWrapSized).Pointer() {
		m.TryWrapEncodePlanFuncs = append([]pgtype.TryWrapEncodePlanFunc{tryWrapSized}, fs...)
	}
	if ctx.Err() != nil {
		return
	}
	n := 0
	for _, q := range b.QueuedQueries {
		// Bind (the statement's name, 58 bytes, and 6 bytes of format and
		// length for each parameter), Describe and Execute
		n += 96 + 6*len(q.Arguments)
		if len(q.Arguments) > 0 {
			if s, ok := q.Arguments[0].(sizer); ok {
				n += s.size()
			}
		}
	}
	conn.PgConn().Frontend().Send(growBuffer(n))
}

// arraysSize is about how many bytes pgx encodes the arrays of strings ss
// into, with rows rows of fixed-size values of fixed bytes each beside them.
func arraysSize(rows, fixed int, ss ...[]string) int {
	n := 128 + rows*fixed // the headers of the fixed-size arrays too
	for _, a := range ss {
		n += 24 + 4*len(a) // array header; a length before each element
		for _, s := range a {
			n += len(s)
		}
	}
	return n
}

// growBuffer is a message of no bytes: "sending" it grows the buffer that
// pgx writes the next messages into.
type growBuffer int

func (growBuffer) Frontend()                           {}
func (growBuffer) Decode([]byte) error                 { return errors.New("store: growBuffer is not a message") }
func (n growBuffer) Encode(dst []byte) ([]byte, error) { return slices.Grow(dst, int(n)), nil }
