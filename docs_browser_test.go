package paygate_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/callback"
	"github.com/numedapp/paygate/internal/browser"
	"github.com/numedapp/paygate/internal/testenv"
	"github.com/numedapp/paygate/sandbox"
)

// screenshotDir is where page screenshots go: $PAYGATE_SCREENSHOTS if set
// (to look at them), else the test's temporary directory.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("PAYGATE_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// eval runs a JavaScript expression in the page and returns its value.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// The docs page in a real browser: both languages at desktop and phone
// widths (screenshots), every route on the page, every in-page link
// resolving, nothing wider than a phone's screen, and the language switch.
func TestDocsPageInBrowser(t *testing.T) {
	e := newEnv(t)
	ctx := browser.New(t, 3*time.Minute)
	dir := screenshotDir(t)
	var routes []string
	for _, rt := range e.gw.Routes() {
		routes = append(routes, rt.Pattern)
	}
	for _, width := range []int64{1280, 390} {
		for _, lang := range []string{"th", "en"} {
			name := fmt.Sprintf("docs-%s-%d", lang, width)
			step, cancel := context.WithTimeout(ctx, time.Minute)
			err := chromedp.Do(step,
				chromedp.EmulateViewport(width, 900),
				chromedp.Navigate(e.srv.URL+"/docs?lang="+lang),
				chromedp.WaitVisible(chromedp.CSS("#start")))
			// The whole page (JPEG), the first screen and the test payment
			// section (PNG): what a person sees first, and the second entry point.
			shots := map[string]chromedp.Action[[]byte]{
				name + "-full.jpg":         chromedp.FullScreenshot(80),
				name + "-top.png":          chromedp.CaptureScreenshot(),
				name + "-test-payment.png": chromedp.Screenshot(chromedp.CSS("#test-payment")),
				name + "-reference.png":    chromedp.Screenshot(chromedp.CSS("#tag-payment-link")),
			}
			for file, shot := range shots {
				if err != nil {
					break
				}
				var img []byte
				if img, err = chromedp.Run(step, shot); err == nil {
					err = os.WriteFile(filepath.Join(dir, file), img, 0o644)
				}
			}
			cancel()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got := eval[string](t, ctx, `document.documentElement.dataset.lang`); got != lang {
				t.Errorf("%s: data-lang %q", name, got)
			}
			shown := eval[string](t, ctx, `document.querySelector('#nav-test').innerText.trim()`)
			if want := map[string]string{"th": "ทดสอบชำระเงิน", "en": "Test payment"}[lang]; shown != want {
				t.Errorf("%s: the test payment entry point reads %q, want %q", name, shown, want)
			}
			missing := eval[[]string](t, ctx, `(()=>{const on=new Set([...document.querySelectorAll('[data-route]')].map(e=>e.dataset.route));return `+jsArray(routes)+`.filter(r=>!on.has(r))})()`)
			if len(missing) > 0 {
				t.Errorf("%s: routes not on the page: %q", name, missing)
			}
			broken := eval[[]string](t, ctx, `[...document.querySelectorAll('a[href^="#"]')].map(a=>a.getAttribute('href')).filter(h=>!document.getElementById(decodeURIComponent(h.slice(1))))`)
			if len(broken) > 0 {
				t.Errorf("%s: in-page links going nowhere: %q", name, broken)
			}
			if over := eval[float64](t, ctx, `document.documentElement.scrollWidth - window.innerWidth`); over > 0 {
				t.Errorf("%s: the page is %v px wider than the window", name, over)
			}
		}
	}
	t.Logf("screenshots in %s", dir)

	// The switch changes the language and remembers it.
	if err := chromedp.Do(ctx, chromedp.Navigate(e.srv.URL+"/docs"), chromedp.Click(chromedp.CSS(`[data-set-lang="en"]`))); err != nil {
		t.Fatal(err)
	}
	if got := eval[string](t, ctx, `document.querySelector('#nav-start').innerText.trim()`); got != "Get started" {
		t.Errorf("after switching to English: %q", got)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(e.srv.URL+"/docs")); err != nil {
		t.Fatal(err)
	}
	if got := eval[string](t, ctx, `document.documentElement.dataset.lang`); got != "en" {
		t.Errorf("the language choice is not remembered: %q", got)
	}
	// Code tabs.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-tab="python"]`))); err != nil {
		t.Fatal(err)
	}
	if got := eval[string](t, ctx, `document.querySelector('[data-panel="python"]').hidden + "," + document.querySelector('[data-panel="go"]').hidden`); got != "false,true" {
		t.Errorf("python tab: hidden %s", got)
	}
}

// waitFor evaluates expr until it is true (for up to a minute), across
// page loads: the page may be navigating when it is asked.
func waitFor(t *testing.T, ctx context.Context, expr string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	var last error
	for time.Now().Before(deadline) {
		step, cancel := context.WithTimeout(ctx, 5*time.Second)
		ok, err := chromedp.Run(step, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	t.Fatalf("waited a minute for %s (at %s): %v", expr, loc, last)
}

// press clicks a button from script.
func press(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	eval[bool](t, ctx, `(()=>{document.querySelector(`+fmt.Sprintf("%q", sel)+`).click();return true})()`)
}

func jsArray(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ",") + "]"
}

// The test payment page's mechanics, on stripe-mock (a Stripe stand-in, so
// the page is in sandbox mode): each method creates a payment through the
// API with the key entered, offers the page to pay it on, and shows the
// payment's history; a wrong key shows the API's error. Paying end to end
// is TestDocsTestPaymentPaysOnSandbox.
func TestDocsTestPaymentInBrowser(t *testing.T) {
	e := newEnv(t)
	ctx := browser.New(t, 3*time.Minute)
	run := func(actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		step, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := chromedp.Do(step, actions...); err != nil {
			t.Fatal(err)
		}
	}
	run(chromedp.Navigate(e.srv.URL+"/docs?lang=en#test-payment"), chromedp.WaitVisible(chromedp.CSS("#tp-form")))

	// A wrong key: the API's 401 is shown, nothing is created.
	// (Buttons are pressed from script: the page scrolls smoothly to
	// #test-payment, and a click at coordinates taken mid-scroll can miss.)
	run(chromedp.SendKeys(chromedp.CSS("#tp-key"), "wrong-key-0123456789"))
	press(t, ctx, "#tp-submit")
	run(chromedp.WaitVisible(chromedp.CSS("#tp-error")))
	if msg := eval[string](t, ctx, `document.querySelector('#tp-error').textContent`); !strings.Contains(msg, "401 authentication") {
		t.Fatalf("wrong key: error shown %q", msg)
	}

	for _, tc := range []struct{ method, openPrefix string }{
		{"link", "http"},     // stripe-mock's Payment Link url
		{"checkout", "http"}, // stripe-mock's Checkout url
		// The sandbox's stand-in for the Payment Element, with the client secret.
		{"intent", strings.TrimRight(testenv.StripeMockURL(t), "/") + paygate.SandboxConfirmPath + "?client_secret=pi_"},
	} {
		eval[bool](t, ctx, `(()=>{document.querySelector('#tp-key').value=`+fmt.Sprintf("%q", testAPIKey)+`;`+
			`document.querySelector('#tp-amount').value='12.34';`+
			`window.prevPayment=document.querySelector('#tp-payment-id').textContent;`+
			`document.querySelector('input[name=method][value=`+tc.method+`]').checked=true;return true})()`)
		press(t, ctx, "#tp-submit")
		waitFor(t, ctx, `(t=>t.startsWith('pay_')&&t!==window.prevPayment)(document.querySelector('#tp-payment-id').textContent)`)
		id := eval[string](t, ctx, `document.querySelector('#tp-payment-id').textContent`)
		var p struct {
			Method string `json:"method"`
			Amount int64  `json:"amount"`
		}
		e.do("GET", "/api/payments/"+id, "").must(t, 200, &p)
		if p.Method != tc.method || p.Amount != 1234 {
			t.Errorf("%s: created %+v", tc.method, p)
		}
		if open := eval[string](t, ctx, `document.querySelector('#tp-open').href`); !strings.HasPrefix(open, tc.openPrefix) {
			t.Errorf("%s: pay at %q, want a link starting %q", tc.method, open, tc.openPrefix)
		}
		if hist := eval[string](t, ctx, `document.querySelector('#tp-history tbody').innerText`); !strings.Contains(hist, "payment_created") {
			t.Errorf("%s: history shown %q", tc.method, hist)
		}
		if tc.method == "link" {
			step, cancel := context.WithTimeout(ctx, time.Minute)
			img, err := chromedp.Run(step, chromedp.Screenshot(chromedp.CSS("#test-payment")))
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(screenshotDir(t), "docs-test-payment-created.png"), img, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if errShown := eval[bool](t, ctx, `!document.querySelector('#tp-error').hidden`); errShown {
			t.Errorf("%s: error shown %q", tc.method, eval[string](t, ctx, `document.querySelector('#tp-error').textContent`))
		}
	}

	// Coming back from the payment page (the return URL every method is
	// given) shows the last payment again.
	last := eval[string](t, ctx, `document.querySelector('#tp-payment-id').textContent`)
	run(chromedp.Navigate(e.srv.URL + "/docs?paid=1#test-payment"))
	waitFor(t, ctx, `document.querySelector('#tp-payment-id').textContent===`+fmt.Sprintf("%q", last))
	if hist := eval[string](t, ctx, `document.querySelector('#tp-history tbody').innerText`); !strings.Contains(hist, "payment_created") {
		t.Errorf("after returning: history shown %q", hist)
	}
}

// A person pays through the test payment page end to end, on the sandbox:
// for each method, the page creates the payment, the person pays on the
// sandbox's page with the test card and comes back, Stripe's webhooks
// arrive, and the page shows the payment succeeded with its history and
// the callbacks the merchant acknowledged.
func TestDocsTestPaymentPaysOnSandbox(t *testing.T) {
	sb, err := sandbox.NewServer(sandbox.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	m := newMerchant(t)
	e := newEnv(t, func(c *paygate.Config) {
		paygate.SetBackend(c, nil) // stripe-go's own backend, to the sandbox
		c.StripeAPIBase, c.StripeSecretKey = sb.URL(), "sk_test_123abc"
		c.WebhookSecrets = []string{sb.WebhookSecret()}
		c.CallbackURL = m.URL + "/hooks/paygate"
		c.Now = sb.Now
	})
	if err := sb.SetWebhook(e.srv.URL+paygate.WebhookPath, ""); err != nil {
		t.Fatal(err)
	}
	eng, err := callback.New(callback.Config{Queue: e.store, Secrets: []string{callbackSecret}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := browser.New(t, 4*time.Minute)
	run := func(actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		step, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := chromedp.Do(step, actions...); err != nil {
			t.Fatal(err)
		}
	}
	run(chromedp.Navigate(e.srv.URL+"/docs?lang=en#test-payment"), chromedp.WaitVisible(chromedp.CSS("#tp-form")),
		chromedp.SendKeys(chromedp.CSS("#tp-key"), testAPIKey))
	for _, method := range []string{"link", "checkout", "intent"} {
		eval[bool](t, ctx, `(()=>{document.querySelector('#tp-amount').value='12.34';`+
			`window.prevPayment=document.querySelector('#tp-payment-id').textContent;`+
			`document.querySelector('input[name=method][value=`+method+`]').checked=true;return true})()`)
		press(t, ctx, "#tp-submit")
		waitFor(t, ctx, `(t=>t.startsWith('pay_')&&t!==window.prevPayment)(document.querySelector('#tp-payment-id').textContent) || !document.querySelector('#tp-error').hidden`)
		if msg := eval[string](t, ctx, `document.querySelector('#tp-error').hidden ? '' : document.querySelector('#tp-error').textContent`); msg != "" {
			t.Fatalf("%s: the page shows an error: %s", method, msg)
		}
		run(chromedp.WaitVisible(chromedp.CSS("#tp-open")))
		id := eval[string](t, ctx, `document.querySelector('#tp-payment-id').textContent`)
		payAt := eval[string](t, ctx, `document.querySelector('#tp-open').href`)
		if !strings.HasPrefix(payAt, sb.URL()) {
			t.Fatalf("%s: pays at %q, not on the sandbox", method, payAt)
		}
		// The person pays on the sandbox's page and is sent back.
		run(chromedp.Navigate(payAt), chromedp.Click(chromedp.ID("card-4242424242424242")))
		waitFor(t, ctx, `location.pathname==='/docs' && document.querySelector('#tp-payment-id').textContent===`+fmt.Sprintf("%q", id))
		if lang := eval[string](t, ctx, `document.documentElement.dataset.lang`); lang != "en" {
			t.Errorf("%s: came back in %q, not in the language the payment was made in", method, lang)
		}
		sb.DeliverAll()
		if _, err := eng.DeliverDue(context.Background(), 100); err != nil {
			t.Fatal(err)
		}
		// The page catches up by itself (it polls).
		step, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := chromedp.Run(step, chromedp.Poll[bool](`document.querySelector('#tp-status').dataset.status==='succeeded' && `+
			`document.querySelector('#tp-history tbody').innerText.includes('payment_succeeded') && `+
			`document.querySelector('#tp-callbacks tbody').innerText.includes('✔')`))
		cancel()
		if err != nil {
			t.Fatalf("%s: the page never showed the payment succeeded with a delivered callback: status %q\n%s\n%s", method,
				eval[string](t, ctx, `document.querySelector('#tp-status').textContent`),
				eval[string](t, ctx, `document.querySelector('#tp-history tbody').innerText`),
				eval[string](t, ctx, `document.querySelector('#tp-callbacks tbody').innerText`))
		}
		if method == "intent" {
			step, cancel := context.WithTimeout(ctx, time.Minute)
			img, err := chromedp.Run(step, chromedp.Screenshot(chromedp.CSS("#test-payment")))
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(screenshotDir(t), "docs-test-payment-paid.png"), img, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.verified < 3 || m.verified != len(m.bodies) {
		t.Fatalf("merchant: %d callbacks, %d verified", len(m.bodies), m.verified)
	}
}
