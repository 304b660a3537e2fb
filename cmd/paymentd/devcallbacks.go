package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/numedapp/paygate/callback/verify"
)

// devReceiver is the merchant's side inside `paymentd dev`: it verifies each
// signed callback with the merchant kit (callback/verify), as a merchant's
// own receiver would, keeps the latest ones and shows them on a page.
type devReceiver struct {
	secret string
	srv    *http.Server
	url    string

	mu       sync.Mutex
	received []devCallback
}

type devCallback struct {
	At        time.Time
	WebhookID string
	Verified  string // "" when the signature verified, else why not
	Action    string
	PaymentID string
	Sequence  int64
	Body      string
}

const devReceiverKeep = 200

// startDevReceiver listens on a loopback port of its own.
func startDevReceiver() (*devReceiver, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	r := &devReceiver{secret: "whsec_" + base64.StdEncoding.EncodeToString(key)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /callbacks", r.receive)
	mux.HandleFunc("GET /{$}", r.page)
	mux.HandleFunc("GET /callbacks.json", r.list)
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	r.url = "http://" + ln.Addr().String()
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *devReceiver) close() { _ = r.srv.Close() }

func (r *devReceiver) receive(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 1<<20))
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	c := devCallback{At: time.Now().UTC(), WebhookID: req.Header.Get("webhook-id")}
	p, err := verify.Parse(r.secret, req.Header, body)
	if err != nil {
		c.Verified = err.Error()
	} else {
		c.Action, c.PaymentID, c.Sequence = p.Action, p.PaymentID, p.Sequence
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, body, "", "  ") == nil {
		c.Body = pretty.String()
	} else {
		c.Body = string(body)
	}
	r.mu.Lock()
	r.received = append(r.received, c)
	if len(r.received) > devReceiverKeep {
		r.received = r.received[len(r.received)-devReceiverKeep:]
	}
	r.mu.Unlock()
	if err != nil {
		http.Error(w, "signature: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// latest returns the callbacks received, newest first.
func (r *devReceiver) latest() []devCallback {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]devCallback, len(r.received))
	for i, c := range r.received {
		out[len(out)-1-i] = c
	}
	return out
}

func (r *devReceiver) list(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(r.latest())
}

// devPage is parsed on first use: a paymentd that never serves it pays nothing
// for it (heap, and the template packages' pages in memory).
var devPage = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("callbacks").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="3"><title>Callbacks received — paymentd dev</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2433;background:#f6f7f9}
header{background:#5b3cc4;color:#fff;padding:12px 20px}header small{opacity:.85}
main{max-width:980px;margin:0 auto;padding:16px 20px}
.cb{background:#fff;border:1px solid #dde1e8;border-radius:8px;margin:12px 0;padding:10px 14px}
.ok{color:#11734b;font-weight:600}.bad{color:#b3261e;font-weight:600}
code,pre{font:13px ui-monospace,monospace}pre{background:#f1f3f6;padding:8px;border-radius:6px;overflow:auto;max-height:18em}
summary{cursor:pointer}
</style></head><body>
<header><strong>Callbacks received</strong> <small>— paymentd dev: the merchant's side, verified with callback/verify; refreshes every 3 s</small></header>
<main>
{{if not .}}<p>None yet. Pay a payment (the docs page's <em>Test payment</em>, or a payment link) and its callbacks appear here.</p>{{end}}
{{range .}}<div class="cb">
<div>{{if .Verified}}<span class="bad">✘ {{.Verified}}</span>{{else}}<span class="ok">✔ verified</span>{{end}}
 <code>{{.Action}}</code> · payment <code>{{.PaymentID}}</code> · sequence {{.Sequence}} · <small>{{.At.Format "15:04:05"}} · webhook-id <code>{{.WebhookID}}</code></small></div>
<details><summary>payload</summary><pre>{{.Body}}</pre></details>
</div>{{end}}
</main></body></html>`))
})

func (r *devReceiver) page(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = devPage().Execute(w, r.latest())
}
