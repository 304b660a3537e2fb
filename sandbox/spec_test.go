package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stripe/stripe-mock/embedded"
)

// The sandbox's objects are checked against Stripe's OpenAPI spec as
// stripe-mock ships it (github.com/stripe/stripe-mock/embedded, imported
// only from tests, so nothing of it reaches an embedder's binary).
//
// The validator is ours, not kin-openapi: Stripe's component schemas use a
// small JSON Schema subset (type, nullable, properties, required, anyOf,
// oneOf, enum, items, additionalProperties, $ref), and we want one thing
// kin-openapi does not do: refuse properties the spec does not list, so a
// misspelt field fails. Enums marked x-stripeBypassValidation are open.
//
// The spec is newer than API version 2023-10-16; fields the newer spec
// requires are present (harmless to 2023-10-16 clients), and the few
// 2023-10-16 fields the newer spec dropped are not emitted.

type specSchemas map[string]map[string]any

var (
	specOnce sync.Once
	specErr  error
	spec     specSchemas
)

func loadSpec(t *testing.T) specSchemas {
	t.Helper()
	specOnce.Do(func() {
		var doc struct {
			Components struct {
				Schemas map[string]map[string]any `json:"schemas"`
			} `json:"components"`
		}
		dec := json.NewDecoder(bytes.NewReader(embedded.OpenAPISpec))
		dec.UseNumber()
		specErr = dec.Decode(&doc)
		spec = doc.Components.Schemas
	})
	if specErr != nil {
		t.Fatal(specErr)
	}
	return spec
}

// validate checks v against the named component schema and returns every
// violation, each with its JSON path.
func (sp specSchemas) validate(name string, v any) []string {
	var errs []string
	sch, ok := sp[name]
	if !ok {
		return []string{"no schema " + name}
	}
	sp.check(name, v, sch, &errs)
	return errs
}

func (sp specSchemas) resolve(sch map[string]any) map[string]any {
	for {
		ref, ok := sch["$ref"].(string)
		if !ok {
			return sch
		}
		sch = sp[strings.TrimPrefix(ref, "#/components/schemas/")]
	}
}

func (sp specSchemas) check(path string, v any, sch map[string]any, errs *[]string) {
	sch = sp.resolve(sch)
	if v == nil {
		if sch["nullable"] != true {
			*errs = append(*errs, path+": null, but not nullable")
		}
		return
	}
	for _, key := range []string{"anyOf", "oneOf"} {
		alts, ok := sch[key].([]any)
		if !ok {
			continue
		}
		var all []string
		for _, a := range alts {
			var e []string
			sp.check(path, v, a.(map[string]any), &e)
			if len(e) == 0 {
				return
			}
			all = append(all, e...)
		}
		*errs = append(*errs, fmt.Sprintf("%s: matches no %s branch: %s", path, key, strings.Join(all, "; ")))
		return
	}
	if enum, ok := sch["enum"].([]any); ok && sch["x-stripeBypassValidation"] != true {
		found := false
		for _, e := range enum {
			if fmt.Sprint(e) == fmt.Sprint(v) {
				found = true
			}
		}
		if !found {
			*errs = append(*errs, fmt.Sprintf("%s: %v not in enum %v", path, v, enum))
		}
	}
	switch sch["type"] {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			*errs = append(*errs, fmt.Sprintf("%s: want object, got %T", path, v))
			return
		}
		props, _ := sch["properties"].(map[string]any)
		if req, ok := sch["required"].([]any); ok {
			for _, r := range req {
				if _, ok := m[r.(string)]; !ok {
					*errs = append(*errs, path+": missing required "+r.(string))
				}
			}
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if p, ok := props[k].(map[string]any); ok {
				sp.check(path+"."+k, m[k], p, errs)
				continue
			}
			switch ap := sch["additionalProperties"].(type) {
			case map[string]any:
				sp.check(path+"."+k, m[k], ap, errs)
			case bool:
				if !ap {
					*errs = append(*errs, path+": unknown property "+k)
				}
			default:
				if props != nil {
					*errs = append(*errs, path+": unknown property "+k)
				}
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			*errs = append(*errs, fmt.Sprintf("%s: want array, got %T", path, v))
			return
		}
		if items, ok := sch["items"].(map[string]any); ok {
			for i, e := range a {
				sp.check(fmt.Sprintf("%s[%d]", path, i), e, items, errs)
			}
		}
	case "string":
		if _, ok := v.(string); !ok {
			*errs = append(*errs, fmt.Sprintf("%s: want string, got %T", path, v))
		}
	case "integer":
		n, ok := v.(json.Number)
		if _, err := n.Int64(); !ok || err != nil {
			*errs = append(*errs, fmt.Sprintf("%s: want integer, got %v", path, v))
		}
	case "number":
		if _, ok := v.(json.Number); !ok {
			*errs = append(*errs, fmt.Sprintf("%s: want number, got %T", path, v))
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			*errs = append(*errs, fmt.Sprintf("%s: want boolean, got %T", path, v))
		}
	}
}

// decodeJSON decodes with json.Number, as the validator wants.
func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestSpecValidatorCatchesMistakes keeps the validator honest.
func TestSpecValidatorCatchesMistakes(t *testing.T) {
	sp := loadSpec(t)
	bad := map[string]any{"id": "re_1", "object": "refund", "amount": json.Number("1.5"), "currency": "usd", "created": json.Number("1"),
		"status": "sideways", "misspelt": true}
	errs := strings.Join(sp.validate("refund", bad), "\n")
	for _, want := range []string{"refund.amount: want integer", "unknown property misspelt"} {
		if !strings.Contains(errs, want) {
			t.Errorf("validator missed %q; got:\n%s", want, errs)
		}
	}
	if errs := sp.validate("refund", map[string]any{"object": "refund"}); len(errs) == 0 {
		t.Error("validator accepted a refund without required fields")
	}
}
