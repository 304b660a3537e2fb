package sandbox

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// TestRandomHistoriesKeepTheBooks drives random histories (payments by
// every method and card, API and Dashboard refunds, refund failures,
// disputes, time passing) and checks after each step that the money adds
// up, and at the end that every event's object matches the spec.
func TestRandomHistoriesKeepTheBooks(t *testing.T) {
	t.Parallel()
	sp := loadSpec(t)
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			sb := newTestSandbox(t, Config{})
			api := stripeAPI(t, sb, testKey)
			methods := []string{"4242424242424242", "4000000000000002", "4000000000009995", "4000002500003155",
				"4000000000000259", "4000000000007726", "4000000000005126", "pm_usBankAccount_success", "pm_usBankAccount_failure"}
			var payments []string
			for step := 0; step < 60; step++ {
				switch op := rng.IntN(6); {
				case op <= 1 || len(payments) == 0:
					id := fmt.Sprintf("pay_%d", step)
					payments = append(payments, id)
					m := methods[rng.IntN(len(methods))]
					if rng.IntN(2) == 0 {
						cs := newCheckout(t, api, id, int64(100+rng.IntN(10000)))
						_ = sb.PaySession(cs.ID, m)
					} else {
						pi := newIntent(t, api, id, int64(100+rng.IntN(10000)))
						_ = sb.PayIntent(pi.ID, m)
					}
					if pi := sb.Truth(id).PaymentIntents; len(pi) > 0 && pi[0].Status == "requires_action" {
						must(t, sb.Authenticate(pi[0].ID, rng.IntN(3) > 0))
					}
				case op == 2:
					tr := sb.Truth(payments[rng.IntN(len(payments))])
					if tr.Succeeded == "" {
						continue
					}
					amount := int64(1 + rng.IntN(int(tr.AmountPaid)))
					p := &stripe.RefundParams{PaymentIntent: stripe.String(tr.Succeeded), Amount: stripe.Int64(amount)}
					p.AddMetadata(MetadataRefundKey, fmt.Sprintf("rf_%d", step))
					_, err := api.Refunds.New(p)
					if se, ok := err.(*stripe.Error); err != nil && (!ok || se.HTTPStatusCode != 400) {
						t.Fatalf("refund: %v", err)
					}
				case op == 3:
					tr := sb.Truth(payments[rng.IntN(len(payments))])
					if tr.Succeeded != "" {
						_, _ = sb.Refund(tr.Succeeded, 0, "")
					}
				case op == 4:
					tr := sb.Truth(payments[rng.IntN(len(payments))])
					for _, r := range tr.Refunds {
						if r.Status != "failed" && rng.IntN(2) == 0 {
							must(t, sb.FailRefund(r.ID, ""))
						}
					}
					if tr.Succeeded != "" && rng.IntN(4) == 0 {
						_, _ = sb.Dispute(tr.Succeeded, "")
					}
				default:
					sb.Advance(time.Duration(rng.IntN(48)) * time.Hour)
				}
				checkBooks(t, sb)
			}
			sb.Advance(100 * time.Hour)
			checkBooks(t, sb)
			for _, e := range sb.Events() {
				v := decodeJSON(t, e.Object).(map[string]any)
				for _, msg := range sp.validate(v["object"].(string), v) {
					t.Errorf("event %s: %s", e.Type, msg)
				}
			}
		})
	}
}

// checkBooks checks the sandbox's money against itself.
func checkBooks(t *testing.T, sb *Sandbox) {
	t.Helper()
	for id, tr := range sb.Truths() {
		succeeded := 0
		for _, pi := range tr.PaymentIntents {
			if pi.Status == "succeeded" {
				succeeded++
				if pi.AmountReceived != pi.Amount {
					t.Fatalf("%s: %s received %d of %d", id, pi.ID, pi.AmountReceived, pi.Amount)
				}
			}
		}
		if succeeded > 1 {
			t.Fatalf("%s: %d PaymentIntents succeeded", id, succeeded)
		}
		var live, ok int64
		perCharge := map[string]int64{}
		for _, r := range tr.Refunds {
			switch r.Status {
			case "pending", "succeeded":
				live += r.Amount
				perCharge[r.Charge] += r.Amount
			}
			if r.Status == "succeeded" {
				ok += r.Amount
			}
		}
		for _, ch := range tr.Charges {
			if ch.AmountRefunded != perCharge[ch.ID] || ch.AmountRefunded > ch.Amount || ch.AmountRefunded < 0 {
				t.Fatalf("%s: charge %s refunded %d, its live refunds sum to %d (amount %d)", id, ch.ID, ch.AmountRefunded, perCharge[ch.ID], ch.Amount)
			}
		}
		if tr.AmountRefunded != live || tr.AmountRefundSucceeded != ok || tr.AmountRefunded > tr.AmountPaid {
			t.Fatalf("%s: truth %+v, live refunds %d, succeeded %d", id, tr, live, ok)
		}
		for _, d := range tr.Disputes {
			if d.Status == "" {
				b, _ := json.Marshal(tr)
				t.Fatalf("dispute without status: %s", b)
			}
		}
	}
}
