package cursor

import (
	"encoding/base64"
	"testing"
	"time"
)

// TestCursorsNameTheirList: a cursor is read back by its own list, refused
// by another (as malformed, naming cursor), and one handed out before
// cursors named their list is still read.
func TestCursorsNameTheirList(t *testing.T) {
	at := time.Date(2026, 12, 2, 10, 0, 0, 123456000, time.UTC)
	c := EncodeTime("payments", at, "pay_abc")
	if got, id, err := DecodeTime("payments", c); err != nil || !got.Equal(at) || id != "pay_abc" {
		t.Fatalf("own list: %v %q %v", got, id, err)
	}
	if _, _, err := DecodeTime("events", c); err == nil {
		t.Error("a payments cursor was read by events")
	}
	old := base64.RawURLEncoding.EncodeToString([]byte(at.Format(time.RFC3339Nano) + "|pay_abc"))
	if got, id, err := DecodeTime("payments", old); err != nil || !got.Equal(at) || id != "pay_abc" {
		t.Errorf("an untagged time cursor: %v %q %v", got, id, err)
	}

	h := EncodeID("history", "42")
	if id, err := DecodeID("history", h); err != nil || id != 42 {
		t.Fatalf("own list: %d %v", id, err)
	}
	if _, err := DecodeID("callbacks", h); err == nil {
		t.Error("a history cursor was read by callbacks")
	}
	if id, err := DecodeID("callbacks", base64.RawURLEncoding.EncodeToString([]byte("h|42"))); err != nil || id != 42 {
		t.Errorf("an untagged id cursor: %d %v", id, err)
	}
	for _, bad := range []string{"", "!!", base64.RawURLEncoding.EncodeToString([]byte("history|0")),
		base64.RawURLEncoding.EncodeToString([]byte("history|x")), base64.RawURLEncoding.EncodeToString([]byte("42"))} {
		if _, err := DecodeID("history", bad); err == nil {
			t.Errorf("DecodeID(%q) read", bad)
		}
	}
	if _, _, err := DecodeTime("payments", EncodeTime("payments", at, "bad id!")); err == nil {
		t.Error("an id out of pattern was read")
	}
}
