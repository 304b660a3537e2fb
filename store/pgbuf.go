package store

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"unsafe"

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
// once, to what the batch needs, and keep them for the next batches: pgx
// lets go of both once the batch is sent (it starts its write buffer
// afresh after a flush of more than 1 KB, and its parameter buffer at the
// next statement), so a batch's buffers are taken from a short free list
// and given back when its results are read — the write buffer only if pgx
// is seen to have let it go.

// sized is the first parameter of a batch statement, an array of strings,
// with about how many bytes all the statement's parameters take encoded:
// wrapped so, it sizes pgx's parameter buffer for all of them at once. It
// is encoded only on a connection prepared by sizeBuffers.
type sized struct {
	v    []string
	n    int
	bufs *batchBufs // set by sizeBuffers
}

// sizedArrays wraps first, the first parameter of a statement whose other
// parameters are the arrays of strings more and, beside them, fixed bytes a
// row of fixed-size values (as many rows as first has).
func sizedArrays(fixed int, first []string, more ...[]string) sized {
	n := 128 + len(first)*fixed + arraySize(first) // 128: the fixed-size arrays' headers
	for _, a := range more {
		n += arraySize(a)
	}
	return sized{v: first, n: n}
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
	if s.bufs == nil {
		return p.next.Encode(s.v, slices.Grow(buf, s.n))
	}
	// pgx started this statement's parameters in buf (this is the first)
	// and copies them into its write buffer before it encodes the next
	// statement's: the batch's one parameter buffer serves every statement.
	out := s.bufs.params
	if cap(out) < len(buf)+s.n {
		out = make([]byte, 0, len(buf)+s.n)
	}
	out, err := p.next.Encode(s.v, append(out[:0], buf...))
	s.bufs.params = out[:0]
	return out, err
}

func tryWrapSized(value any) (pgtype.WrappedEncodePlanNextSetter, any, bool) {
	if s, ok := value.(sized); ok {
		return &sizedPlan{}, s.v, true
	}
	return nil, nil, false
}

// sizeBuffers readies conn to send b: it makes the connection able to
// encode sized parameters (once: the connection's type map keeps it), and
// gives b's statements buffers that hold b's messages and parameters, as
// the sizes they were given say. The write buffer keeps that room until it
// is next flushed, so b must be the next thing sent on conn; when ctx is
// done, sending will fail before any flush, and nothing is given (a
// connection would keep it until its next large write). Once b's results
// are read, release gives the buffers back.
func sizeBuffers(ctx context.Context, conn *pgx.Conn, b *pgx.Batch) *batchBufs {
	m := conn.TypeMap()
	if fs := m.TryWrapEncodePlanFuncs; len(fs) == 0 || reflect.ValueOf(fs[0]).Pointer() != reflect.ValueOf(tryWrapSized).Pointer() {
		m.TryWrapEncodePlanFuncs = append([]pgtype.TryWrapEncodePlanFunc{tryWrapSized}, fs...)
	}
	if ctx.Err() != nil {
		return nil
	}
	bufs := takeBufs()
	n := 0
	for _, q := range b.QueuedQueries {
		// Bind (the statement's name, 58 bytes, and 6 bytes of format and
		// length for each parameter), Describe and Execute
		n += 96 + 6*len(q.Arguments)
		if len(q.Arguments) > 0 {
			if s, ok := q.Arguments[0].(sized); ok {
				n += s.n
				s.bufs = bufs
				q.Arguments[0] = s
			}
		}
	}
	conn.PgConn().Frontend().Send(growBuffer{n, bufs})
	return bufs
}

// batchBufs are the buffers one batch's messages are built in.
type batchBufs struct{ params, wbuf []byte }

// spareBufs holds the buffers of batches that are done, for the next ones
// (no more than run at once, one or two; a batch that finds none makes its
// own). Buffers larger than maxSpareBuf are not kept.
var spareBufs = make(chan *batchBufs, 4)

const maxSpareBuf = 1 << 20

func takeBufs() *batchBufs {
	select {
	case b := <-spareBufs:
		return b
	default:
		return &batchBufs{}
	}
}

// release gives the buffers back for another batch, once the batch's
// results have been read on conn. The write buffer goes back only if pgx
// no longer writes into it: after an error it may keep it.
func (bb *batchBufs) release(conn *pgx.Conn) {
	if bb == nil {
		return
	}
	held := true // if pgx does not ask the probe (a failed encode), assume so
	conn.PgConn().Frontend().Send(heldProbe{bb.wbuf, &held})
	if held || cap(bb.wbuf) > maxSpareBuf {
		bb.wbuf = nil
	}
	if cap(bb.params) > maxSpareBuf {
		bb.params = nil
	}
	select {
	case spareBufs <- bb:
	default:
	}
}

// growBuffer is a message of no bytes: "sending" it puts what pgx has
// buffered (usually nothing) in a buffer with room for n more bytes, which
// pgx writes the next messages into.
type growBuffer struct {
	n    int
	bufs *batchBufs
}

func (growBuffer) Frontend()           {}
func (growBuffer) Decode([]byte) error { return errors.New("store: growBuffer is not a message") }
func (g growBuffer) Encode(dst []byte) ([]byte, error) {
	w := g.bufs.wbuf
	if cap(w) < len(dst)+g.n {
		w = make([]byte, 0, len(dst)+g.n)
		g.bufs.wbuf = w
	}
	return append(w[:0], dst...), nil
}

// heldProbe is a message of no bytes that tells whether pgx's write buffer
// is w.
type heldProbe struct {
	w    []byte
	held *bool
}

func (heldProbe) Frontend()           {}
func (heldProbe) Decode([]byte) error { return errors.New("store: heldProbe is not a message") }
func (p heldProbe) Encode(dst []byte) ([]byte, error) {
	*p.held = cap(dst) > 0 && cap(p.w) > 0 && unsafe.SliceData(dst[:cap(dst)]) == unsafe.SliceData(p.w[:cap(p.w)])
	return dst, nil
}
