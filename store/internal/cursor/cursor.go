// Package cursor encodes the list cursors both stores hand out: opaque to
// clients, base64url of the last item's sort key, and decoded with errors
// that name the cursor parameter.
package cursor

import (
	"encoding/base64"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/numedapp/paygate"
)

// idPattern is what the ids in cursors look like (pay_…, evt_…, 123).
var idPattern = regexp.MustCompile(`^[0-9A-Za-z_]{1,255}$`)

// Malformed is the error for a cursor that is not one a page handed out.
func Malformed() error {
	return &paygate.Error{Code: paygate.CodeInvalid, Param: "cursor", Message: "cursor is malformed; pass a nextCursor from a previous page"}
}

// EncodeTime is the cursor after an item sorted by (t, id).
func EncodeTime(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(t.UTC().Format(time.RFC3339Nano) + "|" + id))
}

// DecodeTime reads a cursor made by EncodeTime.
func DecodeTime(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", Malformed()
	}
	ts, id, ok := strings.Cut(string(b), "|")
	t, err := time.Parse(time.RFC3339Nano, ts)
	if !ok || err != nil || !idPattern.MatchString(id) {
		return time.Time{}, "", Malformed()
	}
	return t, id, nil
}

// EncodeID is the cursor after an item sorted by a bigint id.
func EncodeID(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("h|" + id))
}

// DecodeID reads a cursor made by EncodeID.
func DecodeID(c string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !strings.HasPrefix(string(b), "h|") {
		return 0, Malformed()
	}
	id, err := strconv.ParseInt(string(b[2:]), 10, 64)
	if err != nil || id < 1 {
		return 0, Malformed()
	}
	return id, nil
}
