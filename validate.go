package paygate

import (
	"bytes"
	"encoding/json"
	"net/mail"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Stripe's metadata limits (API.md §2): 50 keys, of which paygate_payment_id
// takes one; keys up to 40 characters, values up to 500.
const (
	maxMetadataKeys     = 49
	maxMetadataKeyLen   = 40
	maxMetadataValueLen = 500
	maxURLLen           = 2048
	maxEmailLen         = 254
)

// checkMetadata enforces Stripe's metadata limits before Stripe is called.
func checkMetadata(m map[string]string) error {
	if len(m) > maxMetadataKeys {
		return invalidParam("metadata", "metadata may have at most %d keys", maxMetadataKeys)
	}
	for k, v := range m {
		switch {
		case k == "" || strings.TrimSpace(k) == "":
			return invalidParam("metadata", "metadata keys must not be empty")
		case utf8.RuneCountInString(k) > maxMetadataKeyLen || !utf8.ValidString(k):
			return invalidParam("metadata", "metadata keys must be valid text of at most %d characters", maxMetadataKeyLen)
		case strings.ContainsAny(k, "[]"):
			return invalidParam("metadata."+k, "metadata keys must not contain square brackets")
		case k == MetadataKey || k == metadataRefundKey:
			return invalidParam("metadata."+k, "metadata key %s is reserved", k)
		case utf8.RuneCountInString(v) > maxMetadataValueLen || !utf8.ValidString(v):
			return invalidParam("metadata."+k, "metadata values must be valid text of at most %d characters", maxMetadataValueLen)
		case hasControl(k):
			return invalidParam("metadata", "metadata keys must not contain control characters")
		case hasControl(v):
			return invalidParam("metadata."+k, "metadata values must not contain control characters")
		}
	}
	return nil
}

// checkURL requires an absolute http(s) URL with a host.
func checkURL(param, s string) error {
	if len(s) > maxURLLen {
		return invalidParam(param, "%s must be at most %d characters", param, maxURLLen)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return invalidParam(param, "%s must be an absolute http or https URL", param)
	}
	return nil
}

// checkEmail requires a single bare address (no display name).
func checkEmail(param, s string) error {
	if len(s) > maxEmailLen {
		return invalidParam(param, "%s must be at most %d characters", param, maxEmailLen)
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return invalidParam(param, "%s must be an email address", param)
	}
	return nil
}

// checkText requires valid UTF-8 without control characters, at most n characters.
func checkText(param, s string, n int) error {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > n {
		return invalidParam(param, "%s must be text of at most %d characters", param, n)
	}
	if hasControl(s) {
		return invalidParam(param, "%s must not contain control characters", param)
	}
	return nil
}

// hasControl reports control characters other than newline and tab (NUL
// among them, which PostgreSQL cannot store in text).
func hasControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) >= 0
}

// Metadata is the caller's metadata on a create request: string keys and
// string values. Decoding names the offending key ("metadata.orderId")
// when a value is not a string.
type Metadata map[string]string

// UnmarshalJSON decodes an object of strings.
func (m *Metadata) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	// Read key by key: a key given twice is refused (which value a reader
	// takes differs), and so is a null value (not a string).
	notObject := invalidParam("metadata", "metadata must be an object of string values")
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return notObject
	}
	out := Metadata{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return notObject
		}
		k, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return notObject
		}
		if _, dup := out[k]; dup {
			return invalidParam("metadata."+k, "metadata key %q is given more than once", truncate(k, 40))
		}
		var s string
		if string(v) == "null" || json.Unmarshal(v, &s) != nil {
			return invalidParam("metadata."+k, "metadata values must be strings")
		}
		out[k] = s
	}
	*m = out
	return nil
}
