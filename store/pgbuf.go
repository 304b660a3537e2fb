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

// sized is the first parameter of a batch statement, an array of strings,
// with about how many bytes all the statement's parameters take encoded:
// wrapped so, it sizes pgx's parameter buffer for all of them at once. It
// is encoded only on a connection prepared by sizeBuffers.
type sized struct {
	v []string
	n int
}

// sizedArrays wraps first, the first parameter of a statement whose other
// parameters are the arrays of strings more and, beside them, fixed bytes a
// row of fixed-size values (as many rows as first has).
func sizedArrays(fixed int, first []string, more ...[]string) sized {
	n := 128 + len(first)*fixed + arraySize(first) // 128: the fixed-size arrays' headers
	for _, a := range more {
		n += arraySize(a)
	}
	return sized{first, n}
}

// arraySize is how many bytes pgx encodes a into: a header, and a length
// before each element.
func arraySize(a []string) int {
	n := 24 + 4*len(a)
	for _, s := range a {
		n += len(s)
	}
	return n
}

// sizedPlan grows the buffer, then encodes the array as pgx would have.
type sizedPlan struct{ next pgtype.EncodePlan }

func (p *sizedPlan) SetNext(next pgtype.EncodePlan) { p.next = next }

func (p *sizedPlan) Encode(value any, buf []byte) ([]byte, error) {
	s := value.(sized)
	return p.next.Encode(s.v, slices.Grow(buf, s.n))
}

func tryWrapSized(value any) (pgtype.WrappedEncodePlanNextSetter, any, bool) {
	if s, ok := value.(sized); ok {
		return &sizedPlan{}, s.v, true
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
			if s, ok := q.Arguments[0].(sized); ok {
				n += s.n
			}
		}
	}
	conn.PgConn().Frontend().Send(growBuffer(n))
}

// growBuffer is a message of no bytes: "sending" it grows the buffer that
// pgx writes the next messages into.
type growBuffer int

func (growBuffer) Frontend()                           {}
func (growBuffer) Decode([]byte) error                 { return errors.New("store: growBuffer is not a message") }
func (n growBuffer) Encode(dst []byte) ([]byte, error) { return slices.Grow(dst, int(n)), nil }
