package sandbox

import (
	"fmt"
	"strings"
	"time"
)

// Card is a test payment method and what it does.
type Card struct {
	Number     string // card number, or bank account number for a bank debit
	Brand      string // card brand ("" for a bank debit)
	Label      string // what the pages show
	Decline    string // decline code; "" succeeds
	ThreeDS    bool   // requires 3D Secure authentication
	Dispute    bool   // disputed right after it succeeds
	RefundMode string // "pending": refunds start pending; "fail": refunds fail after succeeding
	BankDebit  bool   // us_bank_account: processing, settles later
	DebitFails bool   // the bank debit fails when it settles
}

// Cards are the test payment methods the sandbox knows, by card number (or
// a name for bank debits). The pages show them; payment_method accepts the
// number, "pm_card_<number>", or the Stripe test token in Tokens.
var Cards = []Card{
	{Number: "4242424242424242", Brand: "visa", Label: "Visa: succeeds"},
	{Number: "4000000000000002", Brand: "visa", Label: "Visa: declined (generic_decline)", Decline: "generic_decline"},
	{Number: "4000000000009995", Brand: "visa", Label: "Visa: declined (insufficient_funds)", Decline: "insufficient_funds"},
	{Number: "4000002500003155", Brand: "visa", Label: "Visa: 3D Secure required", ThreeDS: true},
	{Number: "4000002760003184", Brand: "visa", Label: "Visa: 3D Secure always", ThreeDS: true},
	{Number: "4000000000000259", Brand: "visa", Label: "Visa: succeeds, then disputed", Dispute: true},
	{Number: "4000000000007726", Brand: "visa", Label: "Visa: refunds start pending", RefundMode: "pending"},
	{Number: "4000000000005126", Brand: "visa", Label: "Visa: refunds fail after succeeding", RefundMode: "fail"},
	{Number: "000123456789", Brand: "", Label: "Bank debit: settles", BankDebit: true},
	{Number: "000111111113", Brand: "", Label: "Bank debit: fails", BankDebit: true, DebitFails: true},
}

// Tokens maps Stripe's test payment method ids to card numbers.
var Tokens = map[string]string{
	"pm_card_visa":                            "4242424242424242",
	"pm_card_chargeDeclined":                  "4000000000000002",
	"pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
	"pm_card_authenticationRequiredOnSetup":   "4000002500003155",
	"pm_card_authenticationRequired":          "4000002760003184",
	"pm_card_threeDSecure2Required":           "4000002760003184",
	"pm_card_createDispute":                   "4000000000000259",
	"pm_card_pendingRefund":                   "4000000000007726",
	"pm_card_refundFail":                      "4000000000005126",
	"pm_usBankAccount_success":                "000123456789",
	"pm_usBankAccount_failure":                "000111111113",
	"pm_bank_debit":                           "000123456789",
	"pm_bank_debit_fail":                      "000111111113",
}

// lookupCard resolves a payment method (number, pm_card_<number>, or a
// token in Tokens).
func lookupCard(pm string) (Card, bool) {
	pm = strings.ReplaceAll(strings.TrimSpace(pm), " ", "")
	if n, ok := Tokens[pm]; ok {
		pm = n
	}
	pm = strings.TrimPrefix(pm, "pm_card_")
	for _, c := range Cards {
		if c.Number == pm {
			return c, true
		}
	}
	// Any other number that passes Luhn is a plain successful card.
	if len(pm) >= 12 && len(pm) <= 19 && luhn(pm) {
		return Card{Number: pm, Brand: "unknown", Label: "card"}, true
	}
	return Card{}, false
}

func luhn(n string) bool {
	sum := 0
	for i := 0; i < len(n); i++ {
		d := n[len(n)-1-i]
		if d < '0' || d > '9' {
			return false
		}
		v := int(d - '0')
		if i%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}

var declineMessages = map[string]string{
	"generic_decline":    "Your card was declined.",
	"insufficient_funds": "Your card has insufficient funds.",
}

func (s *Sandbox) newIntent(amount int64, cur, desc, email string, md map[string]string, auto bool, pmt []string, session obj) obj {
	id := newID("pi")
	types := make([]any, len(pmt))
	for i, t := range pmt {
		types[i] = t
	}
	var apm any
	if auto {
		apm = obj{"enabled": true, "allow_redirects": "always"}
	}
	pi := obj{
		"id": id, "object": "payment_intent", "amount": amount, "amount_capturable": 0,
		"amount_details": obj{"tip": obj{}}, "amount_received": 0, "application": nil, "application_fee_amount": nil,
		"automatic_payment_methods": apm, "canceled_at": nil, "cancellation_reason": nil, "capture_method": "automatic",
		"client_secret": id + "_secret_" + randomString(25), "confirmation_method": "automatic",
		"created": unix(s.now()), "currency": cur, "customer": nil, "description": nilIfEmpty(desc),
		"last_payment_error": nil, "latest_charge": nil, "livemode": false, "metadata": metaObj(md), "next_action": nil,
		"on_behalf_of": nil, "payment_method": nil, "payment_method_configuration_details": nil,
		"payment_method_options": obj{}, "payment_method_types": types, "processing": nil,
		"receipt_email": nilIfEmpty(email), "review": nil, "setup_future_usage": nil, "shipping": nil,
		"statement_descriptor": nil, "statement_descriptor_suffix": nil, "status": "requires_payment_method",
		"transfer_data": nil, "transfer_group": nil,
	}
	if session != nil {
		pi["_session"] = session["id"]
	}
	s.add(pi)
	s.emit("payment_intent.created", pi, nil)
	return pi
}

// confirmIntent runs a payment attempt on pi with payment method pm. A
// decline answers a 402 card_error carrying the PaymentIntent, as Stripe.
func (s *Sandbox) confirmIntent(pi obj, pm, returnURL string) *Error {
	switch pi["status"] {
	case "requires_payment_method", "requires_confirmation", "requires_action":
	default:
		return &Error{Status: 400, Type: "invalid_request_error", Code: "payment_intent_unexpected_state",
			Message:       fmt.Sprintf("You cannot confirm this PaymentIntent because it has a status of %s.", pi["status"]),
			PaymentIntent: render(pi)}
	}
	c, ok := lookupCard(pm)
	if !ok {
		return &Error{Status: 400, Type: "invalid_request_error", Code: "resource_missing", Param: "payment_method",
			Message: fmt.Sprintf("No such PaymentMethod: '%s'", pm)}
	}
	pi["_pm_token"] = pm
	pi["_card"] = c.Number
	pmID := "pm_" + randomString(24)
	pi["payment_method"] = pmID
	pi["last_payment_error"] = nil
	pi["next_action"] = nil
	switch {
	case c.BankDebit:
		s.startDebit(pi, c)
	case c.ThreeDS:
		url := s.baseURL + "/authenticate/" + pi["id"].(string)
		na := obj{"type": "redirect_to_url", "redirect_to_url": obj{"url": url, "return_url": nilIfEmpty(returnURL)}}
		if returnURL == "" {
			na = obj{"type": "use_stripe_sdk", "use_stripe_sdk": obj{"type": "three_d_secure_redirect", "stripe_js": url}}
		}
		pi["_return_url"] = returnURL
		pi["status"] = "requires_action"
		pi["next_action"] = na
		s.emit("payment_intent.requires_action", pi, nil)
	case c.Decline != "":
		ch := s.newCharge(pi, c, "failed")
		s.emit("charge.failed", ch, nil)
		pi["status"] = "requires_payment_method"
		pi["payment_method"] = nil
		pi["last_payment_error"] = obj{"type": "card_error", "code": "card_declined", "decline_code": c.Decline,
			"message": declineMessages[c.Decline], "charge": ch["id"],
			"doc_url": "https://stripe.com/docs/error-codes/card-declined"}
		s.emit("payment_intent.payment_failed", pi, nil)
		return &Error{Status: 402, Type: "card_error", Code: "card_declined", DeclineCode: c.Decline,
			Message: declineMessages[c.Decline], Charge: ch["id"].(string), PaymentIntent: render(pi)}
	default:
		s.succeed(pi, c, nil)
	}
	return nil
}

// succeed makes a successful charge on pi (or settles ch, a pending one),
// then completes its Checkout Session.
func (s *Sandbox) succeed(pi obj, c Card, ch obj) {
	if ch == nil {
		ch = s.newCharge(pi, c, "succeeded")
	} else {
		ch["status"], ch["paid"], ch["captured"], ch["amount_captured"] = "succeeded", true, true, ch["amount"]
		ch["balance_transaction"] = newID("txn")
		ch["outcome"] = outcome("")
	}
	s.emit("charge.succeeded", ch, nil)
	prevStatus := pi["status"]
	pi["status"] = "succeeded"
	pi["amount_received"] = pi["amount"]
	pi["next_action"] = nil
	pi["processing"] = nil
	s.emit("payment_intent.succeeded", pi, nil)
	if cs := s.sessionOf(pi); cs != nil {
		if prevStatus == "processing" {
			cs["payment_status"] = "paid"
			s.emit("checkout.session.async_payment_succeeded", cs, nil)
		} else {
			s.completeSession(cs, "paid")
		}
	}
	if c.Dispute {
		s.openDispute(ch, "fraudulent")
	}
}

// startDebit puts pi into processing with a pending bank-debit charge.
func (s *Sandbox) startDebit(pi obj, c Card) {
	ch := s.newCharge(pi, c, "pending")
	s.emit("charge.pending", ch, nil)
	pi["status"] = "processing"
	pi["processing"] = nil
	pi["_settle_at"] = unix(s.now().Add(s.cfg.DebitSettleAfter))
	pi["_settle_ok"] = !c.DebitFails
	s.schedule(pi)
	s.emit("payment_intent.processing", pi, nil)
	if cs := s.sessionOf(pi); cs != nil {
		s.completeSession(cs, "unpaid")
	}
}

// settleIntent ends a processing bank debit.
func (s *Sandbox) settleIntent(pi obj, ok bool) {
	delete(pi, "_settle_at")
	c, _ := lookupCard(fmt.Sprint(pi["_card"]))
	ch := s.objs[fmt.Sprint(pi["latest_charge"])]
	if ok {
		s.succeed(pi, c, ch)
		return
	}
	ch["status"], ch["paid"] = "failed", false
	ch["failure_code"], ch["failure_message"] = "debit_not_authorized", "The customer has notified their bank that this payment was unauthorized."
	ch["outcome"] = outcome("debit_not_authorized")
	s.emit("charge.failed", ch, nil)
	pi["status"] = "requires_payment_method"
	pi["payment_method"] = nil
	pi["last_payment_error"] = obj{"type": "invalid_request_error", "code": "payment_method_provider_decline",
		"decline_code": "debit_not_authorized", "message": ch["failure_message"], "charge": ch["id"]}
	s.emit("payment_intent.payment_failed", pi, nil)
	if cs := s.sessionOf(pi); cs != nil {
		s.emit("checkout.session.async_payment_failed", cs, nil)
	}
}

// authenticate finishes a requires_action PaymentIntent (the 3D Secure page).
func (s *Sandbox) authenticate(pi obj, ok bool) *Error {
	if pi["status"] != "requires_action" {
		return stateErr(fmt.Sprintf("This PaymentIntent has a status of %s, not requires_action.", pi["status"]))
	}
	c, _ := lookupCard(fmt.Sprint(pi["_card"]))
	if ok {
		s.succeed(pi, c, nil)
		return nil
	}
	pi["status"] = "requires_payment_method"
	pi["next_action"] = nil
	pi["payment_method"] = nil
	pi["last_payment_error"] = obj{"type": "invalid_request_error", "code": "payment_intent_authentication_failure",
		"message": "The provided PaymentMethod has failed authentication. You can provide payment_method_data or a new PaymentMethod to attempt to fulfill this PaymentIntent again.",
		"doc_url": "https://stripe.com/docs/error-codes/payment-intent-authentication-failure"}
	s.emit("payment_intent.payment_failed", pi, nil)
	return nil
}

func (s *Sandbox) cancelIntent(pi obj, reason string) {
	pi["status"] = "canceled"
	pi["canceled_at"] = unix(s.now())
	pi["cancellation_reason"] = nilIfEmpty(reason)
	pi["next_action"] = nil
	s.emit("payment_intent.canceled", pi, nil)
}

func outcome(decline string) obj {
	if decline == "" {
		return obj{"network_status": "approved_by_network", "reason": nil, "risk_level": "normal", "risk_score": 32,
			"seller_message": "Payment complete.", "type": "authorized"}
	}
	return obj{"network_status": "declined_by_network", "reason": decline, "risk_level": "normal", "risk_score": 32,
		"seller_message": "The bank did not return any further details with this decline.", "type": "issuer_declined"}
}

func (s *Sandbox) newCharge(pi obj, c Card, status string) obj {
	id := newID("ch")
	amount := toInt(pi["amount"])
	var details obj
	if c.BankDebit {
		details = obj{"type": "us_bank_account", "us_bank_account": obj{"account_holder_type": "individual",
			"account_type": "checking", "bank_name": "STRIPE TEST BANK", "fingerprint": randomString(16),
			"last4": c.Number[len(c.Number)-4:], "routing_number": "110000000"}}
	} else {
		details = obj{"type": "card", "card": obj{"brand": c.Brand, "checks": obj{"address_line1_check": nil,
			"address_postal_code_check": nil, "cvc_check": "pass"}, "country": "US", "exp_month": 12, "exp_year": 2034,
			"fingerprint": randomString(16), "funding": "credit", "installments": nil, "last4": c.Number[len(c.Number)-4:],
			"mandate": nil, "network": c.Brand, "three_d_secure": nil, "wallet": nil}}
		if c.ThreeDS {
			details["card"].(obj)["three_d_secure"] = obj{"authentication_flow": "challenge", "result": "authenticated", "version": "2.2.0"}
		}
	}
	email := pi["receipt_email"]
	ch := obj{
		"id": id, "object": "charge", "amount": amount, "amount_captured": 0, "amount_refunded": 0,
		"application": nil, "application_fee": nil, "application_fee_amount": nil, "balance_transaction": nil,
		"billing_details": obj{"address": obj{"city": nil, "country": nil, "line1": nil, "line2": nil, "postal_code": nil, "state": nil},
			"email": email, "name": nil, "phone": nil},
		"calculated_statement_descriptor": "PAYGATE SANDBOX", "captured": false, "created": unix(s.now()),
		"currency": pi["currency"], "customer": nil, "description": pi["description"], "disputed": false,
		"failure_balance_transaction": nil, "failure_code": nil, "failure_message": nil, "fraud_details": obj{},
		"livemode": false, "metadata": pi["metadata"], "on_behalf_of": nil, "outcome": outcome(""), "paid": false,
		"payment_intent": pi["id"], "payment_method": pi["payment_method"], "payment_method_details": details,
		"receipt_email": email, "receipt_number": nil, "receipt_url": s.baseURL + "/receipts/" + id, "refunded": false,
		"review": nil, "shipping": nil, "source_transfer": nil, "statement_descriptor": nil,
		"statement_descriptor_suffix": nil, "status": status, "transfer_data": nil, "transfer_group": nil,
	}
	switch status {
	case "succeeded":
		ch["paid"], ch["captured"], ch["amount_captured"] = true, true, amount
		ch["balance_transaction"] = newID("txn")
	case "failed":
		ch["failure_code"], ch["failure_message"] = "card_declined", declineMessages[c.Decline]
		ch["outcome"] = outcome(c.Decline)
	case "pending":
		ch["outcome"] = obj{"network_status": "approved_by_network", "reason": nil, "risk_level": "not_assessed",
			"seller_message": "Payment complete.", "type": "authorized"}
	}
	s.add(ch)
	pi["latest_charge"] = id
	return ch
}

// sessionOf is the Checkout Session that made pi, or nil.
func (s *Sandbox) sessionOf(pi obj) obj {
	id, _ := pi["_session"].(string)
	return s.get("checkout.session", id)
}

// completeSession marks cs complete and counts it on its payment link.
func (s *Sandbox) completeSession(cs obj, paymentStatus string) {
	cs["status"] = "complete"
	cs["url"] = nil
	cs["payment_status"] = paymentStatus
	email := cs["customer_email"]
	if email == nil {
		email = "customer@example.com"
	}
	cs["customer_details"] = obj{"address": obj{"city": nil, "country": "US", "line1": nil, "line2": nil, "postal_code": "10001", "state": nil},
		"email": email, "name": "Sandbox Customer", "phone": nil, "tax_exempt": "none", "tax_ids": []any{}}
	s.emit("checkout.session.completed", cs, nil)
	if link := s.get("payment_link", fmt.Sprint(cs["payment_link"])); link != nil {
		if rs, ok := link["restrictions"].(obj); ok {
			cs := rs["completed_sessions"].(obj)
			cs["count"] = toInt(cs["count"]) + 1
			if toInt(cs["count"]) >= toInt(cs["limit"]) && link["active"] == true {
				link["active"] = false
				s.emit("payment_link.updated", link, obj{"active": true})
			}
		}
	}
}

// expireSession expires an open session, canceling its PaymentIntent.
func (s *Sandbox) expireSession(cs obj) {
	cs["status"] = "expired"
	cs["url"] = nil
	s.emit("checkout.session.expired", cs, nil)
	if pi := s.get("payment_intent", fmt.Sprint(cs["payment_intent"])); pi != nil {
		switch pi["status"] {
		case "requires_payment_method", "requires_confirmation", "requires_action":
			s.cancelIntent(pi, "abandoned")
		}
	}
}

// visitLink opens a new Checkout Session for a payment link, as a visit to
// the link's URL does.
func (s *Sandbox) visitLink(link obj) (obj, *Error) {
	if link["active"] != true {
		return nil, invalid("", "This payment link is no longer active.")
	}
	items, _ := link["_line_items"].([]obj)
	pid := link["payment_intent_data"].(obj)
	pimd := map[string]string{}
	for k, v := range pid["metadata"].(map[string]any) {
		pimd[k] = fmt.Sprint(v)
	}
	md := map[string]string{}
	for k, v := range link["metadata"].(map[string]any) {
		md[k] = fmt.Sprint(v)
	}
	desc, _ := pid["description"].(string)
	success := ""
	if ac := link["after_completion"].(obj); ac["type"] == "redirect" {
		success = fmt.Sprint(ac["redirect"].(obj)["url"])
	}
	cs := s.newSession(items, sessionOpts{success: success, md: md, pimd: pimd, pidesc: desc,
		expires: s.now().Add(s.cfg.SessionTTL), pmt: []string{"card", "us_bank_account"}, link: link})
	return cs, nil
}

// paySession runs the customer's payment on a Checkout Session page. The
// session's PaymentIntent is made on the first attempt and reused by the
// next ones.
func (s *Sandbox) paySession(cs obj, pm string) *Error {
	if cs["status"] != "open" {
		return invalid("", fmt.Sprintf("This Checkout Session is %s.", cs["status"]))
	}
	if _, ok := lookupCard(pm); !ok {
		return &Error{Status: 400, Type: "invalid_request_error", Code: "incorrect_number", Param: "payment_method",
			Message: "Your card number is incorrect."}
	}
	pi := s.get("payment_intent", fmt.Sprint(cs["payment_intent"]))
	if pi == nil {
		md, _ := cs["_pi_metadata"].(map[string]string)
		desc, _ := cs["_pi_description"].(string)
		var types []string
		for _, t := range cs["payment_method_types"].([]any) {
			types = append(types, fmt.Sprint(t))
		}
		email, _ := cs["customer_email"].(string)
		pi = s.newIntent(toInt(cs["amount_total"]), fmt.Sprint(cs["currency"]), desc, email, md, false, types, cs)
		cs["payment_intent"] = pi["id"]
	}
	ret := ""
	if u, _ := cs["success_url"].(string); u != "" {
		ret = u
	}
	return s.confirmIntent(pi, pm, ret)
}

// refund refunds amount (-1: what is left) of ch.
func (s *Sandbox) refund(ch obj, amount int64, reason string, md map[string]string) (obj, *Error) {
	if ch["status"] != "succeeded" {
		return nil, &Error{Status: 400, Type: "invalid_request_error", Code: "charge_not_refundable",
			Message: fmt.Sprintf("Charge %s has a status of %s and cannot be refunded.", ch["id"], ch["status"])}
	}
	if ch["disputed"] == true {
		return nil, &Error{Status: 400, Type: "invalid_request_error", Code: "charge_disputed",
			Message: fmt.Sprintf("Charge %s has been charged back; cannot issue a refund.", ch["id"])}
	}
	left := toInt(ch["amount"]) - toInt(ch["amount_refunded"])
	if left <= 0 {
		return nil, &Error{Status: 400, Type: "invalid_request_error", Code: "charge_already_refunded",
			Message: fmt.Sprintf("Charge %s has already been refunded.", ch["id"])}
	}
	if amount < 0 {
		amount = left
	}
	if amount > left {
		return nil, &Error{Status: 400, Type: "invalid_request_error", Code: "amount_too_large", Param: "amount",
			Message: fmt.Sprintf("Refund amount (%d) is greater than unrefunded amount on charge (%d)", amount, left)}
	}
	c, _ := lookupCard(fmt.Sprint(s.objs[fmt.Sprint(ch["payment_intent"])]["_card"]))
	status := "succeeded"
	if c.RefundMode == "pending" || c.BankDebit {
		status = "pending"
	}
	re := obj{
		"id": newID("re"), "object": "refund", "amount": amount, "balance_transaction": nil, "charge": ch["id"],
		"created": unix(s.now()), "currency": ch["currency"],
		"metadata": metaObj(md), "payment_intent": ch["payment_intent"], "reason": nilIfEmpty(reason), "receipt_number": nil,
		"source_transfer_reversal": nil, "status": status, "transfer_reversal": nil,
	}
	if status == "succeeded" {
		re["balance_transaction"] = newID("txn")
	}
	switch {
	case status == "pending":
		re["_settle_at"] = unix(s.now().Add(s.cfg.RefundSettleAfter))
	case c.RefundMode == "fail":
		re["_fail_at"] = unix(s.now().Add(s.cfg.RefundFailAfter))
	}
	s.add(re)
	s.schedule(re)
	ch["amount_refunded"] = toInt(ch["amount_refunded"]) + amount
	ch["refunded"] = toInt(ch["amount_refunded"]) == toInt(ch["amount"])
	s.emit("charge.refunded", ch, nil)
	s.emit("refund.created", re, nil)
	return re, nil
}

// setRefundStatus moves a refund to succeeded or failed (failing gives the
// money back to the charge's unrefunded amount).
func (s *Sandbox) setRefundStatus(re obj, status, failure string) *Error {
	prev := re["status"]
	switch {
	case status == "succeeded" && prev == "pending":
	case status == "failed" && (prev == "pending" || prev == "succeeded"):
	case status == "canceled" && prev == "pending":
	default:
		return invalid("", fmt.Sprintf("Refund %s is %s; it cannot become %s.", re["id"], prev, status))
	}
	delete(re, "_settle_at")
	delete(re, "_fail_at")
	re["status"] = status
	if status == "succeeded" {
		re["balance_transaction"] = newID("txn")
	}
	if status == "failed" || status == "canceled" {
		if failure == "" {
			failure = "unknown"
		}
		if status == "failed" {
			re["failure_reason"] = failure
			re["failure_balance_transaction"] = newID("txn")
		}
		if ch := s.objs[fmt.Sprint(re["charge"])]; ch != nil {
			ch["amount_refunded"] = toInt(ch["amount_refunded"]) - toInt(re["amount"])
			ch["refunded"] = false
		}
	}
	prevAttrs := obj{"status": prev}
	s.emit("charge.refund.updated", re, prevAttrs)
	s.emit("refund.updated", re, prevAttrs)
	if status == "failed" {
		s.emit("refund.failed", re, nil)
	}
	return nil
}

// disputeReasons are Stripe's dispute reasons.
var disputeReasons = map[string]bool{"bank_cannot_process": true, "check_returned": true, "credit_not_processed": true,
	"customer_initiated": true, "debit_not_authorized": true, "duplicate": true, "fraudulent": true, "general": true,
	"incorrect_account_details": true, "insufficient_funds": true, "product_not_received": true,
	"product_unacceptable": true, "subscription_canceled": true, "unrecognized": true}

// openDispute opens a dispute on a succeeded charge.
func (s *Sandbox) openDispute(ch obj, reason string) (obj, *Error) {
	if ch["status"] != "succeeded" {
		return nil, invalid("charge", fmt.Sprintf("Charge %s has a status of %s; only succeeded charges can be disputed.", ch["id"], ch["status"]))
	}
	if ch["disputed"] == true {
		return nil, invalid("charge", fmt.Sprintf("Charge %s is already disputed.", ch["id"]))
	}
	if reason == "" {
		reason = "fraudulent"
	}
	if !disputeReasons[reason] {
		return nil, invalid("reason", "Invalid dispute reason: "+reason+" (Stripe's reasons: bank_cannot_process, credit_not_processed, customer_initiated, debit_not_authorized, duplicate, fraudulent, general, incorrect_account_details, insufficient_funds, product_not_received, product_unacceptable, subscription_canceled, unrecognized)")
	}
	evidence := obj{"enhanced_evidence": obj{}}
	for _, k := range []string{"access_activity_log", "billing_address", "cancellation_policy", "cancellation_policy_disclosure",
		"cancellation_rebuttal", "customer_communication", "customer_email_address", "customer_name", "customer_purchase_ip",
		"customer_signature", "duplicate_charge_documentation", "duplicate_charge_explanation", "duplicate_charge_id",
		"product_description", "receipt", "refund_policy", "refund_policy_disclosure", "refund_refusal_explanation",
		"service_date", "service_documentation", "shipping_address", "shipping_carrier", "shipping_date",
		"shipping_documentation", "shipping_tracking_number", "uncategorized_file", "uncategorized_text"} {
		evidence[k] = nil
	}
	amount := toInt(ch["amount"]) - toInt(ch["amount_refunded"])
	dp := obj{
		"id": newID("dp"), "object": "dispute", "amount": amount, "balance_transactions": []any{}, "charge": ch["id"],
		"created": unix(s.now()), "currency": ch["currency"], "enhanced_eligibility_types": []any{}, "evidence": evidence,
		"evidence_details": obj{"due_by": unix(s.now().Add(21 * 24 * time.Hour)), "enhanced_eligibility": obj{},
			"has_evidence": false, "past_due": false, "submission_count": 0},
		"is_charge_refundable": false, "livemode": false, "metadata": obj{}, "payment_intent": ch["payment_intent"],
		"reason": reason, "status": "needs_response",
	}
	s.add(dp)
	ch["disputed"] = true
	s.emit("charge.dispute.created", dp, nil)
	dp["balance_transactions"] = []any{s.balanceTxn(-amount, str(ch["currency"]), "dispute", "Chargeback withdrawal for "+str(ch["id"]), str(dp["id"]))}
	s.emit("charge.dispute.funds_withdrawn", dp, nil)
	return dp, nil
}

// updateDispute submits evidence text: the dispute goes under_review.
func (s *Sandbox) updateDispute(dp obj, text string) *Error {
	switch dp["status"] {
	case "needs_response", "warning_needs_response", "under_review", "warning_under_review":
	default:
		return invalid("", fmt.Sprintf("Dispute %s is %s and can no longer be updated.", dp["id"], dp["status"]))
	}
	prev := obj{"status": dp["status"], "evidence": dp["evidence"]}
	ev := dp["evidence"].(obj)
	ev["uncategorized_text"] = text
	ed := dp["evidence_details"].(obj)
	ed["has_evidence"] = true
	ed["submission_count"] = toInt(ed["submission_count"]) + 1
	dp["status"] = "under_review"
	s.emit("charge.dispute.updated", dp, prev)
	return nil
}

// closeDispute decides a dispute: won or lost.
func (s *Sandbox) closeDispute(dp obj, won bool) *Error {
	switch dp["status"] {
	case "won", "lost":
		return invalid("", fmt.Sprintf("Dispute %s is already closed (%s).", dp["id"], dp["status"]))
	}
	prev := obj{"status": dp["status"]}
	if won {
		dp["status"] = "won"
	} else {
		dp["status"] = "lost"
	}
	s.emit("charge.dispute.closed", dp, prev)
	if won {
		bts := dp["balance_transactions"].([]any)
		dp["balance_transactions"] = append(bts, s.balanceTxn(toInt(dp["amount"]), str(dp["currency"]), "dispute_reversal", "Chargeback reversal for "+str(dp["charge"]), str(dp["id"])))
		s.emit("charge.dispute.funds_reinstated", dp, nil)
	}
	return nil
}

// balanceTxn is a dispute's balance transaction (no fees in the sandbox).
func (s *Sandbox) balanceTxn(amount int64, cur, category, desc, source string) obj {
	now := unix(s.now())
	return obj{"id": newID("txn"), "object": "balance_transaction", "amount": amount, "available_on": now,
		"balance_type": "payments", "created": now, "currency": cur, "description": desc, "exchange_rate": nil, "fee": 0,
		"fee_details": []any{}, "net": amount, "reporting_category": category, "source": source, "status": "available",
		"type": "adjustment"}
}
