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

// A cursor names its list ("payments", "events", …): one list's cursor
// handed to another is refused, not read as a position in it. Cursors
// handed out before they named their list (no name) are still read.

// EncodeTime is list's cursor after an item sorted by (t, id).
func EncodeTime(list string, t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(list + "|" + t.UTC().Format(time.RFC3339Nano) + "|" + id))
}

// DecodeTime reads a cursor made by EncodeTime for list.
func DecodeTime(list, c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", Malformed()
	}
	s, ok := untag(list, string(b), func(tag string) bool { _, err := time.Parse(time.RFC3339Nano, tag); return err == nil })
	if !ok {
		return time.Time{}, "", Malformed()
	}
	ts, id, ok := strings.Cut(s, "|")
	t, err := time.Parse(time.RFC3339Nano, ts)
	if !ok || err != nil || !idPattern.MatchString(id) {
		return time.Time{}, "", Malformed()
	}
	return t, id, nil
}

// EncodeID is list's cursor after an item sorted by a bigint id.
func EncodeID(list, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(list + "|" + id))
}

// DecodeID reads a cursor made by EncodeID for list.
func DecodeID(list, c string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, Malformed()
	}
	s, ok := untag(list, string(b), func(tag string) bool { return tag == "h" })
	if !ok {
		return 0, Malformed()
	}
	if tag, rest, cut := strings.Cut(s, "|"); cut && tag == "h" {
		s = rest // an untagged cursor: "h|<id>"
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, Malformed()
	}
	return id, nil
}

// untag returns s without its list name when that is list, or s whole when
// it is an untagged cursor (its first field passes old); ok is false for a
// cursor of another list.
func untag(list, s string, old func(first string) bool) (string, bool) {
	first, rest, ok := strings.Cut(s, "|")
	switch {
	case !ok:
		return "", false
	case first == list:
		return rest, true
	case old(first):
		return s, true
	}
	return "", false
}
