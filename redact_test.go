package paygate

import (
	"encoding/json"
	"testing"
)

func TestWithoutClientSecrets(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"id":"evt_1","data":{"object":{"id":"pi_1","client_secret":"pi_1_secret_abc"}}}`,
			`{"id":"evt_1","data":{"object":{"id":"pi_1","client_secret":"[redacted]"}}}`},
		{"{\n  \"client_secret\" :\t \"pi_1_secret_a\\\"b\",\n  \"x\": 1\n}",
			"{\n  \"client_secret\" :\t \"[redacted]\",\n  \"x\": 1\n}"},
		{`{"a":{"client_secret":"s1"},"b":[{"client_secret":"s2"}],"client_secret":null}`,
			`{"a":{"client_secret":"[redacted]"},"b":[{"client_secret":"[redacted]"}],"client_secret":null}`},
		// the words as a value, in another key, or escaped in a string: not a field
		{`{"note":"client_secret","client_secret_hint":"x","d":"\"client_secret\":\"y\""}`,
			`{"note":"client_secret","client_secret_hint":"x","d":"\"client_secret\":\"y\""}`},
		{`{"description":"a \\","client_secret":"pi_2_secret_z"}`,
			`{"description":"a \\","client_secret":"[redacted]"}`},
		{`{"id":"evt_2"}`, `{"id":"evt_2"}`},
		{`{"client_secret":"unterminated`, `{"client_secret":"unterminated`},
	} {
		got := string(withoutClientSecrets([]byte(c.in)))
		if got != c.want {
			t.Errorf("withoutClientSecrets(%s)\n got %s\nwant %s", c.in, got, c.want)
		}
		if json.Valid([]byte(c.in)) && !json.Valid([]byte(got)) {
			t.Errorf("%s: not JSON any more: %s", c.in, got)
		}
	}
	in := []byte(`{"id":"evt_3","type":"charge.refunded"}`)
	if out := withoutClientSecrets(in); &out[0] != &in[0] {
		t.Error("an event without a client secret was copied")
	}
}

// FuzzWithoutClientSecrets: valid JSON stays valid JSON, and no value but
// a client_secret's changes.
func FuzzWithoutClientSecrets(f *testing.F) {
	f.Add([]byte(`{"data":{"object":{"client_secret":"pi_1_secret_x","amount":5}}}`))
	f.Add([]byte(`["client_secret", {"client_secret": "a\"b"}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		out := withoutClientSecrets(b)
		if !json.Valid(out) {
			t.Fatalf("%q → %q: not JSON", b, out)
		}
		var x, y any
		_ = json.Unmarshal(b, &x)
		_ = json.Unmarshal(out, &y)
		scrub(x)
		scrub(y)
		if xb, _ := json.Marshal(x); string(xb) != string(mustMarshal(y)) {
			t.Fatalf("%q → %q: more than the secrets changed", b, out)
		}
	})
}

// scrub sets every string client_secret of v to the redacted value.
func scrub(v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if _, ok := e.(string); ok && k == "client_secret" {
				v[k] = "[redacted]"
			} else {
				scrub(e)
			}
		}
	case []any:
		for _, e := range v {
			scrub(e)
		}
	}
}

func mustMarshal(v any) []byte { b, _ := json.Marshal(v); return b }
