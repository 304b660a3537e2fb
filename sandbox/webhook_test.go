package sandbox

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

func TestWebhookSignatures(t *testing.T) {
	t.Parallel()
	at := time.Unix(1767323045, 0)
	payload := []byte(`{"id":"evt_1","object":"event"}`)
	want := "t=1767323045,v1=" + hex.EncodeToString(webhook.ComputeSignature(at, payload, "whsec_abc"))
	if got := Sign(payload, "whsec_abc", at); got != want {
		t.Fatalf("Sign = %s, stripe-go computes %s", got, want)
	}

	sb := newTestSandbox(t, Config{Now: time.Now})
	rc := newReceiver(t, sb)
	api := stripeAPI(t, sb, testKey)
	pi := newIntent(t, api, "pay_w", 100)
	must(t, sb.PayIntent(pi.ID, "4242424242424242"))
	sb.DeliverAll()
	if len(rc.events) != 3 || rc.bad != 0 {
		t.Fatalf("verified %d, refused %d", len(rc.events), rc.bad)
	}
	// On real time, the default tolerance accepts the signature too.
	var raw []byte
	for _, e := range sb.Events() {
		if e.Type == "payment_intent.succeeded" {
			raw = e.Payload
		}
	}
	ev, err := webhook.ConstructEventWithOptions(raw, Sign(raw, sb.WebhookSecret(), time.Now()), sb.WebhookSecret(),
		webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
	must(t, err)
	if ev.APIVersion != APIVersion || ev.Data.Object["metadata"].(map[string]any)[MetadataPaymentKey] != "pay_w" {
		t.Fatalf("event %s %v", ev.APIVersion, ev.Data.Object["metadata"])
	}

	// A receiver holding another secret refuses every delivery.
	wrong := newTestSandbox(t, Config{WebhookSecret: "whsec_other"})
	rc2 := &receiver{t: t, secret: "whsec_mine"}
	srv := newReceiverServer(t, rc2)
	must(t, wrong.SetWebhook(srv, ""))
	pi2 := newIntent(t, stripeAPI(t, wrong, testKey), "pay_w2", 100)
	_ = pi2
	rep := wrong.DeliverAll()
	if rep.Failed != 1 || rc2.bad != 1 || len(rc2.events) != 0 {
		t.Fatalf("wrong secret: %+v, refused %d", rep, rc2.bad)
	}
}

func TestWebhookRetries(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, Config{})
	rc := newReceiver(t, sb)
	rc.answer = func(n int, ev stripe.Event) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return 200
	}
	api := stripeAPI(t, sb, testKey)
	newIntent(t, api, "pay_rt", 100)
	rep := sb.DeliverAll()
	if rep.Sent != 1 || rep.Failed != 1 || rep.Pending != 1 {
		t.Fatalf("first attempt: %+v", rep)
	}
	sb.Advance(59 * time.Second)
	if len(sb.Deliveries()) != 1 {
		t.Fatal("retried before the backoff")
	}
	sb.Advance(time.Second) // 1 min: second attempt, fails again
	sb.Advance(5 * time.Minute)
	var attempts []string
	for _, d := range sb.Deliveries() {
		attempts = append(attempts, fmt.Sprintf("%s #%d %d", d.Type, d.Attempt, d.Status))
	}
	want := []string{"payment_intent.created #1 503", "payment_intent.created #2 503", "payment_intent.created #3 200"}
	if diff := cmp.Diff(want, attempts); diff != "" {
		t.Fatalf("attempts (-want +got):\n%s", diff)
	}
	if got := rc.types(); len(got) != 1 {
		t.Fatalf("accepted %v", got)
	}
	// Resending an event delivers it once more, with the same payload.
	first := sb.Events()[0]
	must(t, sb.Redeliver(first.ID))
	if rep := sb.DeliverAll(); rep.Sent != 1 {
		t.Fatalf("redeliver: %+v", rep)
	}
	if got := rc.events; len(got) != 2 || got[1].ID != first.ID {
		t.Fatalf("after redeliver: %v", rc.types())
	}
	if err := sb.Redeliver("evt_nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("redeliver unknown: %v", err)
	}
	// Retries stop after the schedule runs out.
	short := newTestSandbox(t, Config{RetrySchedule: []time.Duration{time.Minute}})
	dead := &receiver{t: t, secret: short.WebhookSecret(), answer: func(int, stripe.Event) int { return 500 }}
	must(t, short.SetWebhook(newReceiverServer(t, dead), ""))
	newIntent(t, stripeAPI(t, short, testKey), "pay_dead", 100)
	short.Advance(time.Hour)
	if n := len(short.Deliveries()); n != 2 {
		t.Fatalf("%d attempts with a one-retry schedule", n)
	}
}

// chaosRun pays a few intents under chaos and returns what was delivered.
func chaosRun(t *testing.T, seed uint64) ([]string, []string) {
	// A fresh connection per delivery: a POST on a kept-alive connection
	// the server has just closed fails, is retried later, and so changes
	// the order for a reason that is not the seed.
	sb := newTestSandbox(t, Config{HTTPClient: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}})
	rc := newReceiver(t, sb)
	sb.SetChaos(Chaos{Seed: seed, Duplicate: 0.2, Reorder: 0.2, Delay: 0.2, Drop: 0.1, DelayBy: 10 * time.Minute})
	api := stripeAPI(t, sb, testKey)
	for i := 0; i < 10; i++ {
		pi := newIntent(t, api, fmt.Sprintf("pay_%d", i), 100)
		must(t, sb.PayIntent(pi.ID, "4242424242424242"))
	}
	// Event ids are random; name events by their position in the stream.
	pos := map[string]string{}
	for i, e := range sb.Events() {
		pos[e.ID] = fmt.Sprintf("%d:%s", i, e.Type)
	}
	sb.DeliverAll()
	sb.Advance(10 * time.Minute)
	var log []string
	for _, d := range sb.Deliveries() {
		if !d.Dropped && (d.Error != "" || d.Status != 200) {
			t.Fatalf("a delivery failed, so the run is not the seed's alone: %+v", d)
		}
		tag := ""
		switch {
		case d.Dropped:
			tag = " dropped"
		case d.Duplicate:
			tag = " dup"
		}
		log = append(log, pos[d.EventID]+tag)
	}
	var got []string
	for _, e := range rc.events {
		got = append(got, pos[e.ID])
	}
	return log, got
}

func TestWebhookChaosIsSeeded(t *testing.T) {
	t.Parallel()
	log1, got1 := chaosRun(t, 42)
	log2, got2 := chaosRun(t, 42)
	if diff := cmp.Diff(log1, log2); diff != "" {
		t.Fatalf("same seed, different deliveries (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(got1, got2); diff != "" {
		t.Fatalf("same seed, different arrivals:\n%s", diff)
	}
	joined := strings.Join(log1, "\n")
	for _, want := range []string{"dropped", "dup"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no %s delivery in 30 events at these rates:\n%s", want, joined)
		}
	}
	inOrder := true
	for i := 1; i < len(got1); i++ {
		var a, b int
		fmt.Sscanf(got1[i-1], "%d:", &a)
		fmt.Sscanf(got1[i], "%d:", &b)
		if b < a {
			inOrder = false
		}
	}
	if inOrder {
		t.Errorf("no reordering at these rates:\n%s", strings.Join(got1, "\n"))
	}
	log3, _ := chaosRun(t, 7)
	if cmp.Equal(log1, log3) {
		t.Error("another seed gave the same schedule")
	}
}

func newReceiverServer(t *testing.T, rc *receiver) string {
	t.Helper()
	return newReceiverHTTP(t, rc)
}
