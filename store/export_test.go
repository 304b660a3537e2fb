package store

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// IndexPlans is indexPlans, for the plan tests.
const IndexPlans = indexPlans

// ReleaseKeepsWriteBuffer gives a batch's buffers to conn's next messages,
// as sizeBuffers does, sends query (when it is not empty) and releases the
// buffers: it reports whether the write buffer was kept for another batch.
func ReleaseKeepsWriteBuffer(ctx context.Context, conn *pgx.Conn, query string) (bool, error) {
	bufs := &batchBufs{}
	conn.PgConn().Frontend().Send(growBuffer{4096, bufs})
	if query != "" {
		if _, err := conn.Exec(ctx, query); err != nil {
			return false, err
		}
	}
	bufs.release(conn)
	return bufs.wbuf != nil, nil
}
