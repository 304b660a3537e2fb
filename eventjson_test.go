package paygate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// checkFastEvent holds fastEvent to encoding/json: when the fast path
// answers, encoding/json accepts the text too and reads the same event.
func checkFastEvent(t *testing.T, payload []byte) (fastOK bool) {
	t.Helper()
	fast, ok := fastEvent(payload)
	var std stripeEvent[stripeObject]
	err := json.Unmarshal(payload, &std)
	if !ok {
		return false
	}
	if err != nil {
		t.Fatalf("fastEvent read text encoding/json refuses (%v):\n%s", err, payload)
	}
	if diff := cmp.Diff(std, fast); diff != "" {
		t.Fatalf("fastEvent differs from encoding/json (-std +fast):\n%s\n%s", diff, payload)
	}
	return true
}

func stripeFixtures(t testing.TB) map[string][]byte {
	files, err := filepath.Glob("testdata/events/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no event fixtures: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

// Stripe's events as Stripe sends them take the fast path, and read as
// encoding/json reads them.
func TestFastEventReadsStripeEvents(t *testing.T) {
	for name, b := range stripeFixtures(t) {
		t.Run(name, func(t *testing.T) {
			if !checkFastEvent(t, b) {
				t.Fatal("fastEvent gave up on an event as Stripe sends it")
			}
			ev, _ := fastEvent(b)
			if ev.ID == "" || ev.Type == "" || ev.Data.Object.ID == "" || ev.Created == 0 {
				t.Fatalf("fields missing: %+v", ev)
			}
		})
	}
}

// Each case is either read as encoding/json reads it (fast true) or left
// to encoding/json (fast false); either way checkFastEvent compares.
func TestFastEventEdges(t *testing.T) {
	obj := func(o string) string {
		return `{"id":"evt_1","type":"charge.refunded","created":1700000000,"data":{"object":` + o + `}}`
	}
	for _, tc := range []struct {
		name, payload string
		fast          bool
	}{
		{"plain", obj(`{"id":"ch_1","amount":5,"metadata":{"paygate_payment_id":"pay_1"}}`), true},
		{"white space everywhere", " \t\n{ \"id\" : \"evt_1\" ,\r\n\"data\" : { \"object\" : { \"id\" : \"ch_1\" } } }\n ", true},
		{"nulls leave fields", `{"id":"evt_1","type":null,"created":null,"livemode":null,"api_version":null,"data":{"object":{"id":"ch_1","metadata":null,"charge":null,"refunds":null,"last_payment_error":null}}}`, true},
		{"data null", `{"id":"evt_1","data":null}`, true},
		{"object null", obj(`null`), true},
		{"empty metadata is a map", obj(`{"id":"ch_1","metadata":{}}`), true},
		{"empty refunds list", obj(`{"id":"ch_1","refunds":{"object":"list","data":[]}}`), true},
		{"refunds without data", obj(`{"id":"ch_1","refunds":{"object":"list"}}`), true},
		{"refunds data null", obj(`{"id":"ch_1","refunds":{"data":null}}`), true},
		{"nested refunds", obj(`{"id":"ch_1","refunds":{"data":[{"id":"re_1","amount":5,"status":"succeeded","metadata":{"a":"b"}},{"id":"re_2","charge":"ch_1"}]}}`), true},
		{"old charges list", obj(`{"id":"pi_1","object":"payment_intent","charges":{"data":[{"id":"ch_1","x":[1,2]}]}}`), true},
		{"expanded ids", obj(`{"id":"cs_1","payment_intent":{"id":"pi_1","amount":5},"payment_link":"plink_1","latest_charge":{"object":"charge"}}`), true},
		{"last payment error", obj(`{"id":"pi_1","last_payment_error":{"code":"card_declined","decline_code":"generic_decline","message":"Declined.","charge":"ch_1","doc_url":"x"}}`), true},
		{"customer details", obj(`{"id":"cs_1","customer_details":{"email":"a@example.com","name":"A"}}`), true},
		{"escaped value", obj(`{"id":"ch_1","reason":"requested_by_customer \"quoted\" \u00e9\n"}`), true},
		{"escaped skipped value", obj(`{"id":"ch_1","description":"a \\ b \/ \" \u2019 \t"}`), true},
		{"unicode value", obj(`{"id":"ch_1","reason":"ร้านค้า 🦷"}`), true},
		{"numbers skipped", obj(`{"id":"ch_1","x":-0,"y":1.5e-3,"z":[0,10,2E+9,-1.25]}`), true},
		{"negative amount", obj(`{"id":"ch_1","amount":-5}`), true},
		{"largest int64", obj(`{"id":"ch_1","amount":9223372036854775807}`), true},
		{"literals skipped", obj(`{"id":"ch_1","a":true,"b":false,"c":null,"d":[true,null,{}]}`), true},
		{"unknown duplicate keys", obj(`{"id":"ch_1","x":1,"x":2}`), true},
		{"metadata duplicate keys", obj(`{"id":"ch_1","metadata":{"a":"1","a":"2"}}`), true},
		{"value not UTF-8 (replaced, as encoding/json does)", obj("{\"id\":\"ch_\xff\"}"), true},

		// Left to encoding/json.
		{"amount is a fraction", obj(`{"id":"ch_1","amount":1.0}`), false},
		{"amount has an exponent", obj(`{"id":"ch_1","amount":1e3}`), false},
		{"amount overflows", obj(`{"id":"ch_1","amount":9223372036854775808}`), false},
		{"amount is text", obj(`{"id":"ch_1","amount":"5"}`), false},
		{"id is a number", obj(`{"id":5}`), false},
		{"livemode is text", `{"id":"evt_1","livemode":"no","data":{}}`, false},
		{"key in capitals", obj(`{"ID":"ch_1"}`), false},
		{"envelope key in capitals", `{"Type":"x","data":{}}`, false},
		{"key with Kelvin sign", obj(`{"id":"ch_1","\u212aey":"x"}`), false},
		{"non-ASCII key", obj(`{"id":"ch_1","kéy":"x"}`), false},
		{"escaped key", obj(`{"\u0069d":"ch_1"}`), false},
		{"repeated field", obj(`{"id":"ch_1","id":"ch_2"}`), false},
		{"repeated pointer field", obj(`{"id":"ch_1","refunds":{"data":[]},"refunds":{"data":[{"id":"re_1"}]}}`), false},
		{"repeated list data", obj(`{"id":"ch_1","refunds":{"data":[{"id":"re_1","amount":5}],"data":[{"amount":6}]}}`), false},
		{"repeated charges data", obj(`{"id":"pi_1","charges":{"data":[{"id":"ch_1"}],"data":[{}]}}`), false},
		{"repeated data", `{"id":"evt_1","data":{"object":{"id":"a"}},"data":{"object":{"amount":5}}}`, false},
		{"metadata value null", obj(`{"id":"ch_1","metadata":{"a":null}}`), false},
		{"metadata value number", obj(`{"id":"ch_1","metadata":{"a":1}}`), false},
		{"metadata is a list", obj(`{"id":"ch_1","metadata":["a"]}`), false},
		{"refund element null", obj(`{"id":"ch_1","refunds":{"data":[null]}}`), false},
		{"expandable is a number", obj(`{"id":"pi_1","latest_charge":5}`), false},
		{"expandable id is a number", obj(`{"id":"pi_1","latest_charge":{"id":5}}`), false},
		{"deep nesting", obj(`{"id":"ch_1","x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`), false},

		// Not JSON: encoding/json refuses, and so does the fast path.
		{"trailing comma", obj(`{"id":"ch_1",}`), false},
		{"trailing text", obj(`{"id":"ch_1"}`) + "x", false},
		{"two values", obj(`{"id":"ch_1"}`) + "{}", false},
		{"leading zero", obj(`{"id":"ch_1","x":01}`), false},
		{"bare minus", obj(`{"id":"ch_1","x":-}`), false},
		{"dot without digits", obj(`{"id":"ch_1","x":1.}`), false},
		{"exponent without digits", obj(`{"id":"ch_1","x":1e}`), false},
		{"bad escape", obj(`{"id":"ch_1","x":"\x"}`), false},
		{"short unicode escape", obj(`{"id":"ch_1","x":"\u12"}`), false},
		{"control character", obj("{\"id\":\"ch_1\",\"x\":\"a\tb\"}"), false},
		{"unterminated string", `{"id":"evt_1`, false},
		{"unterminated object", `{"id":"evt_1","data":{"object":{}}`, false},
		{"single quotes", `{'id':'evt_1'}`, false},
		{"bad literal", obj(`{"id":"ch_1","x":nul}`), false},
		{"true with a tail", obj(`{"id":"ch_1","x":truex}`), false},
		{"missing colon", `{"id" "evt_1"}`, false},
		{"form feed before", "\f{}", false},
		{"byte order mark", "\ufeff{}", false},
		{"array at the top", `[{"id":"evt_1"}]`, false},
		{"empty", ``, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkFastEvent(t, []byte(tc.payload)); got != tc.fast {
				t.Fatalf("fast path taken: %v, want %v", got, tc.fast)
			}
		})
	}
}

// FuzzFastEvent: whatever the text, the fast path reads it as
// encoding/json does, or leaves it to encoding/json.
func FuzzFastEvent(f *testing.F) {
	for _, b := range stripeFixtures(f) {
		f.Add(b)
	}
	f.Add([]byte(`{"id":"evt_1","data":{"object":{"id":"ch_1","refunds":{"data":[{"id":"re_1","metadata":{"a":"b"}}]}}}}`))
	f.Add([]byte(`{"id":"evt_1","data":{"object":{"id":"pi_1","last_payment_error":{"code":"x"},"charges":{"data":[{"id":"ch_1"}]}}}}`))
	f.Fuzz(func(t *testing.T, b []byte) { checkFastEvent(t, b) })
}

func BenchmarkParseEvent(b *testing.B) {
	for name, payload := range stripeFixtures(b) {
		b.Run(strings.TrimSuffix(name, ".json"), func(b *testing.B) {
			b.Run("fast", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(payload)))
				for b.Loop() {
					if _, ok := fastEvent(payload); !ok {
						b.Fatal("gave up")
					}
				}
			})
			b.Run("encoding-json", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(payload)))
				for b.Loop() {
					var ev stripeEvent[stripeObject]
					if err := json.Unmarshal(payload, &ev); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
