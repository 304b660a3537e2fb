package sandbox

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// ctl calls the control API and decodes its answer into out.
func ctl(t *testing.T, sb *Sandbox, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, sb.URL()+path, strings.NewReader(body))
	must(t, err)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

func TestControlAPI(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, Config{})
	rc := newReceiver(t, sb)
	api := stripeAPI(t, sb, testKey)
	link := newLink(t, api, "pay_c", 1500, "")

	var visit struct {
		CheckoutSession string `json:"checkout_session"`
	}
	if st := ctl(t, sb, "POST", "/_sandbox/payment_links/"+link.ID+"/visit", "", &visit); st != 200 || visit.CheckoutSession == "" {
		t.Fatalf("visit: %d %+v", st, visit)
	}
	var e struct {
		Error struct{ Code, Message string }
	}
	if st := ctl(t, sb, "POST", "/_sandbox/checkout_sessions/"+visit.CheckoutSession+"/pay", `{"payment_method":"4000000000000002"}`, &e); st != 402 || e.Error.Code != "card_declined" {
		t.Fatalf("decline: %d %+v", st, e)
	}
	if st := ctl(t, sb, "POST", "/_sandbox/checkout_sessions/"+visit.CheckoutSession+"/pay", `{"payment_method":"pm_usBankAccount_success"}`, nil); st != 200 {
		t.Fatalf("debit: %d", st)
	}
	pi := sb.SessionIntent(visit.CheckoutSession)
	if st := ctl(t, sb, "POST", "/_sandbox/payment_intents/"+pi+"/settle", `{"ok":true}`, nil); st != 200 {
		t.Fatalf("settle: %d", st)
	}
	var rf struct{ Refund string }
	if st := ctl(t, sb, "POST", "/_sandbox/payment_intents/"+pi+"/refund", `{"amount":500,"reason":"requested_by_customer"}`, &rf); st != 200 || rf.Refund == "" {
		t.Fatalf("refund: %d", st)
	}
	// Bank debit refunds start pending; fail this one by hand.
	if st := ctl(t, sb, "POST", "/_sandbox/refunds/"+rf.Refund+"/fail", `{"reason":"lost_or_stolen_card"}`, nil); st != 200 {
		t.Fatalf("fail refund: %d", st)
	}
	var dp struct{ Dispute string }
	if st := ctl(t, sb, "POST", "/_sandbox/payment_intents/"+pi+"/dispute", `{"reason":"duplicate"}`, &dp); st != 200 {
		t.Fatalf("dispute: %d", st)
	}
	ctl(t, sb, "POST", "/_sandbox/disputes/"+dp.Dispute+"/update", `{"evidence":"two orders"}`, nil)
	ctl(t, sb, "POST", "/_sandbox/disputes/"+dp.Dispute+"/close", `{"won":true}`, nil)
	var rep struct{ Sent, Failed, Pending int }
	ctl(t, sb, "POST", "/_sandbox/deliver", "", &rep)
	want := []string{
		"payment_intent.created", "charge.failed", "payment_intent.payment_failed",
		"charge.pending", "payment_intent.processing", "checkout.session.completed", "payment_link.updated",
		"charge.succeeded", "payment_intent.succeeded", "checkout.session.async_payment_succeeded",
		"charge.refunded", "refund.created", "charge.refund.updated", "refund.updated", "refund.failed",
		"charge.dispute.created", "charge.dispute.funds_withdrawn", "charge.dispute.updated", "charge.dispute.closed", "charge.dispute.funds_reinstated",
	}
	if diff := cmp.Diff(want, rc.types()); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	if rep.Sent != len(want) || rep.Failed != 0 || rep.Pending != 0 {
		t.Errorf("deliver report %+v", rep)
	}
	var truth PaymentTruth
	ctl(t, sb, "GET", "/_sandbox/truth/pay_c", "", &truth)
	if truth.Succeeded != pi || truth.AmountPaid != 1500 || truth.AmountRefunded != 0 || len(truth.Refunds) != 1 ||
		truth.Refunds[0].Status != "failed" || len(truth.Disputes) != 1 || truth.Disputes[0].Status != "won" || len(truth.PaymentLinks) != 1 {
		t.Fatalf("truth %+v", truth)
	}
	var all map[string]PaymentTruth
	ctl(t, sb, "GET", "/_sandbox/truth", "", &all)
	if _, ok := all["pay_c"]; !ok || len(all) != 1 {
		t.Fatalf("truths %v", all)
	}
	var clock struct{ Now int64 }
	before := sb.Now().Unix()
	ctl(t, sb, "POST", "/_sandbox/clock/advance", `{"seconds":3600}`, &clock)
	if clock.Now != before+3600 {
		t.Fatalf("clock %d, want %d", clock.Now, before+3600)
	}
	if st := ctl(t, sb, "POST", "/_sandbox/payment_intents/pi_nope/settle", "", nil); st != 404 {
		t.Fatalf("unknown id: %d", st)
	}
	if st := ctl(t, sb, "POST", "/_sandbox/chaos", `{"sede":1}`, nil); st != 400 {
		t.Fatalf("misspelt field: %d", st)
	}
}

func TestAutoDeliver(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, Config{AutoDeliver: true, Now: time.Now})
	rc := newReceiver(t, sb)
	api := stripeAPI(t, sb, testKey)
	pi := newIntent(t, api, "pay_auto", 100)
	must(t, sb.PayIntent(pi.ID, "4242424242424242"))
	deadline := time.Now().Add(5 * time.Second)
	for len(rc.types()) < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if diff := cmp.Diff([]string{"payment_intent.created", "charge.succeeded", "payment_intent.succeeded"}, rc.types()); diff != "" {
		t.Fatalf("auto-delivered (-want +got):\n%s", diff)
	}
}

func TestPagesServeWithoutExternalAssets(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, Config{})
	api := stripeAPI(t, sb, testKey)
	cs := newCheckout(t, api, "pay_p", 1234)
	pi := newIntent(t, api, "pay_q", 99)
	for _, path := range []string{"/", "/checkout/" + cs.ID, "/confirm?client_secret=" + pi.ClientSecret, "/authenticate/" + pi.ID, "/_sandbox/dashboard"} {
		resp, err := http.Get(sb.URL() + path)
		must(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page := string(b)
		if resp.StatusCode != 200 || resp.Header.Get("Sandbox") != "paygate" || !strings.Contains(page, "SANDBOX") {
			t.Errorf("%s: %d, header %q", path, resp.StatusCode, resp.Header.Get("Sandbox"))
		}
		for _, ext := range []string{"http://", "https://", "//cdn"} {
			if strings.Contains(strings.ReplaceAll(page, sb.URL(), ""), ext) {
				t.Errorf("%s refers to an external asset (%s)", path, ext)
			}
		}
	}
	resp, err := http.Get(sb.URL() + "/checkout/" + cs.ID)
	must(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"12.34 USD", "Visit", `id="card-4242424242424242"`, `id="bank-debit"`, `id="card-number"`, `id="cancel"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("checkout page lacks %s", want)
		}
	}
}

func TestDashboardPage(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, Config{})
	rc := newReceiver(t, sb)
	api := stripeAPI(t, sb, testKey)
	pi := newIntent(t, api, "pay_dash", 1200)
	must(t, sb.PayIntent(pi.ID, "4242424242424242"))
	resp, err := http.Get(sb.URL() + "/_sandbox/dashboard")
	must(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `id="refund-`+pi.ID+`"`) || !strings.Contains(string(b), "pay_dash") {
		t.Fatalf("dashboard: %d\n%s", resp.StatusCode, b)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, form := range []url.Values{
		{"action": {"refund"}, "id": {pi.ID}},
		{"action": {"deliver"}},
		{"action": {"dispute"}, "id": {"pi_nope"}},
	} {
		resp, err := noFollow.PostForm(sb.URL()+"/_sandbox/dashboard", form)
		must(t, err)
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != 303 || !strings.HasPrefix(loc, "/_sandbox/dashboard") || (form.Get("id") == "pi_nope") != strings.Contains(loc, "error=") {
			t.Fatalf("%v: %d %s", form, resp.StatusCode, loc)
		}
	}
	if got := rc.types(); len(got) != 5 || got[3] != "charge.refunded" {
		t.Fatalf("events %v", got)
	}
	if tr := sb.Truth("pay_dash"); tr.AmountRefunded != 1200 {
		t.Fatalf("truth %+v", tr)
	}
}
