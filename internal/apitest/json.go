package apitest

import (
	"bytes"
	"encoding/json"
)

// jsonDecode decodes as kin-openapi expects: numbers as float64.
func jsonDecode(b []byte, v any) error {
	return json.NewDecoder(bytes.NewReader(b)).Decode(v)
}
