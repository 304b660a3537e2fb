package paygate

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A fast path for parseEvent. encoding/json reads a 4 KB Stripe event at
// about 130 MB/s: it validates the whole text in one pass and decodes it in
// another, by reflection, skipping the hundred fields paygate does not read
// with its general scanner. That was a tenth of paymentd's CPU under webhook
// load (docs/benchmarks.md). fastEvent reads the same fields in one pass over
// the bytes and validates everything it skips; it handles the shape Stripe
// sends and nothing more. Whatever it does not handle exactly as
// encoding/json would — a key that matches a field only when case is
// ignored, a repeated field, a value of an unexpected type, an escaped key,
// a number that is not a plain integer, nesting deeper than maxFastDepth —
// makes it give up, and parseEvent asks encoding/json, so the result never
// depends on which path read the event. FuzzFastEvent holds the two to the
// same answers.

// maxFastDepth bounds the nesting fastEvent follows (encoding/json allows
// 10,000); deeper text goes to encoding/json.
const maxFastDepth = 64

// fastEvent reads payload as json.Unmarshal into a stripeEvent[stripeObject]
// would. ok false means "ask encoding/json": payload may be valid or not.
func fastEvent(payload []byte) (ev stripeEvent[stripeObject], ok bool) {
	d := fastDecoder{b: payload}
	var seen, seenData uint32
	ok = d.object(0, func(key []byte) bool {
		if !once(&seen, key, eventFields...) {
			return false
		}
		switch string(key) {
		case "id":
			return d.str(&ev.ID)
		case "type":
			return d.str(&ev.Type)
		case "api_version":
			return d.str(&ev.APIVersion)
		case "created":
			return d.int(&ev.Created)
		case "livemode":
			return d.bool(&ev.Livemode)
		case "data":
			if d.null() {
				return true
			}
			return d.object(1, func(key []byte) bool {
				if !once(&seenData, key, "object") {
					return false
				}
				switch string(key) {
				case "object":
					if d.null() {
						return true
					}
					return d.stripeObject(2, &ev.Data.Object)
				}
				return d.other(key, 2, "object")
			})
		}
		return d.other(key, 1, eventFields...)
	})
	d.ws()
	return ev, ok && d.i == len(d.b)
}

// fastDecoder is a cursor over the text; every method reports false when
// fastEvent must give up.
type fastDecoder struct {
	b []byte
	i int
}

func (d *fastDecoder) ws() {
	b, i := d.b, d.i
	for i < len(b) {
		if c := b[i]; c > ' ' || c != ' ' && c != '\n' && c != '\t' && c != '\r' {
			break
		}
		i++
	}
	d.i = i
}

// peek skips white space and returns the next byte, 0 at the end.
func (d *fastDecoder) peek() byte {
	d.ws()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// null consumes a null if one is next.
func (d *fastDecoder) null() bool {
	if d.peek() == 'n' && d.i+4 <= len(d.b) && d.b[d.i+1] == 'u' && d.b[d.i+2] == 'l' && d.b[d.i+3] == 'l' {
		d.i += 4
		return true
	}
	return false
}

// object reads an object, calling field for each key (not escaped) with the
// cursor on its value; field must consume the value.
func (d *fastDecoder) object(depth int, field func(key []byte) bool) bool {
	if depth > maxFastDepth || d.peek() != '{' {
		return false
	}
	d.i++
	if d.peek() == '}' {
		d.i++
		return true
	}
	for {
		if d.peek() != '"' {
			return false
		}
		key, ok := d.rawString()
		if !ok || bytes.IndexByte(key, '\\') >= 0 {
			return false
		}
		if d.peek() != ':' {
			return false
		}
		d.i++
		d.ws()
		if !field(key) {
			return false
		}
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return true
		default:
			return false
		}
	}
}

// other skips the value of a key that is none of fields, giving up if
// encoding/json would take it for one of them (it matches keys without
// regard to case).
func (d *fastDecoder) other(key []byte, depth int, fields ...string) bool {
	upper := false
	for _, c := range key {
		switch {
		case c >= utf8.RuneSelf:
			return false // Unicode case folding: let encoding/json decide
		case 'A' <= c && c <= 'Z':
			upper = true
		}
	}
	// The fields' names are lower case: a key without capitals that is
	// none of them matches none of them.
	if upper {
		for _, f := range fields {
			if strings.EqualFold(string(key), f) {
				return false
			}
		}
	}
	return d.skip(depth)
}

// rawString reads a string with the cursor on its opening quote and returns
// its text between the quotes, escapes not undone, after checking it as
// encoding/json does: no control characters, only JSON's escapes.
func (d *fastDecoder) rawString() ([]byte, bool) {
	b := d.b
	start := d.i + 1 // after the quote
	for i := start; i < len(b); {
		c := b[i]
		switch {
		case c == '"':
			d.i = i + 1
			return b[start:i], true
		case c < 0x20:
			return nil, false
		case c != '\\':
			i++
			continue
		}
		if i++; i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i++
		case 'u':
			if i+4 >= len(b) {
				return nil, false
			}
			for _, h := range b[i+1 : i+5] {
				if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
					return nil, false
				}
			}
			i += 5
		default:
			return nil, false
		}
	}
	return nil, false
}

// str reads a string (null leaves dst as it is, as encoding/json does).
func (d *fastDecoder) str(dst *string) bool {
	switch d.peek() {
	case 'n':
		return d.null()
	case '"':
		start := d.i
		raw, ok := d.rawString()
		if !ok {
			return false
		}
		if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
			*dst = string(raw)
			return true
		}
		// Escapes (and bytes that are not UTF-8, which encoding/json
		// replaces) are rare in the fields paygate reads: undo them as
		// encoding/json does, by asking it.
		return json.Unmarshal(d.b[start:d.i], dst) == nil
	}
	return false
}

// int reads an integer as encoding/json does into an int64: a number
// literal without fraction or exponent that fits.
func (d *fastDecoder) int(dst *int64) bool {
	if d.null() {
		return true
	}
	start := d.i
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	digits := d.i
	for d.i < len(d.b) && '0' <= d.b[d.i] && d.b[d.i] <= '9' {
		d.i++
	}
	if d.i == digits || d.b[digits] == '0' && d.i-digits > 1 {
		return false
	}
	if d.i < len(d.b) && (d.b[d.i] == '.' || d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		return false
	}
	n, err := strconv.ParseInt(string(d.b[start:d.i]), 10, 64)
	if err != nil {
		return false
	}
	*dst = n
	return true
}

func (d *fastDecoder) bool(dst *bool) bool {
	if d.null() {
		return true
	}
	rest := d.b[d.i:]
	switch {
	case len(rest) >= 4 && rest[0] == 't' && rest[1] == 'r' && rest[2] == 'u' && rest[3] == 'e':
		*dst = true
		d.i += 4
	case len(rest) >= 5 && rest[0] == 'f' && rest[1] == 'a' && rest[2] == 'l' && rest[3] == 's' && rest[4] == 'e':
		*dst = false
		d.i += 5
	default:
		return false
	}
	return true
}

// skip validates and skips any value.
func (d *fastDecoder) skip(depth int) bool {
	if depth > maxFastDepth {
		return false
	}
	switch c := d.peek(); {
	case c == '"':
		_, ok := d.rawString()
		return ok
	case c == '{':
		return d.object(depth, func(key []byte) bool { return d.skip(depth + 1) })
	case c == '[':
		return d.array(depth, func() bool { return d.skip(depth + 1) })
	case c == '-' || '0' <= c && c <= '9':
		return d.number()
	case c == 't' || c == 'f':
		var b bool
		return d.bool(&b)
	case c == 'n':
		return d.null()
	}
	return false
}

// array reads an array, calling elem with the cursor on each element.
func (d *fastDecoder) array(depth int, elem func() bool) bool {
	if depth > maxFastDepth || d.peek() != '[' {
		return false
	}
	d.i++
	if d.peek() == ']' {
		d.i++
		return true
	}
	for {
		d.ws()
		if !elem() {
			return false
		}
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			return true
		default:
			return false
		}
	}
}

// number validates and skips a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *fastDecoder) number() bool {
	digits := func() int {
		start := d.i
		for d.i < len(d.b) && '0' <= d.b[d.i] && d.b[d.i] <= '9' {
			d.i++
		}
		return d.i - start
	}
	if d.b[d.i] == '-' {
		d.i++
	}
	first := d.i
	n := digits()
	if n == 0 || n > 1 && d.b[first] == '0' {
		return false
	}
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		if digits() == 0 {
			return false
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}

// expandable reads a field that is an id or an expanded object, as
// (*expandable).UnmarshalJSON does.
func (d *fastDecoder) expandable(depth int, dst *expandable) bool {
	switch d.peek() {
	case 'n':
		return d.null()
	case '"':
		var s string
		if !d.str(&s) {
			return false
		}
		*dst = expandable(s)
		return true
	case '{':
		var id string
		if !d.field(depth, "id", &id) {
			return false
		}
		*dst = expandable(id)
		return true
	}
	return false
}

// field reads an object of which paygate keeps one string field, name.
func (d *fastDecoder) field(depth int, name string, dst *string) bool {
	return d.object(depth, func(key []byte) bool {
		if string(key) == name {
			return d.str(dst)
		}
		return d.other(key, depth+1, name)
	})
}

// stripeObject reads the fields of a stripeObject.
func (d *fastDecoder) stripeObject(depth int, o *stripeObject) bool {
	var seen uint32
	return d.object(depth, func(key []byte) bool {
		if !once(&seen, key, stripeObjectFields...) {
			return false
		}
		switch string(key) {
		case "id":
			return d.str(&o.ID)
		case "object":
			return d.str(&o.Object)
		case "status":
			return d.str(&o.Status)
		case "amount":
			return d.int(&o.Amount)
		case "amount_received":
			return d.int(&o.AmountReceived)
		case "amount_refunded":
			return d.int(&o.AmountRefunded)
		case "amount_total":
			return d.int(&o.AmountTotal)
		case "created":
			return d.int(&o.Created)
		case "currency":
			return d.str(&o.Currency)
		case "metadata":
			return d.metadata(depth+1, &o.Metadata)
		case "payment_intent":
			return d.expandable(depth+1, &o.PaymentIntent)
		case "payment_link":
			return d.expandable(depth+1, &o.PaymentLink)
		case "payment_status":
			return d.str(&o.PaymentStatus)
		case "charge":
			return d.expandable(depth+1, &o.Charge)
		case "latest_charge":
			return d.expandable(depth+1, &o.LatestCharge)
		case "reason":
			return d.str(&o.Reason)
		case "customer_email":
			return d.str(&o.CustomerEmail)
		// once lets each field through the first time only: the pointers
		// and the map below are still nil, and null leaves them so.
		case "last_payment_error":
			if d.null() {
				return true
			}
			e := &lastPaymentError{}
			o.LastPaymentError = e
			return d.object(depth+1, func(key []byte) bool {
				switch string(key) {
				case "charge":
					return d.str(&e.Charge)
				case "code":
					return d.str(&e.Code)
				case "decline_code":
					return d.str(&e.DeclineCode)
				case "message":
					return d.str(&e.Message)
				}
				return d.other(key, depth+2, lastPaymentErrorFields...)
			})
		case "refunds":
			if d.null() {
				return true
			}
			o.Refunds = &stripeList[stripeObject]{}
			return fastList(d, depth+1, &o.Refunds.Data, func(depth int, el *stripeObject) bool { return d.stripeObject(depth, el) })
		case "charges":
			if d.null() {
				return true
			}
			o.Charges = &stripeList[stripeID]{}
			return fastList(d, depth+1, &o.Charges.Data, func(depth int, el *stripeID) bool { return d.field(depth, "id", &el.ID) })
		case "customer_details":
			if d.null() {
				return true
			}
			o.CustomerDetails = &customerDetails{}
			return d.field(depth+1, "email", &o.CustomerDetails.Email)
		}
		return d.other(key, depth+1, stripeObjectFields...)
	})
}

// The JSON names of the structs fastEvent fills, read from their tags, for
// once and other: every name encoding/json would match, and no other.
var (
	eventFields            = jsonNames(reflect.TypeFor[stripeEvent[stripeObject]]())
	stripeObjectFields     = jsonNames(reflect.TypeFor[stripeObject]())
	lastPaymentErrorFields = jsonNames(reflect.TypeFor[lastPaymentError]())
)

func jsonNames(t reflect.Type) []string {
	names := make([]string, t.NumField())
	for i := range names {
		names[i], _, _ = strings.Cut(t.Field(i).Tag.Get("json"), ",")
	}
	return names
}

// fastList reads a Stripe list object's data array (an object element read by
// elem; a null element gives up).
func fastList[T any](d *fastDecoder, depth int, dst *[]T, elem func(depth int, el *T) bool) bool {
	var seen uint32
	return d.object(depth, func(key []byte) bool {
		if string(key) != "data" {
			return d.other(key, depth+1, "data")
		}
		if !once(&seen, key, "data") {
			return false // encoding/json decodes a second array into the first one's elements
		}
		if d.null() {
			*dst = nil
			return true
		}
		*dst = []T{} // [] is an empty slice, not nil, as encoding/json makes it
		return d.array(depth+1, func() bool {
			if d.peek() != '{' {
				return false
			}
			var el T
			if !elem(depth+2, &el) {
				return false
			}
			*dst = append(*dst, el)
			return true
		})
	})
}

// metadata reads a map of strings (null leaves it nil; a null or non-string
// value gives up).
func (d *fastDecoder) metadata(depth int, dst *map[string]string) bool {
	if d.null() {
		return true
	}
	m := map[string]string{}
	*dst = m
	return d.object(depth, func(key []byte) bool {
		if d.peek() != '"' || !utf8.Valid(key) {
			return false
		}
		var v string
		if !d.str(&v) {
			return false
		}
		m[string(key)] = v
		return true
	})
}

// once reports whether key, if it is one of fields, is met for the first
// time in its object (its bit in seen was clear). A repeated field gives up:
// encoding/json would decode the second value into the first (a pointer's
// struct, a slice's elements), which fastEvent does not copy.
func once(seen *uint32, key []byte, fields ...string) bool {
	for i, f := range fields {
		if string(key) == f {
			if i >= 32 || *seen&(1<<i) != 0 { // past 32 fields: always encoding/json
				return false
			}
			*seen |= 1 << i
			return true
		}
	}
	return true
}
