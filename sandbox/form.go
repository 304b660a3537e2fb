package sandbox

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// form is a request's parameters with Stripe's nested keys unfolded:
// a[b][0][c]=v becomes form{"a": form{"b": form{"0": form{"c": "v"}}}}.
// Leaves are strings; "[]" appends the next index.
type form map[string]any

// parseForm unfolds url-encoded values. It fails on a key that is both a
// value and a parent (a=1&a[b]=2), naming it.
func parseForm(v url.Values) (form, error) {
	root := form{}
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, val := range v[k] {
			segs, err := splitKey(k)
			if err != nil {
				return nil, err
			}
			cur := root
			for i, seg := range segs {
				if seg == "" { // "[]": next index
					seg = strconv.Itoa(len(cur))
				}
				if i == len(segs)-1 {
					if _, isForm := cur[seg].(form); isForm {
						return nil, &Error{Status: 400, Type: "invalid_request_error", Code: "parameter_invalid_string", Param: k, Message: fmt.Sprintf("Invalid string: %s is also an object", k)}
					}
					cur[seg] = val
					break
				}
				next, ok := cur[seg].(form)
				if !ok {
					if _, isStr := cur[seg].(string); isStr {
						return nil, &Error{Status: 400, Type: "invalid_request_error", Code: "parameter_invalid_string", Param: k, Message: fmt.Sprintf("Invalid object: %s", k)}
					}
					next = form{}
					cur[seg] = next
				}
				cur = next
			}
		}
	}
	return root, nil
}

// splitKey splits "a[b][0]" into ["a","b","0"].
func splitKey(k string) ([]string, error) {
	i := strings.IndexByte(k, '[')
	if i < 0 {
		return []string{k}, nil
	}
	segs := []string{k[:i]}
	rest := k[i:]
	for rest != "" {
		if rest[0] != '[' {
			return nil, &Error{Status: 400, Type: "invalid_request_error", Param: k, Message: "Invalid parameter name: " + k}
		}
		j := strings.IndexByte(rest, ']')
		if j < 0 {
			return nil, &Error{Status: 400, Type: "invalid_request_error", Param: k, Message: "Invalid parameter name: " + k}
		}
		segs = append(segs, rest[1:j])
		rest = rest[j+1:]
	}
	return segs, nil
}

// str returns the string at the path, and whether it was given.
func (f form) str(path ...string) (string, bool) {
	var cur any = f
	for _, p := range path {
		m, ok := cur.(form)
		if !ok {
			return "", false
		}
		cur, ok = m[p]
		if !ok {
			return "", false
		}
	}
	s, ok := cur.(string)
	return s, ok
}

// sub returns the nested form at the path (nil when absent).
func (f form) sub(path ...string) form {
	var cur any = f
	for _, p := range path {
		m, ok := cur.(form)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	m, _ := cur.(form)
	return m
}

// list returns the elements of an indexed array form in index order.
func (f form) list() []any {
	if f == nil {
		return nil
	}
	idx := make([]int, 0, len(f))
	for k := range f {
		n, err := strconv.Atoi(k)
		if err != nil {
			continue
		}
		idx = append(idx, n)
	}
	sort.Ints(idx)
	out := make([]any, 0, len(idx))
	for _, n := range idx {
		out = append(out, f[strconv.Itoa(n)])
	}
	return out
}

// strings returns an array parameter (a[0]=x&a[1]=y, a[]=x, or a=x).
func (f form) strings(key string) []string {
	switch v := f[key].(type) {
	case string:
		return []string{v}
	case form:
		var out []string
		for _, e := range v.list() {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// canonical is a stable text of the form, to compare idempotent requests.
func (f form) canonical() string {
	var b strings.Builder
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case string:
			b.WriteString(prefix)
			b.WriteByte('=')
			b.WriteString(x)
			b.WriteByte('&')
		case form:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				p := k
				if prefix != "" {
					p = prefix + "[" + k + "]"
				}
				walk(p, x[k])
			}
		}
	}
	walk("", f)
	return b.String()
}

// checker validates parameters and collects the first error.
type checker struct {
	f   form
	err *Error
}

// allow fails on any top-level key of f not in keys (plus expand, metadata
// is listed explicitly by callers that take it).
func (c *checker) allow(keys ...string) {
	if c.err != nil {
		return
	}
	ok := map[string]bool{"expand": true}
	for _, k := range keys {
		ok[k] = true
	}
	names := make([]string, 0, len(c.f))
	for k := range c.f {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !ok[k] {
			c.err = unknownParam(k)
			return
		}
	}
}

// allowIn fails on any key of the nested form at name not in keys.
func (c *checker) allowIn(name string, sub form, keys ...string) {
	if c.err != nil || sub == nil {
		return
	}
	ok := map[string]bool{}
	for _, k := range keys {
		ok[k] = true
	}
	names := make([]string, 0, len(sub))
	for k := range sub {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !ok[k] {
			c.err = unknownParam(name + "[" + k + "]")
			return
		}
	}
}

func unknownParam(k string) *Error {
	return &Error{Status: 400, Type: "invalid_request_error", Code: "parameter_unknown", Param: k,
		Message: "Received unknown parameter: " + k}
}

// integer reads an integer parameter; required reports a missing one.
func (c *checker) integer(f form, param, key string, required bool, min int64) (int64, bool) {
	if c.err != nil {
		return 0, false
	}
	s, ok := f.str(key)
	if !ok {
		if _, isObj := f[key].(form); isObj {
			c.err = &Error{Status: 400, Type: "invalid_request_error", Code: "parameter_invalid_integer", Param: param, Message: "Invalid integer: " + param}
		} else if required {
			c.err = missing(param)
		}
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		c.err = &Error{Status: 400, Type: "invalid_request_error", Code: "parameter_invalid_integer", Param: param, Message: "Invalid integer: " + s}
		return 0, false
	}
	if n < min {
		c.err = &Error{Status: 400, Type: "invalid_request_error", Code: "parameter_invalid_integer", Param: param,
			Message: fmt.Sprintf("This value must be greater than or equal to %d.", min)}
		return 0, false
	}
	return n, true
}

// text reads a string parameter.
func (c *checker) text(f form, param, key string, required bool) (string, bool) {
	if c.err != nil {
		return "", false
	}
	s, ok := f.str(key)
	if !ok {
		if _, isObj := f[key].(form); isObj {
			c.err = &Error{Status: 400, Type: "invalid_request_error", Code: "parameter_invalid_string", Param: param, Message: "Invalid string: " + param}
		} else if required {
			c.err = missing(param)
		}
		return "", false
	}
	return s, true
}

// boolean reads a boolean parameter.
func (c *checker) boolean(f form, param, key string) (bool, bool) {
	s, ok := c.text(f, param, key, false)
	if !ok {
		return false, false
	}
	switch s {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	c.err = &Error{Status: 400, Type: "invalid_request_error", Code: "parameter_invalid_boolean", Param: param, Message: "Invalid boolean: " + s}
	return false, false
}

// oneOf reads a string parameter limited to values.
func (c *checker) oneOf(f form, param, key string, required bool, values ...string) (string, bool) {
	s, ok := c.text(f, param, key, required)
	if !ok {
		return "", false
	}
	for _, v := range values {
		if s == v {
			return s, true
		}
	}
	c.err = &Error{Status: 400, Type: "invalid_request_error", Code: "parameter_invalid_string", Param: param,
		Message: fmt.Sprintf("Invalid %s: must be one of %s", param, strings.Join(values, ", "))}
	return "", false
}

// metadata reads a metadata hash (empty values delete keys on update).
func (c *checker) metadata(f form, param string) map[string]string {
	if c.err != nil {
		return nil
	}
	v, present := f["metadata"]
	if !present {
		return nil
	}
	if s, ok := v.(string); ok && s == "" {
		return map[string]string{}
	}
	m, ok := v.(form)
	if !ok {
		c.err = &Error{Status: 400, Type: "invalid_request_error", Code: "parameter_invalid_string", Param: param, Message: "Invalid hash: " + param}
		return nil
	}
	out := map[string]string{}
	for k, val := range m {
		s, ok := val.(string)
		if !ok {
			c.err = &Error{Status: 400, Type: "invalid_request_error", Param: param + "[" + k + "]", Message: "Invalid metadata value: " + param + "[" + k + "]"}
			return nil
		}
		if len(k) > 40 || len(s) > 500 {
			c.err = &Error{Status: 400, Type: "invalid_request_error", Param: param + "[" + k + "]", Message: "Metadata keys are at most 40 characters and values at most 500."}
			return nil
		}
		out[k] = s
	}
	if len(out) > 50 {
		c.err = &Error{Status: 400, Type: "invalid_request_error", Param: param, Message: "Metadata has at most 50 keys."}
		return nil
	}
	return out
}

func missing(param string) *Error {
	return &Error{Status: 400, Type: "invalid_request_error", Code: "parameter_missing", Param: param,
		Message: "Missing required param: " + param + "."}
}

// metaObj turns a metadata map into its JSON form (never nil).
func metaObj(m map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}
