package paygate

import (
	"slices"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// The state machine. A payment's status is not moved by each event; it is
// derived from everything known about the payment: its attempts (each
// PaymentIntent with its charges and the Checkout Session that opened it),
// its refunds and its disputes. Each of those only moves up its own ranks,
// so the payment that a set of events leads to does not depend on the order
// they arrive in, and an event that teaches nothing new changes nothing.

// ChargeStatus is the outcome of one try to pay (one charge) of an attempt.
type ChargeStatus string

// The charge statuses, ranked: a charge only moves up.
const (
	ChargeProcessing ChargeStatus = "processing" // a delayed method (bank debit) not yet settled
	ChargeFailed     ChargeStatus = "failed"
	ChargeSucceeded  ChargeStatus = "succeeded"
)

var chargeRank = map[ChargeStatus]int{ChargeProcessing: 1, ChargeFailed: 2, ChargeSucceeded: 3}

// Session states of an attempt opened by a Checkout Session, ranked.
const (
	sessionOpen        = ""
	sessionExpired     = "expired"
	sessionUnpaid      = "unpaid" // completed; a delayed method is processing
	sessionAsyncFailed = "async_failed"
	sessionPaid        = "paid"
)

var sessionRank = map[string]int{sessionOpen: 0, sessionExpired: 1, sessionUnpaid: 2, sessionAsyncFailed: 3, sessionPaid: 4}

// ChargeState is one charge of an attempt. ID is empty for an outcome
// reported without a charge (a PaymentIntent event with no latest_charge).
type ChargeState struct {
	ID     string       `json:"id,omitempty"`
	Status ChargeStatus `json:"status"`
	// Refunded is Stripe's amount_refunded of the charge as of RefundedAt
	// (unix seconds), from its newest charge.refunded.
	Refunded   int64 `json:"refunded,omitempty"`
	RefundedAt int64 `json:"refundedAt,omitempty"`
	// WasProcessing: the charge was seen processing (a delayed method, a
	// bank debit) whatever it became.
	WasProcessing bool `json:"wasProcessing,omitempty"`
}

// Attempt is one try to pay a payment at Stripe: a PaymentIntent, and the
// Checkout Session that opened it for payment links and checkout. A payment
// link opens a new session and PaymentIntent for every visit, so a payment
// may have several; every attempt's ids find the payment, and the attempt
// that succeeded owns the payment's PaymentIntentID and ChargeID.
type Attempt struct {
	PaymentIntentID   string `json:"pi,omitempty"`
	CheckoutSessionID string `json:"cs,omitempty"`
	// Created is Stripe's creation time of the PaymentIntent (unix
	// seconds), 0 when not known: it orders attempts for ownership.
	Created  int64         `json:"created,omitempty"`
	Charges  []ChargeState `json:"charges,omitempty"`
	Canceled bool          `json:"canceled,omitempty"` // the PaymentIntent was canceled
	Session  string        `json:"session,omitempty"`  // the session's state (session* constants)
	// CompletionDue: the session's delayed payment was reported
	// (checkout.session.async_payment_*) before its completion, which is
	// still to be announced when checkout.session.completed comes.
	CompletionDue bool `json:"completionDue,omitempty"`
	// Latest is the PaymentIntent's latest_charge as of its newest event
	// (at LatestAt, Stripe's unix seconds): of several declined tries, the
	// one to show.
	Latest   string `json:"latest,omitempty"`
	LatestAt int64  `json:"latestAt,omitempty"`
	// Email is the customer email the session collected.
	Email string `json:"email,omitempty"`
}

// status is what this attempt alone says of the payment.
func (a *Attempt) status() Status {
	var succeeded, processing, failed bool
	for _, c := range a.Charges {
		switch c.Status {
		case ChargeSucceeded:
			succeeded = true
		case ChargeProcessing:
			processing = true
		case ChargeFailed:
			failed = true
		}
	}
	switch {
	case succeeded || a.Session == sessionPaid:
		return StatusSucceeded
	case a.Session == sessionExpired:
		return StatusExpired
	case a.Canceled:
		return StatusCanceled
	case a.Session == sessionAsyncFailed:
		return StatusFailed
	case processing:
		// A charge still processing wins over an earlier declined one: the
		// customer tried again with a delayed method.
		for _, c := range a.Charges {
			if c.Status == ChargeProcessing && !a.chargeFailed(c.ID) {
				return StatusProcessing
			}
		}
		return StatusFailed
	case a.Session == sessionUnpaid:
		// Completed, its delayed payment processing — unless the charge
		// that was processing has failed since (the session's
		// async_payment_failed may come later than the charge's failure).
		if slices.ContainsFunc(a.Charges, func(c ChargeState) bool { return c.WasProcessing && c.Status == ChargeFailed }) {
			return StatusFailed
		}
		return StatusProcessing
	case failed:
		return StatusFailed
	}
	return StatusPending
}

func (a *Attempt) chargeFailed(id string) bool {
	for _, c := range a.Charges {
		if c.ID == id && c.Status == ChargeFailed {
			return true
		}
	}
	return false
}

// setCharge records a charge's outcome; a charge's status only moves up.
// It reports whether anything changed.
func (a *Attempt) setCharge(id string, st ChargeStatus) bool {
	for i := range a.Charges {
		if c := &a.Charges[i]; c.ID == id {
			changed := false
			if st == ChargeProcessing && !c.WasProcessing {
				c.WasProcessing, changed = true, true
			}
			if chargeRank[st] > chargeRank[c.Status] {
				c.Status, changed = st, true
			}
			return changed
		}
	}
	a.Charges = append(a.Charges, ChargeState{ID: id, Status: st, WasProcessing: st == ChargeProcessing})
	return true
}

// chargeID is the attempt's charge to show: the one that succeeded, else
// one still processing, else the newest try (Latest) among those declined.
func (a *Attempt) chargeID() string {
	best, rank := "", -1
	for _, c := range a.Charges {
		r := map[ChargeStatus]int{ChargeSucceeded: 3, ChargeProcessing: 2, ChargeFailed: 1}[c.Status]
		if c.ID != "" && (r > rank || (r == rank && best != a.Latest && (c.ID == a.Latest || c.ID > best))) {
			best, rank = c.ID, r
		}
	}
	return best
}

// disputeRank orders dispute statuses: a dispute only moves up. An inquiry
// (warning_*) ranks below a chargeback, since the issuer may escalate one to
// the other; the outcomes rank highest.
var disputeRank = map[string]int{
	"warning_needs_response": 0, "warning_under_review": 1, "warning_closed": 2,
	"needs_response": 3, "under_review": 4,
	"won": 5, "lost": 5, "charge_refunded": 5, "prevented": 5,
}

// Dispute is a chargeback on one of the payment's charges.
type Dispute struct {
	ID       string `json:"id"`
	ChargeID string `json:"chargeId"`
	Amount   int64  `json:"amount"`
	Reason   string `json:"reason"`
	Status   string `json:"status"`
}

// closed reports whether the dispute has its final outcome.
func (d *Dispute) closed() bool { return d.Status == "warning_closed" || disputeRank[d.Status] == 5 }

// attempt finds the attempt a PaymentIntent or Checkout Session id names,
// merging two attempts when an object links them, or adds one.
func (p *Payment) attempt(pi, cs string) *Attempt {
	if pi == "" && cs == "" {
		return nil
	}
	byPI, byCS := -1, -1
	for i := range p.Attempts {
		if pi != "" && p.Attempts[i].PaymentIntentID == pi {
			byPI = i
		}
		if cs != "" && p.Attempts[i].CheckoutSessionID == cs {
			byCS = i
		}
	}
	switch {
	case byPI >= 0 && byCS >= 0 && byPI != byCS:
		a, b := &p.Attempts[byPI], p.Attempts[byCS]
		a.CheckoutSessionID = cs
		for _, c := range b.Charges {
			a.setCharge(c.ID, c.Status)
			if c.WasProcessing {
				a.setCharge(c.ID, ChargeProcessing)
			}
		}
		a.Canceled = a.Canceled || b.Canceled
		a.CompletionDue = a.CompletionDue || b.CompletionDue
		if b.LatestAt > a.LatestAt {
			a.Latest, a.LatestAt = b.Latest, b.LatestAt
		}
		if sessionRank[b.Session] > sessionRank[a.Session] {
			a.Session = b.Session
		}
		a.Created = max(a.Created, b.Created)
		p.Attempts = slices.Delete(p.Attempts, byCS, byCS+1)
		return p.attempt(pi, cs)
	case byPI >= 0:
		p.Attempts[byPI].CheckoutSessionID = cmpOr(p.Attempts[byPI].CheckoutSessionID, cs)
		return &p.Attempts[byPI]
	case byCS >= 0:
		p.Attempts[byCS].PaymentIntentID = cmpOr(p.Attempts[byCS].PaymentIntentID, pi)
		return &p.Attempts[byCS]
	}
	p.Attempts = append(p.Attempts, Attempt{PaymentIntentID: pi, CheckoutSessionID: cs})
	return &p.Attempts[len(p.Attempts)-1]
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// legacyAttempt gives a payment stored before attempts were recorded one
// attempt that says what its stored status says.
func (p *Payment) legacyAttempt() {
	if len(p.Attempts) > 0 || p.Status == StatusPending {
		return
	}
	a := Attempt{PaymentIntentID: p.PaymentIntentID, CheckoutSessionID: p.CheckoutSessionID}
	switch p.Status {
	case StatusSucceeded, StatusPartiallyRefunded, StatusRefunded:
		a.Charges = []ChargeState{{ID: p.ChargeID, Status: ChargeSucceeded}}
	case StatusProcessing:
		a.Charges = []ChargeState{{ID: p.ChargeID, Status: ChargeProcessing}}
	case StatusFailed:
		a.Charges = []ChargeState{{ID: p.ChargeID, Status: ChargeFailed}}
	case StatusCanceled:
		a.Canceled = true
	case StatusExpired:
		a.Session = sessionExpired
	}
	p.Attempts = []Attempt{a}
}

// derive recomputes everything that follows from the attempts, refunds and
// disputes: the status, the amount refunded, and which attempt owns the
// payment's PaymentIntentID and ChargeID.
func (p *Payment) derive() {
	p.legacyAttempt()
	p.AmountRefunded = p.refundedAmount()
	p.Status = p.statusWith(p.AmountRefunded)
	if a := p.owner(); a != nil {
		if a.PaymentIntentID != "" {
			p.PaymentIntentID = a.PaymentIntentID
		}
		if c := a.chargeID(); c != "" || a.PaymentIntentID != "" {
			// The owner's charge, "" until it is known: never the
			// charge of another attempt's PaymentIntent.
			p.ChargeID = c
		}
		if a.CheckoutSessionID != "" && (p.Method == MethodLink || p.CheckoutSessionID == "") {
			p.CheckoutSessionID = a.CheckoutSessionID
		}
	}
	if e := p.learnedEmail(); e != "" && (p.CustomerEmail == "" || slices.ContainsFunc(p.Attempts, func(a Attempt) bool { return a.Email == p.CustomerEmail })) {
		// An email given when the payment was made stays; one learned
		// from a session is the paying visit's, whatever order the
		// sessions' events came in.
		p.CustomerEmail = e
	}
}

// learnedEmail is the email a Checkout Session of the payment collected:
// the owner attempt's, else the newest attempt's that has one.
func (p *Payment) learnedEmail() string {
	if a := p.owner(); a != nil && a.Email != "" {
		return a.Email
	}
	var best *Attempt
	for i := range p.Attempts {
		a := &p.Attempts[i]
		if a.Email != "" && (best == nil || a.Created > best.Created || a.Created == best.Created && a.CheckoutSessionID > best.CheckoutSessionID) {
			best = a
		}
	}
	if best == nil {
		return ""
	}
	return best.Email
}

// statusWith derives the status from the attempts, with refunded as the
// amount refunded.
func (p *Payment) statusWith(refunded int64) Status {
	has := map[Status]bool{}
	for i := range p.Attempts {
		s := p.Attempts[i].status()
		if p.Method == MethodCheckout && s == StatusCanceled {
			// Checkout's PaymentIntent is canceled only by its session's
			// expiry (Stripe refuses to cancel it otherwise): whichever of
			// the two events comes first, the payment expired.
			s = StatusExpired
		}
		if p.Method == MethodLink && (s == StatusCanceled || s == StatusExpired) {
			// An abandoned visit of a link does not end it: the link can
			// still be paid. What it tried still shows.
			if !slices.ContainsFunc(p.Attempts[i].Charges, func(c ChargeState) bool { return c.Status == ChargeFailed }) {
				continue
			}
			s = StatusFailed
		}
		has[s] = true
	}
	st := StatusPending
	for _, s := range []Status{StatusSucceeded, StatusProcessing, StatusExpired, StatusCanceled, StatusFailed} {
		if has[s] {
			st = s
			break
		}
	}
	if st != StatusSucceeded && (refunded > 0 || len(p.Disputes) > 0) {
		st = StatusSucceeded // a refund or dispute implies the payment succeeded
	}
	if st == StatusSucceeded {
		switch {
		case refunded >= p.Amount:
			st = StatusRefunded
		case refunded > 0:
			st = StatusPartiallyRefunded
		}
	}
	return st
}

// owner is the attempt whose ids the payment shows: the one that
// succeeded, else one processing, else the newest; ties go to the earliest
// created (then the smallest id), whatever order events came in.
func (p *Payment) owner() *Attempt {
	var best *Attempt
	rank := func(a *Attempt) int {
		switch a.status() {
		case StatusSucceeded:
			return 3
		case StatusProcessing:
			return 2
		}
		return 1
	}
	for i := range p.Attempts {
		a := &p.Attempts[i]
		if a.PaymentIntentID == "" && a.CheckoutSessionID == "" {
			continue
		}
		switch {
		case best == nil, rank(a) > rank(best):
			best = a
		case rank(a) < rank(best):
		case rank(a) == 3 || rank(a) == 2:
			if a.Created < best.Created || (a.Created == best.Created && a.PaymentIntentID < best.PaymentIntentID) {
				best = a
			}
		default: // neither succeeded nor processing: the newest try
			if a.Created > best.Created || (a.Created == best.Created && a.PaymentIntentID > best.PaymentIntentID) {
				best = a
			}
		}
	}
	return best
}

// refundedAmount is the sum of the refunds that count (pending or
// succeeded), plus what Stripe reported refunded on the charge
// (charge.refunded) that no known refund explains (see inSnapshot).
func (p *Payment) refundedAmount() int64 {
	var sum, explained int64
	for _, r := range p.Refunds {
		if r.Status.counts() {
			sum += r.Amount
		}
		if p.inSnapshot(r) {
			explained += r.Amount
		}
	}
	return sum + p.unexplained(explained)
}

// unexplained is the part of Stripe's refunded-amount snapshot that the
// known refunds (explained of it) do not account for: refunds made outside
// this service and not yet known one by one.
func (p *Payment) unexplained(explained int64) int64 {
	return max(0, p.StripeAmountRefunded-explained)
}

// inSnapshot reports whether Stripe's cumulative amount_refunded, a snapshot
// at StripeRefundedAt, includes refund r: r was created (at Stripe, or
// reserved here) by then, and had not failed before it — Stripe's figure
// leaves out refunds that failed, but a refund that fails later stays in an
// older snapshot. A reservation Stripe refused was never at Stripe. Stripe's
// times are whole seconds: a refund of the snapshot's second may be in it
// or made just after it, so it is taken to be in it only as far as the
// snapshot's amount has room for it after the refunds before that second
// (in the order they were made): an API refund made in the second of a
// Dashboard refund's snapshot does not "explain" it away.
func (p *Payment) inSnapshot(r Refund) bool {
	if !p.mayBeInSnapshot(r) {
		return false
	}
	at := p.StripeRefundedAt
	if r.CreatedAt.Truncate(time.Second).Before(at) {
		return true
	}
	var before int64 // what the refunds that come before r in the snapshot take of it
	for _, o := range p.Refunds {
		if o.ID == r.ID || !p.mayBeInSnapshot(o) {
			continue
		}
		if ot := o.CreatedAt.Truncate(time.Second); ot.Before(at) || o.CreatedAt.Before(r.CreatedAt) || o.CreatedAt.Equal(r.CreatedAt) && o.ID < r.ID {
			before += o.Amount
		}
	}
	return before+r.Amount <= p.StripeAmountRefunded
}

// mayBeInSnapshot is inSnapshot without the room rule.
func (p *Payment) mayBeInSnapshot(r Refund) bool {
	at := p.StripeRefundedAt
	if p.StripeAmountRefunded == 0 || r.CreatedAt.Truncate(time.Second).After(at) {
		return false
	}
	if r.Status.counts() {
		return true
	}
	return r.StripeRefundID != "" && !r.UpdatedAt.Truncate(time.Second).Before(at)
}

// snapshot records Stripe's amount_refunded of a charge at a time (the
// newest one wins; of one second, the larger). Each charge keeps its own:
// a payment link paid twice has two. The payment's StripeAmountRefunded is
// their sum, StripeRefundedAt the newest. It reports whether anything
// changed.
func (p *Payment) snapshot(charge string, amount int64, at time.Time) bool {
	var c *ChargeState
	for i := range p.Attempts {
		for j := range p.Attempts[i].Charges {
			if charge != "" && p.Attempts[i].Charges[j].ID == charge {
				c = &p.Attempts[i].Charges[j]
			}
		}
	}
	if c == nil { // a charge of no known attempt: the payment's own figures
		if at.After(p.StripeRefundedAt) || (at.Equal(p.StripeRefundedAt) && amount > p.StripeAmountRefunded) {
			changed := p.StripeAmountRefunded != amount || !p.StripeRefundedAt.Equal(at)
			p.StripeAmountRefunded, p.StripeRefundedAt = amount, at
			return changed
		}
		return false
	}
	sec := at.Unix()
	if sec < c.RefundedAt || (sec == c.RefundedAt && amount <= c.Refunded) {
		return false
	}
	c.Refunded, c.RefundedAt = amount, sec
	var sum int64
	var newest int64
	for _, a := range p.Attempts {
		for _, ch := range a.Charges {
			sum += ch.Refunded
			newest = max(newest, ch.RefundedAt)
		}
	}
	p.StripeAmountRefunded, p.StripeRefundedAt = sum, time.Unix(newest, 0).UTC()
	return true
}

// shownRefunded is the amount refunded the merchant is told of: without
// refunds reserved here that Stripe has not confirmed (those are announced
// when confirmed).
func (p *Payment) shownRefunded() int64 {
	n := p.AmountRefunded
	for _, r := range p.Refunds {
		if r.StripeRefundID == "" && r.Status.counts() {
			n -= r.Amount
		}
	}
	return max(n, 0)
}

// eventObject is an event's object with the event's type and time.
type eventObject struct {
	id      string // evt_ id; empty for a status read, reconcile or API call
	typ     string
	created time.Time
	// asOf, for a read of Stripe's current state (a status read,
	// reconciliation's sweep), is when the read began: what it shows is
	// at least that new.
	asOf time.Time
	obj  *stripeObject
}

// intentCharge is the charge a PaymentIntent object names: its
// latest_charge, else the declined charge of its last_payment_error, else
// (API versions before 2022-11-15) the newest of its charges list.
func (o *stripeObject) intentCharge() string {
	if o.LatestCharge != "" {
		return string(o.LatestCharge)
	}
	if o.LastPaymentError != nil && o.LastPaymentError.Charge != "" {
		return o.LastPaymentError.Charge
	}
	if o.Charges != nil && len(o.Charges.Data) > 0 {
		return o.Charges.Data[0].ID
	}
	return ""
}

// applyEvent is the state machine: it applies one event's object to the
// locked payment and returns the history entries for what changed (none when
// nothing did). Applying any set of events gives the same payment whatever
// their order.
func applyEvent(p *Payment, e eventObject, source string, now time.Time) []HistoryEntry {
	p.legacyAttempt()
	o := e.obj
	fromShown := p.statusShown()
	beforeRefunded := p.shownRefunded()
	beforeRefunds := refundsByID(p)
	beforeDisputes := slices.Clone(p.Disputes)
	changed := false
	set := func(c bool) { changed = changed || c }
	var sessionCompleted string // a session that completed with this event

	switch e.typ {
	case "payment_intent.succeeded", "payment_intent.processing", "payment_intent.canceled", "payment_intent.payment_failed":
		a := p.attempt(o.ID, "")
		if o.Created > 0 && a.Created != o.Created {
			a.Created, changed = o.Created, true
		}
		charge := o.intentCharge()
		if at := e.created.Unix(); e.created.IsZero() {
			// A read of Stripe's current state has no event time: its
			// charge is the latest as of when the read began, unless an
			// event of that second or later named another (Stripe's times
			// are whole seconds: of one second, the event may be the
			// newer, and the next read settles it).
			asOf := e.asOf
			if asOf.IsZero() {
				asOf = now
			}
			if charge != "" && a.Latest != charge && asOf.Unix() > a.LatestAt {
				a.Latest, a.LatestAt, changed = charge, asOf.Unix(), true
			}
		} else if charge != "" && at >= a.LatestAt && (a.Latest != charge || a.LatestAt != at) {
			a.Latest, a.LatestAt, changed = charge, at, true
		}
		switch e.typ {
		case "payment_intent.succeeded":
			set(a.setCharge(charge, ChargeSucceeded))
		case "payment_intent.processing":
			set(a.setCharge(charge, ChargeProcessing))
		case "payment_intent.payment_failed":
			set(a.setCharge(charge, ChargeFailed))
		case "payment_intent.canceled":
			if !a.Canceled {
				a.Canceled, changed = true, true
			}
			if charge != "" {
				// A canceled PaymentIntent's charge did not pay.
				set(a.setCharge(charge, ChargeFailed))
			}
		}

	case "checkout.session.completed", "checkout.session.async_payment_succeeded", "checkout.session.async_payment_failed", "checkout.session.expired":
		a := p.attempt(string(o.PaymentIntent), o.ID)
		st := map[string]string{
			"checkout.session.async_payment_succeeded": sessionPaid,
			"checkout.session.async_payment_failed":    sessionAsyncFailed,
			"checkout.session.expired":                 sessionExpired,
		}[e.typ]
		if e.typ == "checkout.session.completed" {
			st = sessionUnpaid
			if o.PaymentStatus == "paid" || o.PaymentStatus == "no_payment_required" {
				st = sessionPaid
			}
			// Announced once per session: when it moves on from open (or
			// expired), or when an async_payment event came first.
			if a.Session == sessionOpen || a.Session == sessionExpired || a.CompletionDue {
				sessionCompleted = o.ID
				a.CompletionDue, changed = false, true
			}
		} else if (st == sessionPaid || st == sessionAsyncFailed) && (a.Session == sessionOpen || a.Session == sessionExpired) {
			a.CompletionDue, changed = true, true // Stripe delivered it late, or will
		}
		if sessionRank[st] > sessionRank[a.Session] {
			a.Session, changed = st, true
		}
		if o.CustomerDetails != nil && o.CustomerDetails.Email != "" && a.Email != o.CustomerDetails.Email {
			a.Email, changed = o.CustomerDetails.Email, true // the payment's, from derive
		}

	case "charge.refunded", "charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed",
		"charge.refund.updated", "refund.created", "refund.updated", "refund.failed":
		// Each of these implies the charge it names succeeded.
		chargeID, pi := o.ID, string(o.PaymentIntent)
		if o.Object != "charge" {
			chargeID = string(o.Charge)
		}
		if a := p.attempt(pi, ""); a != nil && chargeID != "" {
			set(a.setCharge(chargeID, ChargeSucceeded))
		} else if a == nil && chargeID != "" && len(p.Attempts) == 1 {
			set(p.Attempts[0].setCharge(chargeID, ChargeSucceeded))
		}
		switch {
		case e.typ == "charge.refunded":
			set(p.snapshot(o.ID, o.AmountRefunded, e.created))
			if o.Refunds != nil { // API versions before 2022-11-15 embed the refunds
				for i := range o.Refunds.Data {
					set(mergeRefund(p, &o.Refunds.Data[i], e.created, now))
				}
			}
		case strings.HasPrefix(e.typ, "charge.dispute."):
			set(mergeDispute(p, o))
		case o.Object == "refund":
			set(mergeRefund(p, o, e.created, now))
		}
	}

	p.derive()
	hist := p.changes(fromShown, beforeRefunded, beforeRefunds, beforeDisputes, sessionCompleted, e, o, source, now)
	if len(hist) > 0 || changed {
		p.UpdatedAt = now
	}
	return hist
}

// statusShown is the status the merchant is told of (history, callbacks):
// the payment without refunds reserved here that Stripe has not confirmed.
func (p *Payment) statusShown() Status {
	if n := p.shownRefunded(); n != p.AmountRefunded {
		return p.statusWith(n)
	}
	return p.Status
}

// changes turns what an event changed into history entries: a move of the
// payment's status, each refund that became known or changed status, each
// dispute that became known or moved, a completed session. The first entry
// carries the move from the status before; the others show the status after.
func (p *Payment) changes(from Status, beforeShownRefunded int64, beforeRefunds map[string]Refund, beforeDisputes []Dispute,
	sessionCompleted string, e eventObject, o *stripeObject, source string, now time.Time) []HistoryEntry {
	var hist []HistoryEntry
	add := func(t HistoryType, amount int64, data map[string]any) {
		h := p.history(t, from, source, amount, data, now)
		h.StripeEventID = e.id
		hist = append(hist, h)
		from = h.ToStatus
	}
	if sessionCompleted != "" {
		// The session's completion is its own entry, once per session,
		// and carries the move of the status it causes.
		add(HistoryCheckoutCompleted, p.Amount, map[string]any{"sessionId": sessionCompleted, "paymentStatus": o.PaymentStatus})
	} else if baseStatus(p.statusShown()) != baseStatus(from) {
		data := map[string]any{"stripeStatus": o.Status}
		if p.Status == StatusFailed && o.LastPaymentError != nil {
			data["failureCode"] = o.LastPaymentError.Code
			data["declineCode"] = o.LastPaymentError.DeclineCode
			data["failureMessage"] = o.LastPaymentError.Message
		}
		if o.Object == "checkout.session" {
			data["sessionId"] = o.ID
			data["paymentStatus"] = o.PaymentStatus
		} else if t := statusHistoryType(baseStatus(p.Status)); t == HistoryCheckoutExpired || t == HistoryCheckoutCompleted {
			// Reported by the PaymentIntent (a Checkout PaymentIntent is
			// canceled by its session's expiry): the checkout fields come
			// from its session, as when the session's own event comes
			// first (API.md §4).
			sid := p.CheckoutSessionID
			for _, a := range p.Attempts {
				if a.PaymentIntentID == o.ID && a.CheckoutSessionID != "" {
					sid = a.CheckoutSessionID
				}
			}
			if sid != "" {
				data["sessionId"] = sid
				data["paymentStatus"] = "unpaid"
			}
		}
		add(statusHistoryType(baseStatus(p.Status)), p.Amount, data)
	}
	// The part of Stripe's snapshot announced before without a refund of
	// its own (a refund_created with no id): a refund that now turns out
	// to be part of it was announced already.
	var announced int64 = beforeShownRefunded
	for _, r := range beforeRefunds {
		if r.StripeRefundID != "" && r.Status.counts() {
			announced -= r.Amount
		}
	}
	refundEntries := false
	for _, r := range p.Refunds {
		old, existed := beforeRefunds[r.ID]
		data := map[string]any{"refundId": r.StripeRefundID, "refundStatus": r.Status, "refundAmount": r.Amount, "reason": r.Reason}
		failed := r.Status == RefundFailed || r.Status == RefundCanceled
		// A reservation failed here without Stripe's word that Stripe shows
		// made after all is new to the announced figures, as a refund
		// known for the first time is.
		revived := existed && old.Status == RefundFailed && old.StripeRefundID == "" && r.Status.counts()
		switch {
		case (!existed || revived) && announced >= r.Amount && p.inSnapshot(r):
			// Known at last by its own event: an update of what was
			// announced (and, if it failed since, its failure).
			announced -= r.Amount
			t := HistoryRefundUpdated
			if failed {
				t = HistoryRefundFailed
			}
			add(t, r.Amount, data)
		case !existed || (old.StripeRefundID == "" && r.StripeRefundID != ""):
			// Known for the first time (made elsewhere, or a reservation
			// Stripe confirmed): created; seen first as failed, a failure.
			t := HistoryRefundCreated
			if failed {
				t = HistoryRefundFailed
			}
			add(t, r.Amount, data)
		case old.Status != r.Status:
			t := HistoryRefundUpdated
			if failed {
				t = HistoryRefundFailed
			}
			add(t, r.Amount, data)
		default:
			continue
		}
		refundEntries = true
	}
	if shown := p.shownRefunded(); !refundEntries && shown != beforeShownRefunded {
		// Stripe's snapshot moved and no known refund explains it: a
		// refund made outside this service, seen only on the charge (or,
		// when it goes down, such a refund failed).
		t, delta := HistoryRefundCreated, shown-beforeShownRefunded
		if delta < 0 {
			t, delta = HistoryRefundFailed, -delta
		}
		add(t, delta, map[string]any{"refundId": "", "refundStatus": map[bool]RefundStatus{true: RefundSucceeded, false: RefundFailed}[t == HistoryRefundCreated],
			"refundAmount": delta, "chargeId": p.ChargeID, "stripeAmountRefunded": p.StripeAmountRefunded})
	}
	for _, d := range p.Disputes {
		i := slices.IndexFunc(beforeDisputes, func(b Dispute) bool { return b.ID == d.ID })
		data := map[string]any{"disputeId": d.ID, "disputeAmount": d.Amount, "disputeReason": d.Reason, "disputeStatus": d.Status, "chargeId": d.ChargeID}
		if i < 0 {
			add(HistoryDisputeCreated, d.Amount, data)
		}
		if (i >= 0 && beforeDisputes[i].Status != d.Status) || (i < 0 && d.closed()) {
			t := HistoryDisputeUpdated
			if d.closed() {
				t = HistoryDisputeClosed
			}
			add(t, d.Amount, data)
		}
	}
	return hist
}

// baseStatus is s with the refund-derived statuses folded into succeeded.
func baseStatus(s Status) Status {
	if s == StatusPartiallyRefunded || s == StatusRefunded {
		return StatusSucceeded
	}
	return s
}

// refundRank orders refund statuses; a refund only moves up. failed ranks
// above succeeded because Stripe reports refunds that fail after succeeding.
var refundRank = map[RefundStatus]int{RefundPending: 0, RefundSucceeded: 1, RefundCanceled: 2, RefundFailed: 3}

// mergeRefund records a Stripe refund object on p: it matches our refund by
// paygate_refund_id or the re_ id, or adds one made outside this service.
// It reports whether anything changed.
// A refund's UpdatedAt is when its status last changed: the event's time
// when an event says so (it orders a failure against Stripe's snapshots),
// else now.
func mergeRefund(p *Payment, o *stripeObject, at, now time.Time) bool {
	var r *Refund
	for i := range p.Refunds {
		if o.Metadata[metadataRefundKey] != "" && p.Refunds[i].ID == o.Metadata[metadataRefundKey] {
			r = &p.Refunds[i]
			break
		}
	}
	for i := range p.Refunds {
		if r == nil && o.ID != "" && p.Refunds[i].StripeRefundID == o.ID {
			r = &p.Refunds[i]
		}
	}
	st := refundStatus(stripe.RefundStatus(o.Status))
	created := now
	if o.Created > 0 {
		created = time.Unix(o.Created, 0).UTC()
	}
	if at.IsZero() {
		at = now
	}
	if r == nil {
		p.Refunds = append(p.Refunds, Refund{ID: newID("rf"), StripeRefundID: o.ID, Amount: o.Amount, Status: st, Reason: o.Reason, CreatedAt: created, UpdatedAt: at})
		return true
	}
	// A failure with no re_ id was decided here, without Stripe's word:
	// the call seemed refused, or settlement found no refund at Stripe.
	inferredFailure := r.Status == RefundFailed && r.StripeRefundID == ""
	changed := false
	if r.StripeRefundID == "" && o.ID != "" {
		// Confirmed: from now on the refund is dated by Stripe, which is
		// what orders it against Stripe's refunded-amount snapshots. A
		// reservation made in Stripe's second keeps its own finer time:
		// it is what orders the refunds made here within one second
		// (Stripe's times are whole seconds; see inSnapshot).
		if !r.CreatedAt.Truncate(time.Second).Equal(created) {
			r.CreatedAt = created
		}
		r.StripeRefundID, changed = o.ID, true
	}
	switch {
	case refundRank[st] > refundRank[r.Status]:
		r.Status, changed = st, true
	case inferredFailure && o.ID != "" && st != RefundFailed:
		// Stripe shows the refund it made under this reservation's id
		// after all (an earlier attempt of a call answered 4xx, or a call
		// in flight while reconciliation found nothing): its object is
		// the truth.
		r.Status, changed = st, true
	}
	if changed {
		r.UpdatedAt = at
	}
	return changed
}

// mergeDispute records a Stripe dispute object on p and reports whether
// anything changed. A dispute's status only moves up its ranks.
func mergeDispute(p *Payment, o *stripeObject) bool {
	for i := range p.Disputes {
		d := &p.Disputes[i]
		if d.ID != o.ID {
			continue
		}
		if disputeRank[o.Status] > disputeRank[d.Status] || (disputeRank[o.Status] == disputeRank[d.Status] && d.Status != o.Status && !d.closed()) {
			d.Status, d.Amount = o.Status, cmpOrInt(o.Amount, d.Amount)
			d.Reason = cmpOr(o.Reason, d.Reason)
			return true
		}
		return false
	}
	p.Disputes = append(p.Disputes, Dispute{ID: o.ID, ChargeID: string(o.Charge), Amount: o.Amount, Reason: o.Reason, Status: o.Status})
	return true
}

func cmpOrInt(a, b int64) int64 {
	if a != 0 {
		return a
	}
	return b
}

func refundsByID(p *Payment) map[string]Refund {
	m := make(map[string]Refund, len(p.Refunds))
	for _, r := range p.Refunds {
		m[r.ID] = r
	}
	return m
}

// StripeIDs are every Stripe id that names the payment: its payment link,
// and every attempt's Checkout Session, PaymentIntent and charges. A Store
// finds the payment by any of them.
func (p *Payment) StripeIDs() []string {
	var ids []string
	add := func(id string) {
		if id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	add(p.PaymentLinkID)
	add(p.CheckoutSessionID)
	add(p.PaymentIntentID)
	add(p.ChargeID)
	for _, a := range p.Attempts {
		add(a.CheckoutSessionID)
		add(a.PaymentIntentID)
		for _, c := range a.Charges {
			add(c.ID)
		}
	}
	for _, d := range p.Disputes {
		add(d.ChargeID)
	}
	return ids
}

// clone is a deep copy of p, for trying a change without making it.
func (p *Payment) clone() *Payment {
	c := *p
	c.Refunds = slices.Clone(p.Refunds)
	c.Disputes = slices.Clone(p.Disputes)
	c.Attempts = make([]Attempt, len(p.Attempts))
	for i, a := range p.Attempts {
		a.Charges = slices.Clone(a.Charges)
		c.Attempts[i] = a
	}
	return &c
}
