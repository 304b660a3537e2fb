package paygate

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// The docs page's template, style and script (docs/site), inlined into one
// page: it loads nothing from elsewhere and works offline.
//
//go:embed docs/site
var docsSite embed.FS

// Test payment modes of the docs page.
const (
	docsModeSandbox = "sandbox" // StripeAPIBase is a Stripe-compatible stand-in (the sandbox)
	docsModeTest    = "test"    // Stripe's test mode (sk_test_/rk_test_)
	docsModeLive    = "live"    // a live key: never offered
	docsModeNone    = "none"    // no Stripe key
)

// SandboxConfirmPath is where a sandbox serves its stand-in for Stripe's
// Payment Element: the docs page's test payment opens
// <StripeAPIBase><SandboxConfirmPath>?client_secret=…&return_url=… to pay a
// PaymentIntent when StripeAPIBase is not Stripe's.
const SandboxConfirmPath = "/confirm"

// docsPage is what the page's template renders.
type docsPage struct {
	Lang         string // "th" or "en": the language shown first
	Origin       string // scheme://host of this request, for the examples
	Mode         string
	AuthRequired bool
	Currency     string
	StripeBase   string // the sandbox's base (docsModeSandbox)
	Version      string
	APIVersion   string
	Tags         []docsTag
	Errors       []docsError
	Actions      []string
	Events       []string
	Endpoints    int
	CallbackEx   string
	EnvelopeEx   string
	ErrorEx      string
	CSS          template.CSS
	JS           template.JS
}

type docsTag struct {
	ID, Name, NameTH string
	Ops              []docsOp
}

type docsOp struct {
	ID, Method, Path                        string
	Summary, SummaryTH, Description, DescTH string
	Public                                  bool
	Params                                  []docsField
	Body                                    []docsField
	BodyExample, Curl                       string
	Responses                               []docsResponse
}

type docsField struct {
	Name, In, Type, Description string
	Required                    bool
}

type docsResponse struct {
	Status, Description, Example string
}

type docsError struct {
	Type, Description, DescriptionTH string
	Status                           int
}

var (
	docsOnce sync.Once
	docsTmpl *template.Template
	docsBase docsPage // the parts that come from the OpenAPI document
	docsErr  error
)

// loadDocs parses the template and turns the OpenAPI document into the
// page's reference part, once.
func loadDocs() (*template.Template, docsPage, error) {
	docsOnce.Do(func() {
		var css, js, page []byte
		if page, docsErr = docsSite.ReadFile("docs/site/page.html"); docsErr != nil {
			return
		}
		if css, docsErr = docsSite.ReadFile("docs/site/page.css"); docsErr != nil {
			return
		}
		if js, docsErr = docsSite.ReadFile("docs/site/page.js"); docsErr != nil {
			return
		}
		docsTmpl, docsErr = template.New("page").Funcs(template.FuncMap{"lower": strings.ToLower}).Parse(string(page))
		if docsErr != nil {
			return
		}
		docsBase, docsErr = docsFromOpenAPI(openAPIDoc)
		docsBase.CSS, docsBase.JS = template.CSS(css), template.JS(js)
	})
	return docsTmpl, docsBase, docsErr
}

// handleDocs serves the docs page: the guide, the reference built from the
// OpenAPI document, and the test payment page, in Thai and English.
func (g *Gateway) handleDocs(w http.ResponseWriter, r *http.Request) {
	tmpl, base, err := loadDocs()
	if err != nil {
		g.writeError(w, r, &Error{Code: CodeInternal, Message: "internal error", Err: fmt.Errorf("docs page: %w", err)})
		return
	}
	p := base
	p.Lang = "th"
	if r.URL.Query().Get("lang") == "en" {
		p.Lang = "en"
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	p.Origin = scheme + "://" + r.Host
	p.Mode = g.docsMode()
	if p.Mode == docsModeSandbox {
		p.StripeBase = strings.TrimRight(g.cfg.StripeAPIBase, "/")
	}
	p.AuthRequired = g.cfg.Auth != nil
	p.Currency = g.cfg.DefaultCurrency
	p.Version = g.cfg.Version
	p.APIVersion = StripeAPIVersion
	p.Events = HandledEventTypes
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, p); err != nil {
		g.writeError(w, r, &Error{Code: CodeInternal, Message: "internal error", Err: fmt.Errorf("docs page: %w", err)})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// Everything is inline; Stripe.js may be loaded for a Payment Element in
	// Stripe's test mode only.
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline' https://js.stripe.com; style-src 'self' 'unsafe-inline'; frame-src https://js.stripe.com https://hooks.stripe.com; connect-src 'self' https://api.stripe.com; img-src 'self' data: https://*.stripe.com; base-uri 'none'; form-action 'self'")
	_, _ = w.Write(buf.Bytes())
}

// docsMode decides whether the test payment page may take a payment: on a
// Stripe stand-in (StripeAPIBase not Stripe's) or in Stripe's test mode, and
// never with a live key.
func (g *Gateway) docsMode() string {
	k := g.cfg.StripeSecretKey
	switch {
	case k == "":
		return docsModeNone
	case strings.HasPrefix(k, "sk_live_") || strings.HasPrefix(k, "rk_live_"):
		return docsModeLive
	}
	if b := g.cfg.StripeAPIBase; b != "" {
		if u, err := url.Parse(b); err == nil && u.Hostname() != "api.stripe.com" {
			return docsModeSandbox
		}
	}
	return docsModeTest
}

// openAPINode is a generic view of the OpenAPI document.
type openAPINode = map[string]any

func str(n openAPINode, k string) string { s, _ := n[k].(string); return s }
func list(n openAPINode, k string) []any { l, _ := n[k].([]any); return l }
func node(n openAPINode, k string) openAPINode {
	m, _ := n[k].(map[string]any)
	return m
}

// resolve follows a local $ref ("#/components/…").
func resolve(root, n openAPINode) openAPINode {
	for i := 0; i < 8 && n != nil; i++ {
		ref := str(n, "$ref")
		if ref == "" {
			return n
		}
		cur := root
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			cur = node(cur, part)
		}
		n = cur
	}
	return n
}

func schemaType(root, s openAPINode) string {
	s = resolve(root, s)
	switch t := s["type"].(type) {
	case string:
		if t == "array" {
			return schemaType(root, node(s, "items")) + "[]"
		}
		return t
	case []any:
		var parts []string
		for _, p := range t {
			parts = append(parts, fmt.Sprint(p))
		}
		return strings.Join(parts, " | ")
	}
	if c, ok := s["const"]; ok {
		return fmt.Sprint(c)
	}
	return "any"
}

func schemaDescription(root, s openAPINode) string {
	r := resolve(root, s)
	d := str(s, "description")
	if d == "" {
		d = str(r, "description")
	}
	if enum := list(r, "enum"); len(enum) > 0 {
		var vals []string
		for _, v := range enum {
			if v != "" {
				vals = append(vals, fmt.Sprint(v))
			}
		}
		if d != "" {
			d += " "
		}
		d += "(" + strings.Join(vals, " · ") + ")"
	}
	return d
}

// docsFromOpenAPI builds the page's reference from the OpenAPI document:
// every operation grouped by tag, with its parameters, body, examples and
// responses, and the error types.
func docsFromOpenAPI(raw []byte) (docsPage, error) {
	var root openAPINode
	if err := json.Unmarshal(raw, &root); err != nil {
		return docsPage{}, fmt.Errorf("openapi.json: %w", err)
	}
	var p docsPage
	byTag := map[string]*docsTag{}
	for _, t := range list(root, "tags") {
		tn, _ := t.(map[string]any)
		p.Tags = append(p.Tags, docsTag{ID: "tag-" + slug(str(tn, "name")), Name: str(tn, "name"), NameTH: str(tn, "x-name-th")})
	}
	for i := range p.Tags {
		byTag[p.Tags[i].Name] = &p.Tags[i]
	}
	paths := node(root, "paths")
	var keys []string
	for k := range paths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, path := range keys {
		item := node(paths, path)
		for _, method := range []string{"get", "post", "put", "patch", "delete"} {
			o := node(item, method)
			if o == nil {
				continue
			}
			op := docsOp{ID: "op-" + str(o, "operationId"), Method: strings.ToUpper(method), Path: path,
				Summary: str(o, "summary"), SummaryTH: str(o, "x-summary-th"), Description: str(o, "description"), DescTH: str(o, "x-description-th")}
			if sec, ok := o["security"].([]any); ok && len(sec) == 0 {
				op.Public = true
			}
			for _, pr := range list(o, "parameters") {
				pm, _ := pr.(map[string]any)
				pn := resolve(root, pm)
				req, _ := pn["required"].(bool)
				op.Params = append(op.Params, docsField{Name: str(pn, "name"), In: str(pn, "in"), Type: schemaType(root, node(pn, "schema")),
					Description: strings.TrimSpace(str(pn, "description") + " " + enumOf(root, node(pn, "schema"))), Required: req})
			}
			if rb := node(o, "requestBody"); rb != nil {
				media := node(node(rb, "content"), "application/json")
				schema := resolve(root, node(media, "schema"))
				required := map[string]bool{}
				for _, n := range list(schema, "required") {
					name, _ := n.(string)
					required[name] = true
				}
				props := node(schema, "properties")
				bodyAt := []string{"paths", path, method, "requestBody", "content", "application/json"}
				names := objectKeys(rawAt(raw, append(bodyAt, "schema", "properties")...))
				if len(names) != len(props) { // a $ref'd schema: no document order to keep
					names = names[:0]
					for k := range props {
						names = append(names, k)
					}
					sort.Strings(names)
				}
				for _, name := range names {
					ps := node(props, name)
					op.Body = append(op.Body, docsField{Name: name, Type: schemaType(root, ps), Description: schemaDescription(root, ps), Required: required[name]})
				}
				op.BodyExample = prettyRaw(rawAt(raw, append(bodyAt, "example")...))
			}
			rs := node(o, "responses")
			var codes []string
			for c := range rs {
				codes = append(codes, c)
			}
			sort.Strings(codes)
			for _, c := range codes {
				rn := resolve(root, node(rs, c))
				dr := docsResponse{Status: c, Description: str(rn, "description")}
				if c < "300" {
					for media := range node(rn, "content") {
						dr.Example = prettyRaw(rawAt(raw, "paths", path, method, "responses", c, "content", media, "example"))
					}
				}
				op.Responses = append(op.Responses, dr)
			}
			op.Curl = curlFor(op)
			var tag string
			if tags := list(o, "tags"); len(tags) > 0 {
				tag, _ = tags[0].(string)
			}
			t := byTag[tag]
			if t == nil {
				return docsPage{}, fmt.Errorf("openapi.json: %s %s has no known tag", method, path)
			}
			t.Ops = append(t.Ops, op)
			p.Endpoints++
		}
	}
	et := resolve(root, node(node(node(root, "components"), "schemas"), "ErrorType"))
	statuses, descs, descsTH := node(et, "x-http-status"), node(et, "x-descriptions"), node(et, "x-descriptions-th")
	for _, t := range list(et, "enum") {
		name, _ := t.(string)
		st, _ := statuses[name].(float64)
		d, _ := descs[name].(string)
		dth, _ := descsTH[name].(string)
		p.Errors = append(p.Errors, docsError{Type: name, Status: int(st), Description: d, DescriptionTH: dth})
	}
	p.CallbackEx = prettyRaw(rawAt(raw, "components", "schemas", "CallbackPayload", "example"))
	p.ErrorEx = prettyRaw(rawAt(raw, "components", "schemas", "ErrorEnvelope", "example"))
	p.EnvelopeEx = prettyRaw(json.RawMessage(`{"status": true, "code": 200, "message": "OK", "data": {}}`))
	action := resolve(root, node(node(node(node(node(root, "components"), "schemas"), "CallbackPayload"), "properties"), "action"))
	for _, a := range list(action, "enum") {
		p.Actions = append(p.Actions, fmt.Sprint(a))
	}
	if p.Endpoints == 0 || len(p.Errors) == 0 || len(p.Actions) == 0 || p.CallbackEx == "" || p.ErrorEx == "" {
		return docsPage{}, fmt.Errorf("openapi.json: no operations, error types or callback actions")
	}
	return p, nil
}

func enumOf(root, s openAPINode) string {
	r := resolve(root, s)
	enum := list(r, "enum")
	if len(enum) == 0 {
		return ""
	}
	var vals []string
	for _, v := range enum {
		vals = append(vals, fmt.Sprint(v))
	}
	return "(" + strings.Join(vals, " · ") + ")"
}

// rawAt returns the raw JSON at a path of object keys in raw, or nil.
// Unlike a decoded map, it keeps the document's key order.
func rawAt(raw []byte, path ...string) json.RawMessage {
	cur := json.RawMessage(raw)
	for _, k := range path {
		var m map[string]json.RawMessage
		if json.Unmarshal(cur, &m) != nil {
			return nil
		}
		if cur = m[k]; cur == nil {
			return nil
		}
	}
	return cur
}

// objectKeys returns the keys of a raw JSON object in the document's order.
func objectKeys(obj json.RawMessage) []string {
	var keys []string
	dec := json.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return keys
		}
		k, _ := tok.(string)
		keys = append(keys, k)
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return keys
		}
	}
	return keys
}

// prettyRaw indents raw JSON, keeping its key order; "" for none.
func prettyRaw(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var buf bytes.Buffer
	if json.Indent(&buf, raw, "", "  ") != nil {
		return ""
	}
	return buf.String()
}

func curlFor(op docsOp) string {
	path := strings.ReplaceAll(op.Path, "{id}", "ID")
	var b strings.Builder
	b.WriteString("curl")
	if op.Method != "GET" {
		b.WriteString(" -X " + op.Method)
	}
	b.WriteString(" \"$BASE" + path + "\"")
	if !op.Public {
		b.WriteString(" \\\n  -H \"Authorization: Bearer $API_KEY\"")
	}
	if op.BodyExample != "" {
		var compact bytes.Buffer
		_ = json.Compact(&compact, []byte(op.BodyExample))
		b.WriteString(" \\\n  -H \"Content-Type: application/json\"")
		if op.Method == "POST" && op.Path != WebhookPath {
			b.WriteString(" \\\n  -H \"Idempotency-Key: $(uuidgen)\"")
		}
		b.WriteString(" \\\n  -d '" + compact.String() + "'")
	}
	return b.String()
}

func slug(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}
