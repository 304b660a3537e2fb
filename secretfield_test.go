package paygate

import (
	"encoding/json"
	"reflect"
	"testing"
)

// secretBodies are response envelopes: the payment-intent route's (its
// data.clientSecret is the one to blank) and others whose nested objects
// have a key of the same name (a caller's metadata), left as they are.
var secretBodies = []string{
	`{"success":true,"data":{"paymentIntentId":"pi_1","clientSecret":"pi_1_secret_abc","paymentId":"pay_1"}}`,
	`{"success":true,"data":{"metadata":{"clientSecret":"order-77"},"clientSecret":"pi_2_secret_x","paymentIntentId":"pi_2"}}`,
	`{"success":true,"data":{"id":"pay_3","metadata":{"clientSecret":"order-77"},"empty":{},"list":[{},[],{"clientSecret":"x"}]}}`,
	`{"success":true,"data":{"clientSecret":""}}`,
	`{"clientSecret":"top","data":[{"clientSecret":"in a list"}]}`,
	`{"success":false,"error":{"code":"invalid_request","message":"\"clientSecret\":\"x\""}}`,
	`not json`, ``, `{`, `{"data":{"clientSecret":`,
}

// TestWithoutSecretsByStructure: only data.clientSecret is blanked; the
// rest of the body is byte for byte as it was.
func TestWithoutSecretsByStructure(t *testing.T) {
	for _, b := range secretBodies {
		got := withoutSecrets([]byte(b))
		var in, out map[string]any
		if json.Unmarshal([]byte(b), &in) != nil {
			if string(got) != b {
				t.Errorf("not JSON, yet changed: %q → %q", b, got)
			}
			continue
		}
		if err := json.Unmarshal(got, &out); err != nil {
			t.Fatalf("%s → %s: %v", b, got, err)
		}
		if d, ok := in["data"].(map[string]any); ok {
			if _, has := d["clientSecret"]; has {
				d["clientSecret"] = ""
			}
		}
		if !reflect.DeepEqual(in, out) {
			t.Errorf("%s\n→ %s", b, got)
		}
	}
}

// FuzzWithoutSecrets: any body, valid JSON or not, is handled without a
// panic, and a JSON body stays JSON.
func FuzzWithoutSecrets(f *testing.F) {
	for _, b := range secretBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := withoutSecrets(b)
		if json.Valid(b) && !json.Valid(got) {
			t.Fatalf("%q → %q is not JSON", b, got)
		}
		dataField(b, "paymentIntentId")
	})
}
