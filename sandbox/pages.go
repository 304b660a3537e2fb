package sandbox

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// pageRoutes adds the hosted pages a person (or a browser test) uses.
func (s *Sandbox) pageRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", s.pageIndex)
	mux.HandleFunc("GET /pay/{id}", s.pageLink)
	mux.HandleFunc("GET /checkout/{id}", s.pageCheckout)
	mux.HandleFunc("POST /checkout/{id}", s.pageCheckoutPay)
	mux.HandleFunc("GET /checkout/{id}/cancel", s.pageCheckoutCancel)
	mux.HandleFunc("GET /checkout/{id}/return", s.pageCheckoutReturn)
	mux.HandleFunc("GET /checkout/{id}/done", s.pageCheckoutDone)
	mux.HandleFunc("GET /authenticate/{id}", s.pageAuth)
	mux.HandleFunc("POST /authenticate/{id}", s.pageAuthPost)
	mux.HandleFunc("GET /confirm", s.pageConfirm)
	mux.HandleFunc("POST /confirm", s.pageConfirmPost)
	mux.HandleFunc("GET /receipts/{id}", s.pageReceipt)
	mux.HandleFunc("GET /sandbox.js", s.script)
	mux.HandleFunc("GET /_sandbox/dashboard", s.pageDashboard)
	mux.HandleFunc("POST /_sandbox/dashboard", s.pageDashboardPost)
}

const pageCSS = `body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f8fa;color:#1f2328}
.banner{background:#ffd33d;color:#3b2e00;padding:.5rem 1rem;font-weight:600;text-align:center}
main{max-width:32rem;margin:2rem auto;background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:1.5rem}
h1{font-size:1.3rem;margin:0 0 .25rem}.amount{font-size:2rem;font-weight:700;margin:.5rem 0 1rem}
.muted{color:#656d76;font-size:.9rem}.error{background:#ffebe9;border:1px solid #ff8182;padding:.6rem;border-radius:6px;margin:1rem 0}
.ok{background:#dafbe1;border:1px solid #4ac26b;padding:.6rem;border-radius:6px;margin:1rem 0}
button{display:block;width:100%;margin:.35rem 0;padding:.6rem;border:1px solid #d0d7de;border-radius:6px;background:#f6f8fa;cursor:pointer;font-size:1rem;text-align:left}
button.primary{background:#1f883d;color:#fff;border-color:#1a7f37;text-align:center}
input[type=text]{width:100%;box-sizing:border-box;padding:.6rem;font-size:1rem;border:1px solid #d0d7de;border-radius:6px}
fieldset{border:1px solid #d0d7de;border-radius:6px;margin:1rem 0}code{font-size:.85rem}`

// pageTmpl is parsed on first use: a paymentd that never serves it pays nothing
// for it (heap, and the template packages' pages in memory).
var pageTmpl = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Title}} · paygate sandbox</title><style>` + pageCSS + `</style></head>
<body><div class="banner" id="sandbox-banner">SANDBOX: paygate's Stripe stand-in. No real money moves.</div>
<main>
<h1>{{.Title}}</h1>
{{with .Product}}<div class="muted">{{.}}</div>{{end}}
{{with .Amount}}<div class="amount" id="amount">{{.}}</div>{{end}}
{{with .Error}}<div class="error" id="error">{{.}}</div>{{end}}
{{with .Message}}<div class="ok" id="message">{{.}}</div>{{end}}
{{if .Action}}
{{if .CardField}}<form method="post" action="{{.Action}}"{{if .Top}} target="_top"{{end}}>
{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
<fieldset><legend>Card number</legend>
<input type="text" name="card_number" id="card-number" inputmode="numeric" autocomplete="off" placeholder="4242 4242 4242 4242">
<button type="submit" class="primary" id="pay">Pay</button></fieldset>
</form>
<p class="muted">Or pick a test payment method:</p>{{end}}
<form method="post" action="{{.Action}}"{{if .Top}} target="_top"{{end}}>
{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
{{range .Buttons}}<button type="submit" name="{{.Name}}" value="{{.Value}}" id="{{.ID}}"{{if .Primary}} class="primary"{{end}}>{{.Label}}</button>
{{end}}
</form>
{{end}}
{{with .Cancel}}<p><a href="{{.}}" id="cancel">Cancel and go back</a></p>{{end}}
<p class="muted">{{.Footer}}</p>
</main></body></html>`))
})

type pageButton struct {
	Name, Value, ID, Label string
	Primary                bool
}

type pageData struct {
	Title, Product, Amount, Error, Message, Action, Cancel, Footer string
	Hidden                                                         map[string]string
	Buttons                                                        []pageButton
	CardField, Top                                                 bool
}

func (s *Sandbox) render(w http.ResponseWriter, status int, d pageData) {
	if d.Footer == "" {
		d.Footer = "Test payment methods only. This page is served by the paygate sandbox, not by Stripe."
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = pageTmpl().Execute(w, d)
}

// cardButtons are the payment method buttons every payment page shows.
func cardButtons() []pageButton {
	out := make([]pageButton, 0, len(Cards))
	for _, c := range Cards {
		id := "card-" + c.Number
		label := c.Label + " · " + c.Number
		if c.BankDebit {
			id = "bank-debit"
			if c.DebitFails {
				id = "bank-debit-fail"
			}
			label = c.Label + " (us_bank_account " + c.Number + ")"
		}
		out = append(out, pageButton{Name: "payment_method", Value: c.Number, ID: id, Label: label})
	}
	return out
}

// zeroDecimal are the currencies without minor units at Stripe.
var zeroDecimal = map[string]bool{"bif": true, "clp": true, "djf": true, "gnf": true, "jpy": true, "kmf": true, "krw": true,
	"mga": true, "pyg": true, "rwf": true, "ugx": true, "vnd": true, "vuv": true, "xaf": true, "xof": true, "xpf": true}

// money formats minor units as "12.34 USD".
func money(amount int64, cur string) string {
	if zeroDecimal[cur] {
		return fmt.Sprintf("%d %s", amount, strings.ToUpper(cur))
	}
	sign := ""
	if amount < 0 {
		sign, amount = "-", -amount
	}
	return fmt.Sprintf("%s%d.%02d %s", sign, amount/100, amount%100, strings.ToUpper(cur))
}

func (s *Sandbox) pageIndex(w http.ResponseWriter, r *http.Request) {
	s.render(w, 200, pageData{Title: "paygate sandbox",
		Message: "The Stripe API is under /v1/, payment links open under /pay/{id}, Checkout Sessions under /checkout/{id}, PaymentIntents confirm under /confirm?client_secret=..., the Dashboard is /_sandbox/dashboard, and the control API is under /_sandbox/."})
}

func (s *Sandbox) pageLink(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.tick()
	link := s.get("payment_link", r.PathValue("id"))
	if link == nil {
		s.mu.Unlock()
		s.render(w, 404, pageData{Title: "Payment link not found", Error: "No such payment link: " + r.PathValue("id")})
		return
	}
	cs, ae := s.visitLink(link)
	target := ""
	if ae == nil {
		target = s.local("/checkout/") + cs["id"].(string)
	}
	s.mu.Unlock()
	if ae != nil {
		s.render(w, 410, pageData{Title: "This link is no longer active", Error: ae.Message})
		return
	}
	s.wake()
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// sessionSummary is what a checkout page shows of a session. Callers hold mu.
func (s *Sandbox) sessionSummary(cs obj) (product, amount string) {
	items, _ := cs["_line_items"].([]obj)
	var names []string
	for _, it := range items {
		n := str(it["description"])
		if q := toInt(it["quantity"]); q > 1 {
			n = fmt.Sprintf("%s × %d", n, q)
		}
		names = append(names, n)
	}
	return strings.Join(names, ", "), money(toInt(cs["amount_total"]), str(cs["currency"]))
}

func (s *Sandbox) checkoutPage(w http.ResponseWriter, cs obj, status int, errMsg string) {
	product, amount := s.sessionSummary(cs)
	d := pageData{Title: "Pay", Product: product, Amount: amount, Error: errMsg}
	switch cs["status"] {
	case "open":
		d.Action = s.local("/checkout/") + str(cs["id"])
		d.Buttons = cardButtons()
		d.CardField = true
		if cs["cancel_url"] != nil {
			d.Cancel = s.local("/checkout/") + str(cs["id"]) + "/cancel"
		}
	case "complete":
		d.Message = "This Checkout Session is complete."
	case "expired":
		d.Title, d.Error = "This Checkout Session has expired", "Start again from the merchant's site."
	}
	s.render(w, status, d)
}

func (s *Sandbox) pageCheckout(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick()
	cs := s.get("checkout.session", r.PathValue("id"))
	if cs == nil {
		s.render(w, 404, pageData{Title: "Checkout Session not found", Error: "No such Checkout Session."})
		return
	}
	s.checkoutPage(w, cs, 200, r.URL.Query().Get("error"))
}

// successURL is where a completed session sends the customer. Callers hold mu.
func (s *Sandbox) successURL(cs obj) string {
	u := str(cs["success_url"])
	if u == "" {
		return s.local("/checkout/") + str(cs["id"]) + "/done"
	}
	return strings.ReplaceAll(u, "{CHECKOUT_SESSION_ID}", str(cs["id"]))
}

func (s *Sandbox) pageCheckoutPay(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", 400)
		return
	}
	pm := r.PostForm.Get("payment_method")
	if pm == "" {
		pm = r.PostForm.Get("card_number")
	}
	s.mu.Lock()
	s.tick()
	cs := s.get("checkout.session", r.PathValue("id"))
	if cs == nil {
		s.mu.Unlock()
		s.render(w, 404, pageData{Title: "Checkout Session not found", Error: "No such Checkout Session."})
		return
	}
	ae := s.paySession(cs, pm)
	var target string
	if ae == nil {
		pi := s.get("payment_intent", str(cs["payment_intent"]))
		switch {
		case pi != nil && pi["status"] == "requires_action":
			target = s.local("/authenticate/") + str(pi["id"]) + "?next=" + url.QueryEscape(s.local("/checkout/")+str(cs["id"])+"/return")
		case cs["status"] == "complete":
			target = s.successURL(cs)
		}
	}
	if target == "" && ae == nil {
		ae = &Error{Message: "The payment did not complete."}
	}
	if ae != nil {
		s.checkoutPage(w, cs, 200, ae.Message)
		s.mu.Unlock()
		s.wake()
		return
	}
	s.mu.Unlock()
	s.wake()
	http.Redirect(w, r, target, http.StatusSeeOther)
}

func (s *Sandbox) pageCheckoutReturn(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.get("checkout.session", r.PathValue("id"))
	if cs == nil {
		s.render(w, 404, pageData{Title: "Checkout Session not found", Error: "No such Checkout Session."})
		return
	}
	if cs["status"] == "complete" {
		http.Redirect(w, r, s.successURL(cs), http.StatusSeeOther)
		return
	}
	msg := ""
	if pi := s.get("payment_intent", str(cs["payment_intent"])); pi != nil {
		if e, ok := pi["last_payment_error"].(obj); ok {
			msg = str(e["message"])
		}
	}
	s.checkoutPage(w, cs, 200, msg)
}

func (s *Sandbox) pageCheckoutCancel(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.get("checkout.session", r.PathValue("id"))
	if cs == nil || cs["cancel_url"] == nil {
		s.render(w, 404, pageData{Title: "Nothing to go back to", Error: "This Checkout Session has no cancel_url."})
		return
	}
	http.Redirect(w, r, str(cs["cancel_url"]), http.StatusSeeOther)
}

func (s *Sandbox) pageCheckoutDone(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.get("checkout.session", r.PathValue("id"))
	if cs == nil {
		s.render(w, 404, pageData{Title: "Checkout Session not found", Error: "No such Checkout Session."})
		return
	}
	product, amount := s.sessionSummary(cs)
	d := pageData{Title: "Thanks for your payment", Product: product, Amount: amount}
	switch {
	case cs["status"] == "complete" && cs["payment_status"] == "paid":
		d.Message = "Paid."
	case cs["status"] == "complete":
		d.Message = "Your payment is processing. You will be told when it settles."
	default:
		d.Title, d.Error = "Not paid", "This Checkout Session is "+str(cs["status"])+"."
	}
	s.render(w, 200, d)
}

func (s *Sandbox) pageAuth(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pi := s.get("payment_intent", r.PathValue("id"))
	if pi == nil {
		s.render(w, 404, pageData{Title: "Payment not found", Error: "No such PaymentIntent."})
		return
	}
	d := pageData{Title: "3D Secure authentication", Amount: money(toInt(pi["amount"]), str(pi["currency"])),
		Hidden: map[string]string{"next": r.URL.Query().Get("next")}}
	if pi["status"] == "requires_action" {
		d.Action = s.local("/authenticate/") + str(pi["id"])
		d.Buttons = []pageButton{
			{Name: "action", Value: "complete", ID: "complete", Label: "Complete authentication", Primary: true},
			{Name: "action", Value: "fail", ID: "fail", Label: "Fail authentication"},
		}
	} else {
		d.Message = "This payment is " + str(pi["status"]) + "; nothing to authenticate."
	}
	s.render(w, 200, d)
}

func (s *Sandbox) pageAuthPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", 400)
		return
	}
	s.mu.Lock()
	pi := s.get("payment_intent", r.PathValue("id"))
	if pi == nil {
		s.mu.Unlock()
		s.render(w, 404, pageData{Title: "Payment not found", Error: "No such PaymentIntent."})
		return
	}
	ok := r.PostForm.Get("action") == "complete"
	ae := s.authenticate(pi, ok)
	next := r.PostForm.Get("next")
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		next = ""
		if ret := str(pi["_return_url"]); ret != "" {
			next = returnWith(ret, pi)
		}
	}
	status := str(pi["status"])
	s.mu.Unlock()
	s.wake()
	if ae != nil {
		s.render(w, 409, pageData{Title: "3D Secure authentication", Error: ae.Message})
		return
	}
	if next != "" {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	s.render(w, 200, pageData{Title: "Authentication finished", Message: "The payment is " + status + "."})
}

// local is a path on the sandbox, under the path of its base URL (when
// Handler is mounted under a prefix). Callers hold mu.
func (s *Sandbox) local(p string) string {
	if u, err := url.Parse(s.baseURL); err == nil && u.Path != "" && u.Path != "/" {
		return strings.TrimRight(u.Path, "/") + p
	}
	return p
}

// returnWith adds Stripe's redirect parameters to a return_url:
// payment_intent, payment_intent_client_secret and redirect_status
// (succeeded, pending while processing, or failed). As with Stripe, the
// merchant should read the PaymentIntent rather than trust redirect_status.
func returnWith(ret string, pi obj) string {
	u, err := url.Parse(ret)
	if err != nil {
		return ret
	}
	q := u.Query()
	q.Set("payment_intent", str(pi["id"]))
	q.Set("payment_intent_client_secret", str(pi["client_secret"]))
	rs := "failed"
	switch pi["status"] {
	case "succeeded":
		rs = "succeeded"
	case "processing":
		rs = "pending"
	}
	q.Set("redirect_status", rs)
	u.RawQuery = q.Encode()
	return u.String()
}

// intentBySecret finds a PaymentIntent by its client secret. Callers hold mu.
func (s *Sandbox) intentBySecret(secret string) obj {
	id, _, ok := strings.Cut(secret, "_secret_")
	if !ok {
		return nil
	}
	pi := s.get("payment_intent", id)
	if pi == nil || pi["client_secret"] != secret {
		return nil
	}
	return pi
}

func (s *Sandbox) confirmPage(w http.ResponseWriter, pi obj, secret, ret string, top bool, errMsg string) {
	d := pageData{Title: "Pay", Amount: money(toInt(pi["amount"]), str(pi["currency"])), Product: str(pi["description"]),
		Error: errMsg, Top: top}
	switch pi["status"] {
	case "requires_payment_method", "requires_confirmation", "requires_action":
		d.Action = s.local("/confirm")
		d.Hidden = map[string]string{"client_secret": secret, "return_url": ret}
		if top {
			d.Hidden["embed"] = "1"
		}
		d.Buttons = cardButtons()
		d.CardField = true
	case "succeeded":
		d.Message = "Paid."
	case "processing":
		d.Message = "Your payment is processing."
	default:
		d.Error = "This payment is " + str(pi["status"]) + "."
	}
	s.render(w, 200, d)
}

func (s *Sandbox) pageConfirm(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	pi := s.intentBySecret(q.Get("client_secret"))
	if pi == nil {
		s.render(w, 404, pageData{Title: "Payment not found", Error: "No PaymentIntent has this client secret."})
		return
	}
	s.confirmPage(w, pi, q.Get("client_secret"), q.Get("return_url"), q.Get("embed") == "1", "")
}

func (s *Sandbox) pageConfirmPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", 400)
		return
	}
	f := r.PostForm
	pm := f.Get("payment_method")
	if pm == "" {
		pm = f.Get("card_number")
	}
	secret, ret := f.Get("client_secret"), f.Get("return_url")
	s.mu.Lock()
	s.tick()
	pi := s.intentBySecret(secret)
	if pi == nil {
		s.mu.Unlock()
		s.render(w, 404, pageData{Title: "Payment not found", Error: "No PaymentIntent has this client secret."})
		return
	}
	ae := s.confirmIntent(pi, pm, ret)
	var target string
	switch {
	case ae != nil:
	case pi["status"] == "requires_action":
		target = s.local("/authenticate/") + str(pi["id"])
	case ret != "":
		target = returnWith(ret, pi)
	}
	if target == "" {
		msg := ""
		if ae != nil {
			msg = ae.Message
		}
		s.confirmPage(w, pi, secret, ret, f.Get("embed") == "1", msg)
		s.mu.Unlock()
		s.wake()
		return
	}
	s.mu.Unlock()
	s.wake()
	http.Redirect(w, r, target, http.StatusSeeOther)
}

func (s *Sandbox) pageReceipt(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.get("charge", r.PathValue("id"))
	if ch == nil {
		s.render(w, 404, pageData{Title: "Receipt not found", Error: "No such charge."})
		return
	}
	s.render(w, 200, pageData{Title: "Receipt", Product: str(ch["description"]), Amount: money(toInt(ch["amount"]), str(ch["currency"])),
		Message: fmt.Sprintf("Charge %s: %s, refunded %s.", ch["id"], ch["status"], money(toInt(ch["amount_refunded"]), str(ch["currency"])))})
}

// sandboxJS is the Payment Element stand-in: PaygateSandbox.mount(target,
// {clientSecret, returnUrl}) puts the confirm page in an iframe; its form
// posts to the top window, so the redirect to returnUrl leaves the iframe.
const sandboxJS = `(function () {
  var base = document.currentScript ? document.currentScript.src.replace(/\/sandbox\.js(\?.*)?$/, "") : "";
  window.PaygateSandbox = {
    mount: function (target, opts) {
      var el = typeof target === "string" ? document.querySelector(target) : target;
      if (!el) { throw new Error("PaygateSandbox.mount: no element " + target); }
      var u = base + "/confirm?embed=1&client_secret=" + encodeURIComponent(opts.clientSecret) +
        "&return_url=" + encodeURIComponent(opts.returnUrl || "");
      var f = document.createElement("iframe");
      f.src = u; f.title = "paygate sandbox payment"; f.style.width = "100%"; f.style.minHeight = "640px"; f.style.border = "0";
      el.appendChild(f);
      return f;
    }
  };
})();
`

func (s *Sandbox) script(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write([]byte("// paygate sandbox: a stand-in for Stripe's Payment Element. Not Stripe.js.\n" + sandboxJS))
}
