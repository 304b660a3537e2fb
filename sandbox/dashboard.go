package sandbox

import (
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// The Dashboard page: what a person running `paymentd dev` needs to do the
// things Stripe's Dashboard does (refund, dispute, settle a bank debit,
// fail a refund), move the clock and flush webhooks, without writing code.

// dashTmpl is parsed on first use: a paymentd that never serves it pays nothing
// for it (heap, and the template packages' pages in memory).
var dashTmpl = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("dash").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Dashboard · paygate sandbox</title><style>` + pageCSS + `
main{max-width:72rem}table{border-collapse:collapse;width:100%;font-size:.9rem}
td,th{border-bottom:1px solid #d0d7de;padding:.35rem;text-align:left;vertical-align:top}
form.inline{display:inline}form.inline button{display:inline;width:auto;margin:.1rem;padding:.2rem .5rem;font-size:.85rem}</style></head>
<body><div class="banner" id="sandbox-banner">SANDBOX: paygate's Stripe stand-in. No real money moves.</div>
<main>
<h1>Dashboard</h1>
<p class="muted">Sandbox clock: {{.Now}} · webhook: {{if .Webhook}}{{.Webhook}}{{else}}not set{{end}} · {{.Queued}} deliveries queued</p>
{{with .Error}}<div class="error" id="error">{{.}}</div>{{end}}
<form class="inline" method="post" action="{{.Action}}"><input type="hidden" name="action" value="deliver"><button id="deliver">Deliver webhooks now</button></form>
<form class="inline" method="post" action="{{.Action}}"><input type="hidden" name="action" value="advance"><input type="hidden" name="seconds" value="3600"><button id="advance-hour">Advance 1 hour</button></form>
<form class="inline" method="post" action="{{.Action}}"><input type="hidden" name="action" value="advance"><input type="hidden" name="seconds" value="86400"><button id="advance-day">Advance 1 day</button></form>
<h2>Payments</h2>
<table><tr><th>PaymentIntent</th><th>paygate id</th><th>Amount</th><th>Status</th><th>Refunded</th><th></th></tr>
{{range .Intents}}<tr><td><code>{{.ID}}</code></td><td><code>{{.PaymentID}}</code></td><td>{{.Amount}}</td><td>{{.Status}}</td><td>{{.Refunded}}</td><td>
{{if eq .Status "succeeded"}}{{if not .Disputed}}<form class="inline" method="post" action="{{$.Action}}"><input type="hidden" name="action" value="refund"><input type="hidden" name="id" value="{{.ID}}"><button id="refund-{{.ID}}">Refund all</button></form>
<form class="inline" method="post" action="{{$.Action}}"><input type="hidden" name="action" value="dispute"><input type="hidden" name="id" value="{{.ID}}"><button id="dispute-{{.ID}}">Dispute</button></form>{{end}}{{end}}
{{if eq .Status "processing"}}<form class="inline" method="post" action="{{$.Action}}"><input type="hidden" name="action" value="settle"><input type="hidden" name="id" value="{{.ID}}"><button id="settle-{{.ID}}">Settle</button></form>
<form class="inline" method="post" action="{{$.Action}}"><input type="hidden" name="action" value="fail-debit"><input type="hidden" name="id" value="{{.ID}}"><button id="fail-debit-{{.ID}}">Fail debit</button></form>{{end}}
</td></tr>{{else}}<tr><td colspan="6" class="muted">No PaymentIntents yet.</td></tr>{{end}}</table>
<h2>Refunds</h2>
<table><tr><th>Refund</th><th>PaymentIntent</th><th>Amount</th><th>Status</th><th></th></tr>
{{range .Refunds}}<tr><td><code>{{.ID}}</code></td><td><code>{{.PaymentIntent}}</code></td><td>{{.Amount}}</td><td>{{.Status}}</td><td>
{{if eq .Status "pending"}}<form class="inline" method="post" action="{{$.Action}}"><input type="hidden" name="action" value="succeed-refund"><input type="hidden" name="id" value="{{.ID}}"><button>Succeed</button></form>{{end}}
{{if or (eq .Status "pending") (eq .Status "succeeded")}}<form class="inline" method="post" action="{{$.Action}}"><input type="hidden" name="action" value="fail-refund"><input type="hidden" name="id" value="{{.ID}}"><button id="fail-refund-{{.ID}}">Fail</button></form>{{end}}
</td></tr>{{else}}<tr><td colspan="5" class="muted">No refunds yet.</td></tr>{{end}}</table>
<h2>Disputes</h2>
<table><tr><th>Dispute</th><th>PaymentIntent</th><th>Amount</th><th>Reason</th><th>Status</th><th></th></tr>
{{range .Disputes}}<tr><td><code>{{.ID}}</code></td><td><code>{{.PaymentIntent}}</code></td><td>{{.Amount}}</td><td>{{.Reason}}</td><td>{{.Status}}</td><td>
{{if and (ne .Status "won") (ne .Status "lost")}}<form class="inline" method="post" action="{{$.Action}}"><input type="hidden" name="action" value="evidence"><input type="hidden" name="id" value="{{.ID}}"><button>Submit evidence</button></form>
<form class="inline" method="post" action="{{$.Action}}"><input type="hidden" name="action" value="win"><input type="hidden" name="id" value="{{.ID}}"><button id="win-{{.ID}}">Win</button></form>
<form class="inline" method="post" action="{{$.Action}}"><input type="hidden" name="action" value="lose"><input type="hidden" name="id" value="{{.ID}}"><button id="lose-{{.ID}}">Lose</button></form>{{end}}
</td></tr>{{else}}<tr><td colspan="6" class="muted">No disputes yet.</td></tr>{{end}}</table>
</main></body></html>`))
})

type dashRow struct {
	ID, PaymentID, PaymentIntent, Amount, Status, Refunded, Reason string
	Disputed                                                       bool
}

func (s *Sandbox) pageDashboard(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.tick()
	d := struct {
		Now, Webhook, Action, Error string
		Queued                      int
		Intents, Refunds, Disputes  []dashRow
	}{Now: s.now().UTC().Format(time.RFC3339), Webhook: s.whURL, Action: s.local("/_sandbox/dashboard"),
		Queued: len(s.queue), Error: r.URL.Query().Get("error")}
	for _, id := range s.sortedIDs("payment_intent") {
		pi := s.objs[id]
		row := dashRow{ID: id, PaymentID: paymentIDOf(pi["metadata"]), Amount: money(toInt(pi["amount"]), str(pi["currency"])), Status: str(pi["status"])}
		if ch := s.objs[str(pi["latest_charge"])]; ch != nil {
			row.Refunded = money(toInt(ch["amount_refunded"]), str(ch["currency"]))
			row.Disputed = ch["disputed"] == true
		}
		d.Intents = append(d.Intents, row)
	}
	for _, id := range s.sortedIDs("refund") {
		re := s.objs[id]
		d.Refunds = append(d.Refunds, dashRow{ID: id, PaymentIntent: str(re["payment_intent"]), Amount: money(toInt(re["amount"]), str(re["currency"])), Status: str(re["status"])})
	}
	for _, id := range s.sortedIDs("dispute") {
		dp := s.objs[id]
		d.Disputes = append(d.Disputes, dashRow{ID: id, PaymentIntent: str(dp["payment_intent"]), Amount: money(toInt(dp["amount"]), str(dp["currency"])), Status: str(dp["status"]), Reason: str(dp["reason"])})
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = dashTmpl().Execute(w, d)
}

func (s *Sandbox) pageDashboardPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	id := r.PostForm.Get("id")
	var err error
	switch a := r.PostForm.Get("action"); a {
	case "deliver":
		s.DeliverAll()
	case "advance":
		secs, _ := strconv.Atoi(r.PostForm.Get("seconds"))
		s.Advance(time.Duration(secs) * time.Second)
	case "refund":
		_, err = s.Refund(id, 0, "requested_by_customer")
	case "dispute":
		_, err = s.Dispute(id, "fraudulent")
	case "settle":
		err = s.Settle(id, true)
	case "fail-debit":
		err = s.Settle(id, false)
	case "succeed-refund":
		err = s.SucceedRefund(id)
	case "fail-refund":
		err = s.FailRefund(id, "")
	case "evidence":
		err = s.UpdateDispute(id, "Evidence submitted from the sandbox Dashboard.")
	case "win", "lose":
		err = s.CloseDispute(id, a == "win")
	default:
		err = fmt.Errorf("unknown action %q", a)
	}
	s.mu.Lock()
	target := s.local("/_sandbox/dashboard")
	s.mu.Unlock()
	if err != nil {
		target += "?error=" + template.URLQueryEscaper(err.Error())
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}
