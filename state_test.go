package paygate

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The state machine, tested as the pure function it is: table tests of
// multi-attempt histories, and every order of them, in memory.

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(sec int64) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

// Stripe objects as events carry them.
func piEv(typ, pi, charge string) eventObject {
	return eventObject{typ: "payment_intent." + typ, obj: &stripeObject{ID: pi, Object: "payment_intent", LatestCharge: expandable(charge), Created: 1000}}
}

func piEvCreated(typ, pi, charge string, created int64) eventObject {
	e := piEv(typ, pi, charge)
	e.obj.Created = created
	return e
}

func sessionEv(typ, cs, pi, paymentStatus string) eventObject {
	return eventObject{typ: "checkout.session." + typ, obj: &stripeObject{ID: cs, Object: "checkout.session", PaymentIntent: expandable(pi),
		PaymentStatus: paymentStatus, PaymentLink: "plink_1"}}
}

func chargeRefundedEv(charge, pi string, cumulative int64, sec int64) eventObject {
	return eventObject{typ: "charge.refunded", created: at(sec), obj: &stripeObject{ID: charge, Object: "charge", PaymentIntent: expandable(pi), AmountRefunded: cumulative}}
}

func refundEv(typ, re, charge, pi, status string, amount, sec int64, ours string) eventObject {
	o := &stripeObject{ID: re, Object: "refund", Charge: expandable(charge), PaymentIntent: expandable(pi), Status: status, Amount: amount,
		Created: at(sec).Unix(), Metadata: map[string]string{}}
	if ours != "" {
		o.Metadata[metadataRefundKey] = ours
	}
	return eventObject{typ: typ, created: at(sec), obj: o}
}

func disputeEv(typ, dp, charge, pi, status string, amount int64) eventObject {
	return eventObject{typ: "charge.dispute." + typ, obj: &stripeObject{ID: dp, Object: "dispute", Charge: expandable(charge),
		PaymentIntent: expandable(pi), Status: status, Amount: amount, Reason: "fraudulent"}}
}

// startOf is the payment a scenario starts from.
func startOf(s scenario) *Payment {
	p := newTestPayment(s.method)
	if s.setup != nil {
		s.setup(p)
		p.derive()
	}
	return p
}

// view is what a merchant sees of a payment.
type view struct {
	Status          Status
	AmountRefunded  int64
	PaymentIntentID string
	ChargeID        string
	Refunds         []string // "re_…:status:amount", sorted
	Disputes        []string // "dp_…:status"
}

func viewOf(p *Payment) view {
	v := view{Status: p.Status, AmountRefunded: p.AmountRefunded, PaymentIntentID: p.PaymentIntentID, ChargeID: p.ChargeID}
	for _, r := range p.Refunds {
		v.Refunds = append(v.Refunds, fmt.Sprintf("%s:%s:%d", r.StripeRefundID, r.Status, r.Amount))
	}
	for _, d := range p.Disputes {
		v.Disputes = append(v.Disputes, d.ID+":"+d.Status)
	}
	sort.Strings(v.Refunds)
	return v
}

func newTestPayment(m Method) *Payment {
	p := &Payment{ID: "pay_1", Method: m, Status: StatusPending, Amount: 1000, Currency: "usd", CreatedAt: t0, UpdatedAt: t0}
	switch m {
	case MethodIntent:
		p.PaymentIntentID = "pi_1"
	case MethodCheckout:
		p.CheckoutSessionID = "cs_1"
	case MethodLink:
		p.PaymentLinkID = "plink_1"
	}
	return p
}

// apiRefund is a refund reserved through the API, not yet confirmed.
func apiRefund(id string, amount int64, sec int64) Refund {
	return Refund{ID: id, Amount: amount, Status: RefundPending, CreatedAt: at(sec), UpdatedAt: at(sec)}
}

type scenario struct {
	name   string
	method Method
	setup  func(p *Payment)
	events []eventObject
	want   view
	// wantHistory, when set, is the history (types) expected in the
	// events' order as listed.
	wantHistory []HistoryType
}

var scenarios = []scenario{
	{
		name: "link declined then paid in a second session", method: MethodLink,
		events: []eventObject{
			piEvCreated("payment_failed", "pi_a", "ch_a", 1000),
			sessionEv("expired", "cs_a", "pi_a", "unpaid"),
			piEvCreated("canceled", "pi_a", "ch_a", 1000),
			piEvCreated("succeeded", "pi_b", "ch_b", 2000),
			sessionEv("completed", "cs_b", "pi_b", "paid"),
		},
		want:        view{Status: StatusSucceeded, PaymentIntentID: "pi_b", ChargeID: "ch_b"},
		wantHistory: []HistoryType{HistoryPaymentFailed, HistoryPaymentSucceeded, HistoryCheckoutCompleted},
	},
	{
		name: "link: an abandoned session does not end it", method: MethodLink,
		events: []eventObject{
			sessionEv("expired", "cs_a", "pi_a", "unpaid"),
			piEvCreated("canceled", "pi_a", "", 1000),
		},
		want: view{Status: StatusPending, PaymentIntentID: "pi_a"},
	},
	{
		name: "intent: declined, then a bank debit processing, then settled", method: MethodIntent,
		events: []eventObject{
			piEv("payment_failed", "pi_1", "ch_1"),
			piEv("processing", "pi_1", "ch_2"),
			piEv("succeeded", "pi_1", "ch_2"),
		},
		want:        view{Status: StatusSucceeded, PaymentIntentID: "pi_1", ChargeID: "ch_2"},
		wantHistory: []HistoryType{HistoryPaymentFailed, HistoryPaymentProcessing, HistoryPaymentSucceeded},
	},
	{
		name: "intent: declined, then a bank debit still processing", method: MethodIntent,
		events: []eventObject{
			piEv("payment_failed", "pi_1", "ch_1"),
			piEv("processing", "pi_1", "ch_2"),
		},
		want: view{Status: StatusProcessing, PaymentIntentID: "pi_1", ChargeID: "ch_2"},
	},
	{
		name: "checkout: async debit that fails", method: MethodCheckout,
		events: []eventObject{
			piEv("processing", "pi_1", "ch_1"),
			sessionEv("completed", "cs_1", "pi_1", "unpaid"),
			piEv("payment_failed", "pi_1", "ch_1"),
			sessionEv("async_payment_failed", "cs_1", "pi_1", "unpaid"),
		},
		want:        view{Status: StatusFailed, PaymentIntentID: "pi_1", ChargeID: "ch_1"},
		wantHistory: []HistoryType{HistoryPaymentProcessing, HistoryCheckoutCompleted, HistoryPaymentFailed},
	},
	{
		name: "checkout: expired", method: MethodCheckout,
		events: []eventObject{
			sessionEv("expired", "cs_1", "", "unpaid"),
		},
		want:        view{Status: StatusExpired},
		wantHistory: []HistoryType{HistoryCheckoutExpired},
	},
	{
		name: "a Dashboard refund and an API refund both count", method: MethodIntent,
		setup: func(p *Payment) {
			// Paid, and a refund reserved through the API, not yet confirmed.
			p.Attempts = []Attempt{{PaymentIntentID: "pi_1", Charges: []ChargeState{{ID: "ch_1", Status: ChargeSucceeded}}}}
			p.Refunds = []Refund{apiRefund("rf_api", 300, 20)}
		},
		events: []eventObject{
			piEv("succeeded", "pi_1", "ch_1"),
			chargeRefundedEv("ch_1", "pi_1", 600, 10), // the Dashboard refund, before the API one
			refundEv("refund.created", "re_d", "ch_1", "pi_1", "succeeded", 600, 10, ""),
			refundEv("refund.created", "re_api", "ch_1", "pi_1", "succeeded", 300, 20, "rf_api"),
			chargeRefundedEv("ch_1", "pi_1", 900, 20),
		},
		want: view{Status: StatusPartiallyRefunded, AmountRefunded: 900, PaymentIntentID: "pi_1", ChargeID: "ch_1",
			Refunds: []string{"re_api:succeeded:300", "re_d:succeeded:600"}},
	},
	{
		name: "a refund that fails after charge.refunded stops counting", method: MethodIntent,
		events: []eventObject{
			piEv("succeeded", "pi_1", "ch_1"),
			refundEv("refund.created", "re_1", "ch_1", "pi_1", "succeeded", 1000, 10, ""),
			chargeRefundedEv("ch_1", "pi_1", 1000, 10),
			refundEv("refund.failed", "re_1", "ch_1", "pi_1", "failed", 1000, 10, ""),
		},
		want: view{Status: StatusSucceeded, PaymentIntentID: "pi_1", ChargeID: "ch_1", Refunds: []string{"re_1:failed:1000"}},
	},
	{
		name: "a refund known only from charge.refunded counts", method: MethodIntent,
		events: []eventObject{
			piEv("succeeded", "pi_1", "ch_1"),
			chargeRefundedEv("ch_1", "pi_1", 400, 10),
		},
		want:        view{Status: StatusPartiallyRefunded, AmountRefunded: 400, PaymentIntentID: "pi_1", ChargeID: "ch_1"},
		wantHistory: []HistoryType{HistoryPaymentSucceeded, HistoryRefundCreated},
	},
	{
		name: "a dispute opened, reviewed and won", method: MethodIntent,
		events: []eventObject{
			piEv("succeeded", "pi_1", "ch_1"),
			disputeEv("created", "dp_1", "ch_1", "pi_1", "needs_response", 1000),
			disputeEv("updated", "dp_1", "ch_1", "pi_1", "under_review", 1000),
			disputeEv("closed", "dp_1", "ch_1", "pi_1", "won", 1000),
		},
		want:        view{Status: StatusSucceeded, PaymentIntentID: "pi_1", ChargeID: "ch_1", Disputes: []string{"dp_1:won"}},
		wantHistory: []HistoryType{HistoryPaymentSucceeded, HistoryDisputeCreated, HistoryDisputeUpdated, HistoryDisputeClosed},
	},
	{
		name: "a late failure never moves a payment back", method: MethodIntent,
		events: []eventObject{
			piEv("succeeded", "pi_1", "ch_2"),
			piEv("payment_failed", "pi_1", "ch_1"),
		},
		want: view{Status: StatusSucceeded, PaymentIntentID: "pi_1", ChargeID: "ch_2"},
	},
}

func run(s scenario, order []int, dup int) (*Payment, []HistoryEntry) {
	p := startOf(s)
	var hist []HistoryEntry
	for i, k := range order {
		hist = append(hist, applyEvent(p, s.events[k], SourceWebhook, at(100))...)
		if i == dup {
			hist = append(hist, applyEvent(p, s.events[k], SourceWebhook, at(100))...)
		}
	}
	return p, hist
}

func TestStateMachineScenarios(t *testing.T) {
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			order := make([]int, len(s.events))
			for i := range order {
				order[i] = i
			}
			p, hist := run(s, order, -1)
			if diff := cmp.Diff(s.want, viewOf(p)); diff != "" {
				t.Errorf("payment (-want +got):\n%s", diff)
			}
			if s.wantHistory != nil {
				var got []HistoryType
				for _, h := range hist {
					got = append(got, h.EventType)
				}
				if diff := cmp.Diff(s.wantHistory, got); diff != "" {
					t.Errorf("history (-want +got):\n%s", diff)
				}
			}
			// Every status change is a history row with the right from/to.
			from := startOf(s).statusShown()
			for _, h := range hist {
				if h.FromStatus != from {
					t.Errorf("history %s from %s, want %s (%+v)", h.EventType, h.FromStatus, from, hist)
				}
				from = h.ToStatus
			}
			if from != p.Status && len(hist) > 0 {
				t.Errorf("last history entry ends at %s, payment is %s", from, p.Status)
			}
		})
	}
}

// TestStateMachineOrderIndependence applies each scenario's events in every
// order, each time with one of them delivered twice: the payment always ends
// the same, and a repeat never writes history.
func TestStateMachineOrderIndependence(t *testing.T) {
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			n := 0
			permute(len(s.events), func(order []int) {
				n++
				dup := n % len(order)
				p, hist := run(s, order, dup)
				if diff := cmp.Diff(s.want, viewOf(p)); diff != "" {
					t.Fatalf("order %v (event %d twice) (-want +got):\n%s", order, order[dup], diff)
				}
				seen := map[string]bool{}
				for _, h := range hist {
					key := string(h.EventType) + string(h.Data)
					if seen[key] && !strings.HasPrefix(string(h.EventType), "payment_") {
						t.Fatalf("order %v: %s written twice: %+v", order, h.EventType, hist)
					}
					seen[key] = true
				}
				// Nothing more happens when every event arrives again.
				for _, e := range s.events {
					if h := applyEvent(p, e, SourceWebhook, at(200)); len(h) > 0 {
						t.Fatalf("order %v: resending %s wrote %+v", order, e.typ, h)
					}
				}
			})
		})
	}
}

// permute calls f with every permutation of 0..n-1.
func permute(n int, f func([]int)) {
	a := make([]int, n)
	for i := range a {
		a[i] = i
	}
	var rec func(k int)
	rec = func(k int) {
		if k == n {
			f(slices.Clone(a))
			return
		}
		for i := k; i < n; i++ {
			a[k], a[i] = a[i], a[k]
			rec(k + 1)
			a[k], a[i] = a[i], a[k]
		}
	}
	rec(0)
}

// An API refund's confirmation is written as the move from the status before
// its reservation (defect 13 of the money issue): never "partially_refunded
// -> partially_refunded".
func TestStateMachineAPIRefundHistoryFromTo(t *testing.T) {
	p := newTestPayment(MethodIntent)
	applyEvent(p, piEv("succeeded", "pi_1", "ch_1"), SourceWebhook, at(1))
	p.Refunds = append(p.Refunds, apiRefund("rf_api", 300, 2))
	p.derive()
	if p.Status != StatusPartiallyRefunded || p.AmountRefunded != 300 {
		t.Fatalf("reserved: %s %d", p.Status, p.AmountRefunded)
	}
	hist := applyEvent(p, refundEv("refund.created", "re_1", "ch_1", "pi_1", "pending", 300, 3, "rf_api"), SourceAPI, at(3))
	want := []HistoryEntry{{PaymentID: "pay_1", PaymentIntentID: "pi_1", EventType: HistoryRefundCreated, FromStatus: StatusSucceeded,
		ToStatus: StatusPartiallyRefunded, Amount: 300, Currency: "usd", Source: SourceAPI, CreatedAt: at(3),
		Data: []byte(`{"reason":"","refundAmount":300,"refundId":"re_1","refundStatus":"pending"}`)}}
	if diff := cmp.Diff(want, hist); diff != "" {
		t.Fatalf("history (-want +got):\n%s", diff)
	}
}
