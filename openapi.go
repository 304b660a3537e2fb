package paygate

import (
	"bytes"
	_ "embed"
	"net/http"
	"strconv"
)

// openAPIDoc is the contract of Handler's HTTP API (docs/openapi.json).
//
//go:embed docs/openapi.json
var openAPIDoc []byte

// OpenAPI returns the OpenAPI 3.1 document (JSON) of the HTTP API that
// Handler serves: every route, parameter, body, response and error, and the
// callbacks sent to the merchant (under webhooks). Handler serves it at
// GET /api/openapi.json.
func OpenAPI() []byte { return bytes.Clone(openAPIDoc) }

// handleOpenAPI serves the document itself, not in the envelope, so that
// OpenAPI tools can read it.
func (g *Gateway) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(openAPIDoc)))
	h.Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openAPIDoc)
}
