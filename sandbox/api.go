package sandbox

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// This file holds the /v1 handlers: parameter checks, then the flows in
// flows.go. Every handler runs with s.mu held.

func (s *Sandbox) createProduct(r *http.Request, f form) (obj, *Error) {
	c := &checker{f: f}
	c.allow("name", "description", "metadata", "active")
	name, _ := c.text(f, "name", "name", true)
	desc, _ := c.text(f, "description", "description", false)
	active, hasActive := c.boolean(f, "active", "active")
	md := c.metadata(f, "metadata")
	if c.err != nil {
		return nil, c.err
	}
	if !hasActive {
		active = true
	}
	return s.newProduct(name, desc, active, md), nil
}

func (s *Sandbox) newProduct(name, desc string, active bool, md map[string]string) obj {
	now := unix(s.now())
	p := obj{
		"id": newID("prod"), "object": "product", "active": active, "created": now, "updated": now,
		"default_price": nil, "description": nilIfEmpty(desc), "images": []any{}, "livemode": false,
		"marketing_features": []any{}, "metadata": metaObj(md), "name": name, "package_dimensions": nil,
		"shippable": nil, "statement_descriptor": nil, "tax_code": nil, "unit_label": nil, "url": nil,
	}
	s.add(p)
	return p
}

func (s *Sandbox) createPrice(r *http.Request, f form) (obj, *Error) {
	c := &checker{f: f}
	c.allow("currency", "unit_amount", "product", "product_data", "metadata", "nickname", "active")
	c.allowIn("product_data", f.sub("product_data"), "name", "metadata", "active", "statement_descriptor", "unit_label", "tax_code")
	cur, _ := c.text(f, "currency", "currency", true)
	amount, _ := c.integer(f, "unit_amount", "unit_amount", true, 0)
	prodID, hasProd := c.text(f, "product", "product", false)
	md := c.metadata(f, "metadata")
	nick, _ := c.text(f, "nickname", "nickname", false)
	var pd form
	if !hasProd {
		pd = f.sub("product_data")
		if pd == nil && c.err == nil {
			c.err = missing("product")
		}
	}
	var pname string
	if pd != nil {
		pname, _ = c.text(pd, "product_data[name]", "name", true)
	}
	if c.err != nil {
		return nil, c.err
	}
	if err := checkCurrency(cur, "currency"); err != nil {
		return nil, err
	}
	if hasProd && s.get("product", prodID) == nil {
		return nil, notFound("product", "product", prodID)
	}
	if pd != nil {
		pc := &checker{f: pd}
		pmd := pc.metadata(pd, "product_data[metadata]")
		if pc.err != nil {
			return nil, pc.err
		}
		prodID = s.newProduct(pname, "", true, pmd)["id"].(string)
	}
	return s.newPrice(strings.ToLower(cur), amount, prodID, nick, md), nil
}

func (s *Sandbox) newPrice(cur string, amount int64, product, nick string, md map[string]string) obj {
	p := obj{
		"id": newID("price"), "object": "price", "active": true, "billing_scheme": "per_unit",
		"created": unix(s.now()), "currency": cur, "custom_unit_amount": nil, "livemode": false,
		"lookup_key": nil, "metadata": metaObj(md), "nickname": nilIfEmpty(nick), "product": product,
		"recurring": nil, "tax_behavior": "unspecified", "tiers_mode": nil, "transform_quantity": nil,
		"type": "one_time", "unit_amount": amount, "unit_amount_decimal": fmt.Sprint(amount),
	}
	s.add(p)
	return p
}

// lineItems reads line_items[i][price|price_data|quantity] into item
// objects (creating inline prices). Callers hold mu.
func (s *Sandbox) lineItems(c *checker, f form, allowPriceData bool) []obj {
	li := f.sub("line_items")
	if li == nil {
		if c.err == nil {
			c.err = missing("line_items")
		}
		return nil
	}
	var items []obj
	for i, e := range li.list() {
		ef, ok := e.(form)
		param := fmt.Sprintf("line_items[%d]", i)
		if !ok {
			c.err = invalid(param, "Invalid object: "+param)
			return nil
		}
		keys := []string{"price", "quantity", "adjustable_quantity"}
		if allowPriceData {
			keys = append(keys, "price_data")
		}
		c.allowIn(param, ef, keys...)
		qty, ok := c.integer(ef, param+"[quantity]", "quantity", true, 1)
		if !ok {
			return nil
		}
		var price obj
		if pid, ok := c.text(ef, param+"[price]", "price", false); ok {
			price = s.get("price", pid)
			if price == nil {
				c.err = notFound("price", param+"[price]", pid)
				return nil
			}
		} else if pd := ef.sub("price_data"); pd != nil && allowPriceData {
			pp := param + "[price_data]"
			c.allowIn(pp, pd, "currency", "unit_amount", "product", "product_data", "tax_behavior")
			cur, _ := c.text(pd, pp+"[currency]", "currency", true)
			amount, _ := c.integer(pd, pp+"[unit_amount]", "unit_amount", true, 0)
			prod, hasProd := c.text(pd, pp+"[product]", "product", false)
			prd := pd.sub("product_data")
			if !hasProd && prd == nil && c.err == nil {
				c.err = missing(pp + "[product_data]")
			}
			var name, desc string
			if prd != nil {
				c.allowIn(pp+"[product_data]", prd, "name", "description", "metadata", "images", "tax_code")
				name, _ = c.text(prd, pp+"[product_data][name]", "name", true)
				desc, _ = c.text(prd, pp+"[product_data][description]", "description", false)
			}
			if c.err != nil {
				return nil
			}
			if err := checkCurrency(cur, pp+"[currency]"); err != nil {
				c.err = err
				return nil
			}
			if hasProd && s.get("product", prod) == nil {
				c.err = notFound("product", pp+"[product]", prod)
				return nil
			}
			if prd != nil {
				prod = s.newProduct(name, desc, true, nil)["id"].(string)
			}
			price = s.newPrice(strings.ToLower(cur), amount, prod, "", nil)
			price["_inline"] = true // made by price_data, carries no metadata
		} else {
			if c.err == nil {
				c.err = missing(param + "[price]")
			}
			return nil
		}
		if c.err != nil {
			return nil
		}
		unit := toInt(price["unit_amount"])
		desc := ""
		if p := s.objs[price["product"].(string)]; p != nil {
			desc, _ = p["name"].(string)
		}
		items = append(items, obj{
			"id": newID("li"), "object": "item", "amount_discount": 0, "amount_subtotal": unit * qty,
			"amount_tax": 0, "amount_total": unit * qty, "currency": price["currency"], "description": desc,
			"price": render(price), "quantity": qty,
		})
	}
	if len(items) == 0 && c.err == nil {
		c.err = missing("line_items")
	}
	if c.err == nil {
		for _, it := range items[1:] {
			if it["currency"] != items[0]["currency"] {
				c.err = invalid("line_items", "All line items must use the same currency.")
			}
		}
	}
	return items
}

func (s *Sandbox) createPaymentLink(r *http.Request, f form) (obj, *Error) {
	c := &checker{f: f}
	c.allow("line_items", "metadata", "payment_intent_data", "after_completion", "restrictions", "currency", "payment_method_types")
	items := s.lineItems(c, f, false)
	md := c.metadata(f, "metadata")
	pid := f.sub("payment_intent_data")
	c.allowIn("payment_intent_data", pid, "metadata", "description", "capture_method", "statement_descriptor", "statement_descriptor_suffix", "transfer_group", "setup_future_usage")
	var pimd map[string]string
	var pidesc string
	if pid != nil {
		pimd = c.metadata(pid, "payment_intent_data[metadata]")
		pidesc, _ = c.text(pid, "payment_intent_data[description]", "description", false)
	}
	after := obj{"type": "hosted_confirmation", "hosted_confirmation": obj{"custom_message": nil}}
	if ac := f.sub("after_completion"); ac != nil {
		c.allowIn("after_completion", ac, "type", "redirect", "hosted_confirmation")
		typ, _ := c.oneOf(ac, "after_completion[type]", "type", true, "redirect", "hosted_confirmation")
		if typ == "redirect" {
			u, _ := c.text(ac, "after_completion[redirect][url]", "url", false)
			if rd := ac.sub("redirect"); rd != nil {
				u, _ = c.text(rd, "after_completion[redirect][url]", "url", true)
			} else if c.err == nil {
				c.err = missing("after_completion[redirect][url]")
			}
			after = obj{"type": "redirect", "redirect": obj{"url": u}}
		}
	}
	var restrictions any
	if rs := f.sub("restrictions"); rs != nil {
		c.allowIn("restrictions", rs, "completed_sessions")
		cs := rs.sub("completed_sessions")
		if cs == nil && c.err == nil {
			c.err = missing("restrictions[completed_sessions]")
		}
		if cs != nil {
			limit, _ := c.integer(cs, "restrictions[completed_sessions][limit]", "limit", true, 1)
			restrictions = obj{"completed_sessions": obj{"count": 0, "limit": limit}}
		}
	}
	if c.err != nil {
		return nil, c.err
	}
	id := newID("plink")
	link := obj{
		"id": id, "object": "payment_link", "active": true, "after_completion": after,
		"allow_promotion_codes": false, "application": nil, "application_fee_amount": nil, "application_fee_percent": nil,
		"automatic_tax": obj{"enabled": false, "liability": nil}, "billing_address_collection": "auto",
		"consent_collection": nil, "currency": items[0]["currency"], "custom_fields": []any{},
		"custom_text":       obj{"after_submit": nil, "shipping_address": nil, "submit": nil, "terms_of_service_acceptance": nil},
		"customer_creation": "if_required", "inactive_message": nil, "invoice_creation": nil, "livemode": false,
		"metadata": metaObj(md), "on_behalf_of": nil,
		"payment_intent_data": obj{"capture_method": nil, "description": nilIfEmpty(pidesc), "metadata": metaObj(pimd),
			"setup_future_usage": nil, "statement_descriptor": nil, "statement_descriptor_suffix": nil, "transfer_group": nil},
		"payment_method_collection": "always", "payment_method_types": nil,
		"phone_number_collection": obj{"enabled": false}, "restrictions": restrictions,
		"shipping_address_collection": nil, "shipping_options": []any{}, "submit_type": "auto",
		"subscription_data": nil, "tax_id_collection": obj{"enabled": false, "required": "never"}, "transfer_data": nil,
		"url":         s.baseURL + "/pay/" + id,
		"_line_items": items, "_created": unix(s.now()),
	}
	s.add(link)
	return link, nil
}

func (s *Sandbox) updatePaymentLink(r *http.Request, f form) (obj, *Error) {
	c := &checker{f: f}
	c.allow("active", "metadata", "after_completion", "restrictions", "inactive_message")
	id := r.PathValue("id")
	link := s.get("payment_link", id)
	if link == nil {
		return nil, notFound("payment_link", "id", id)
	}
	active, hasActive := c.boolean(f, "active", "active")
	md := c.metadata(f, "metadata")
	msg, hasMsg := c.text(f, "inactive_message", "inactive_message", false)
	if rs := f.sub("restrictions"); rs != nil {
		c.allowIn("restrictions", rs, "completed_sessions")
		if cs := rs.sub("completed_sessions"); cs != nil {
			if limit, ok := c.integer(cs, "restrictions[completed_sessions][limit]", "limit", true, 1); ok {
				count := int64(0)
				if old, ok := link["restrictions"].(obj); ok {
					count = toInt(old["completed_sessions"].(obj)["count"])
				}
				link["restrictions"] = obj{"completed_sessions": obj{"count": count, "limit": limit}}
			}
		}
	}
	if c.err != nil {
		return nil, c.err
	}
	prev := obj{}
	if hasActive && link["active"] != active {
		prev["active"] = link["active"]
		link["active"] = active
	}
	if hasMsg {
		prev["inactive_message"] = link["inactive_message"]
		link["inactive_message"] = nilIfEmpty(msg)
	}
	if md != nil {
		prev["metadata"] = link["metadata"]
		link["metadata"] = mergeMeta(link["metadata"], md)
	}
	if len(prev) > 0 {
		s.emit("payment_link.updated", link, prev)
	}
	return link, nil
}

func (s *Sandbox) createSession(r *http.Request, f form) (obj, *Error) {
	c := &checker{f: f}
	c.allow("mode", "line_items", "success_url", "cancel_url", "client_reference_id", "customer_email", "metadata",
		"payment_intent_data", "expires_at", "payment_method_types", "locale", "submit_type")
	c.oneOf(f, "mode", "mode", true, "payment")
	items := s.lineItems(c, f, true)
	success, _ := c.text(f, "success_url", "success_url", true)
	cancel, _ := c.text(f, "cancel_url", "cancel_url", false)
	ref, _ := c.text(f, "client_reference_id", "client_reference_id", false)
	email, _ := c.text(f, "customer_email", "customer_email", false)
	md := c.metadata(f, "metadata")
	pid := f.sub("payment_intent_data")
	c.allowIn("payment_intent_data", pid, "metadata", "description", "capture_method", "receipt_email", "statement_descriptor", "statement_descriptor_suffix", "transfer_group", "setup_future_usage")
	var pimd map[string]string
	var pidesc string
	if pid != nil {
		pimd = c.metadata(pid, "payment_intent_data[metadata]")
		pidesc, _ = c.text(pid, "payment_intent_data[description]", "description", false)
	}
	expires := s.now().Add(s.cfg.SessionTTL)
	if at, ok := c.integer(f, "expires_at", "expires_at", false, 0); ok {
		t := time.Unix(at, 0)
		if t.Before(s.now().Add(30*time.Minute)) || t.After(s.now().Add(24*time.Hour+time.Minute)) {
			return nil, invalid("expires_at", "The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout Session creation.")
		}
		expires = t
	}
	pmt := f.strings("payment_method_types")
	if c.err != nil {
		return nil, c.err
	}
	if len(pmt) == 0 {
		pmt = []string{"card", "us_bank_account"}
	}
	var total int64
	for _, it := range items {
		total += toInt(it["amount_total"])
	}
	if err := checkAmount(total, str(items[0]["currency"]), "line_items"); err != nil {
		return nil, err
	}
	return s.newSession(items, sessionOpts{success: success, cancel: cancel, ref: ref, email: email, md: md,
		pimd: pimd, pidesc: pidesc, expires: expires, pmt: pmt}), nil
}

type sessionOpts struct {
	success, cancel, ref, email, pidesc string
	md, pimd                            map[string]string
	expires                             time.Time
	pmt                                 []string
	link                                obj
}

func (s *Sandbox) newSession(items []obj, o sessionOpts) obj {
	var total int64
	for _, it := range items {
		total += toInt(it["amount_total"])
	}
	id := "cs_test_" + randomString(58)
	var linkID any
	if o.link != nil {
		linkID = o.link["id"]
	}
	pmt := make([]any, len(o.pmt))
	for i, t := range o.pmt {
		pmt[i] = t
	}
	cs := obj{
		"id": id, "object": "checkout.session", "after_expiration": nil, "allow_promotion_codes": nil,
		"amount_subtotal": total, "amount_total": total,
		"automatic_tax": obj{"enabled": false, "liability": nil, "status": nil}, "billing_address_collection": nil,
		"cancel_url": nilIfEmpty(o.cancel), "client_reference_id": nilIfEmpty(o.ref), "client_secret": nil,
		"consent": nil, "consent_collection": nil, "created": unix(s.now()), "currency": items[0]["currency"],
		"currency_conversion": nil, "custom_fields": []any{},
		"custom_text": obj{"after_submit": nil, "shipping_address": nil, "submit": nil, "terms_of_service_acceptance": nil},
		"customer":    nil, "customer_creation": "if_required", "customer_details": nil, "customer_email": nilIfEmpty(o.email),
		"expires_at": unix(o.expires), "invoice": nil, "invoice_creation": nil, "livemode": false, "locale": nil,
		"metadata": metaObj(o.md), "mode": "payment", "payment_intent": nil, "payment_link": linkID,
		"payment_method_collection": "if_required", "payment_method_configuration_details": nil,
		"payment_method_options": obj{}, "payment_method_types": pmt, "payment_status": "unpaid",
		"phone_number_collection": obj{"enabled": false}, "recovered_from": nil, "setup_intent": nil,
		"shipping_address_collection": nil, "shipping_cost": nil, "shipping_options": []any{}, "status": "open",
		"submit_type": nil, "subscription": nil, "success_url": nilIfEmpty(o.success),
		"total_details": obj{"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0}, "ui_mode": "hosted",
		"url":         s.baseURL + "/checkout/" + id,
		"_line_items": items, "_pi_metadata": o.pimd, "_pi_description": o.pidesc,
	}
	s.add(cs)
	s.schedule(cs)
	return cs
}

// lineItemList is the list object for expand[]=line_items.
func (s *Sandbox) lineItemList(src obj) obj {
	items, _ := src["_line_items"].([]obj)
	data := make([]any, len(items))
	for i, it := range items {
		data[i] = it
	}
	path := "/v1/checkout/sessions/" + fmt.Sprint(src["id"]) + "/line_items"
	if src["object"] == "payment_link" {
		path = "/v1/payment_links/" + fmt.Sprint(src["id"]) + "/line_items"
	}
	return render(obj{"object": "list", "data": data, "has_more": false, "url": path})
}

// listLineItems answers GET /v1/<type>/{id}/line_items (one page: the
// sandbox's sessions and links have few items).
func (s *Sandbox) listLineItems(typ, param string) apiFunc {
	return func(r *http.Request, f form) (obj, *Error) {
		c := &checker{f: f}
		if c.allow("limit", "starting_after", "ending_before"); c.err != nil {
			return nil, c.err
		}
		o := s.get(typ, r.PathValue("id"))
		if o == nil {
			return nil, notFound(typ, param, r.PathValue("id"))
		}
		return s.lineItemList(o), nil
	}
}

// chargeRefundList is the list object for expand[]=refunds on a charge.
func (s *Sandbox) chargeRefundList(ch obj) obj {
	data := []any{}
	for _, id := range s.sortedIDs("refund") {
		if re := s.objs[id]; re["charge"] == ch["id"] {
			data = append(data, render(re))
		}
	}
	return obj{"object": "list", "data": data, "has_more": false, "url": "/v1/charges/" + fmt.Sprint(ch["id"]) + "/refunds"}
}

func (s *Sandbox) listSessions(r *http.Request, f form) (obj, *Error) {
	c := &checker{f: f}
	c.allow("limit", "starting_after", "ending_before", "created", "payment_link", "payment_intent", "status", "customer")
	link, _ := c.text(f, "payment_link", "payment_link", false)
	pi, _ := c.text(f, "payment_intent", "payment_intent", false)
	status, _ := c.oneOf(f, "status", "status", false, "open", "complete", "expired")
	if c.err != nil {
		return nil, c.err
	}
	return s.page(r, f, "checkout.session", s.sortedIDs("checkout.session"), func(o obj) bool {
		return (link == "" || o["payment_link"] == link) && (pi == "" || o["payment_intent"] == pi) && (status == "" || o["status"] == status)
	})
}

func (s *Sandbox) apiExpireSession(r *http.Request, f form) (obj, *Error) {
	c := &checker{f: f}
	if c.allow(); c.err != nil {
		return nil, c.err
	}
	id := r.PathValue("id")
	cs := s.get("checkout.session", id)
	if cs == nil {
		return nil, notFound("checkout.session", "session", id)
	}
	if cs["status"] != "open" {
		return nil, invalid("", fmt.Sprintf("Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout Session has a status of %q.", cs["status"]))
	}
	s.expireSession(cs)
	return cs, nil
}

func (s *Sandbox) createIntent(r *http.Request, f form) (obj, *Error) {
	c := &checker{f: f}
	c.allow("amount", "currency", "automatic_payment_methods", "payment_method_types", "description", "receipt_email",
		"metadata", "confirm", "payment_method", "return_url", "capture_method", "statement_descriptor", "statement_descriptor_suffix")
	amount, _ := c.integer(f, "amount", "amount", true, 1)
	cur, _ := c.text(f, "currency", "currency", true)
	desc, _ := c.text(f, "description", "description", false)
	email, _ := c.text(f, "receipt_email", "receipt_email", false)
	md := c.metadata(f, "metadata")
	apm := f.sub("automatic_payment_methods")
	c.allowIn("automatic_payment_methods", apm, "enabled", "allow_redirects")
	auto := false
	if apm != nil {
		auto, _ = c.boolean(apm, "automatic_payment_methods[enabled]", "enabled")
	}
	c.oneOf(f, "capture_method", "capture_method", false, "automatic", "automatic_async")
	confirm, _ := c.boolean(f, "confirm", "confirm")
	pm, _ := c.text(f, "payment_method", "payment_method", false)
	ret, _ := c.text(f, "return_url", "return_url", false)
	pmt := f.strings("payment_method_types")
	if c.err != nil {
		return nil, c.err
	}
	if err := checkCurrency(cur, "currency"); err != nil {
		return nil, err
	}
	if err := checkAmount(amount, cur, "amount"); err != nil {
		return nil, err
	}
	if auto && len(pmt) > 0 {
		return nil, invalid("payment_method_types", "You may only specify one of these parameters: automatic_payment_methods, payment_method_types.")
	}
	if len(pmt) == 0 {
		pmt = []string{"card", "us_bank_account"}
	}
	if confirm && pm == "" {
		return nil, missing("payment_method")
	}
	pi := s.newIntent(amount, strings.ToLower(cur), desc, email, md, auto, pmt, nil)
	if confirm {
		if err := s.confirmIntent(pi, pm, ret); err != nil {
			return nil, err
		}
	}
	return pi, nil
}

func (s *Sandbox) updateIntent(r *http.Request, f form) (obj, *Error) {
	c := &checker{f: f}
	c.allow("metadata", "description", "receipt_email", "amount")
	id := r.PathValue("id")
	pi := s.get("payment_intent", id)
	if pi == nil {
		return nil, notFound("payment_intent", "intent", id)
	}
	md := c.metadata(f, "metadata")
	desc, hasDesc := c.text(f, "description", "description", false)
	email, hasEmail := c.text(f, "receipt_email", "receipt_email", false)
	amount, hasAmount := c.integer(f, "amount", "amount", false, 1)
	if c.err != nil {
		return nil, c.err
	}
	if hasAmount && pi["status"] != "requires_payment_method" && pi["status"] != "requires_confirmation" {
		return nil, stateErr(fmt.Sprintf("This PaymentIntent's amount could not be updated because it has a status of %s.", pi["status"]))
	}
	prev := obj{}
	if md != nil {
		prev["metadata"] = pi["metadata"]
		pi["metadata"] = mergeMeta(pi["metadata"], md)
	}
	if hasDesc {
		prev["description"] = pi["description"]
		pi["description"] = nilIfEmpty(desc)
	}
	if hasEmail {
		pi["receipt_email"] = nilIfEmpty(email)
	}
	if hasAmount {
		prev["amount"] = pi["amount"]
		pi["amount"] = amount
	}
	if len(prev) > 0 {
		s.emit("payment_intent.updated", pi, prev)
	}
	return pi, nil
}

func (s *Sandbox) apiConfirmIntent(r *http.Request, f form) (obj, *Error) {
	c := &checker{f: f}
	c.allow("payment_method", "return_url", "receipt_email")
	pm, _ := c.text(f, "payment_method", "payment_method", false)
	ret, _ := c.text(f, "return_url", "return_url", false)
	if c.err != nil {
		return nil, c.err
	}
	id := r.PathValue("id")
	pi := s.get("payment_intent", id)
	if pi == nil {
		return nil, notFound("payment_intent", "intent", id)
	}
	if pm == "" {
		pm, _ = pi["_pm_token"].(string)
		if pm == "" {
			return nil, &Error{Status: 400, Type: "invalid_request_error", Code: "payment_intent_unexpected_state", Param: "payment_method",
				Message: "You cannot confirm this PaymentIntent because it's missing a payment method. To confirm the PaymentIntent with " + fmt.Sprint(pi["id"]) + ", specify a payment method attached to this customer along with the customer ID."}
		}
	}
	if err := s.confirmIntent(pi, pm, ret); err != nil {
		return nil, err
	}
	return pi, nil
}

func (s *Sandbox) apiCancelIntent(r *http.Request, f form) (obj, *Error) {
	c := &checker{f: f}
	c.allow("cancellation_reason")
	reason, _ := c.oneOf(f, "cancellation_reason", "cancellation_reason", false, "duplicate", "fraudulent", "requested_by_customer", "abandoned")
	if c.err != nil {
		return nil, c.err
	}
	id := r.PathValue("id")
	pi := s.get("payment_intent", id)
	if pi == nil {
		return nil, notFound("payment_intent", "intent", id)
	}
	if _, ok := pi["_session"].(string); ok {
		return nil, stateErr("You cannot cancel this PaymentIntent because it was created by Checkout. Expire the Checkout Session instead.")
	}
	switch pi["status"] {
	case "requires_payment_method", "requires_confirmation", "requires_action", "requires_capture":
	default:
		return nil, stateErr(fmt.Sprintf("You cannot cancel this PaymentIntent because it has a status of %s. Only a PaymentIntent with one of the following statuses may be canceled: requires_payment_method, requires_capture, requires_confirmation, requires_action, processing.", pi["status"]))
	}
	s.cancelIntent(pi, reason)
	return pi, nil
}

func (s *Sandbox) apiCreateRefund(r *http.Request, f form) (obj, *Error) {
	c := &checker{f: f}
	c.allow("payment_intent", "charge", "amount", "reason", "metadata")
	piID, hasPI := c.text(f, "payment_intent", "payment_intent", false)
	chID, hasCh := c.text(f, "charge", "charge", false)
	amount, hasAmount := c.integer(f, "amount", "amount", false, 1)
	reason, _ := c.oneOf(f, "reason", "reason", false, "duplicate", "fraudulent", "requested_by_customer")
	md := c.metadata(f, "metadata")
	if c.err != nil {
		return nil, c.err
	}
	if !hasPI && !hasCh {
		return nil, missing("payment_intent")
	}
	var ch obj
	if hasPI {
		pi := s.get("payment_intent", piID)
		if pi == nil {
			return nil, notFound("payment_intent", "payment_intent", piID)
		}
		if pi["status"] != "succeeded" {
			return nil, &Error{Status: 400, Type: "invalid_request_error", Code: "charge_not_refundable", Param: "payment_intent",
				Message: fmt.Sprintf("This PaymentIntent (%s) does not have a successful charge to refund.", piID)}
		}
		ch = s.objs[pi["latest_charge"].(string)]
	} else {
		ch = s.get("charge", chID)
		if ch == nil {
			return nil, notFound("charge", "charge", chID)
		}
	}
	if !hasAmount {
		amount = -1
	}
	return s.refund(ch, amount, reason, md)
}

func (s *Sandbox) listEvents(r *http.Request, f form) (obj, *Error) {
	c := &checker{f: f}
	c.allow("limit", "starting_after", "ending_before", "created", "type", "types", "delivery_success")
	typ, _ := c.text(f, "type", "type", false)
	types := f.strings("types")
	if c.err != nil {
		return nil, c.err
	}
	if typ != "" && len(types) > 0 {
		return nil, invalid("types", "You may only specify one of these parameters: type, types.")
	}
	match := func(t string) bool {
		if typ != "" {
			if strings.HasSuffix(typ, "*") {
				return strings.HasPrefix(t, strings.TrimSuffix(typ, "*"))
			}
			return t == typ
		}
		if len(types) > 0 {
			for _, x := range types {
				if x == t {
					return true
				}
			}
			return false
		}
		return true
	}
	return s.page(r, f, "event", s.sortedIDs("event"), func(o obj) bool { return match(o["type"].(string)) })
}

func (s *Sandbox) retrieveEvent(r *http.Request, f form) (obj, *Error) {
	return s.retrieve("event", "event")(r, f)
}

func (s *Sandbox) webhookEndpoint() obj {
	evts := make([]any, len(s.whEvts))
	for i, e := range s.whEvts {
		evts[i] = e
	}
	status := "enabled"
	url := s.whURL
	if url == "" {
		status, url = "disabled", s.baseURL+"/_sandbox/no-webhook-url-set"
	}
	return obj{"id": s.whID, "object": "webhook_endpoint", "api_version": APIVersion, "application": nil,
		"created": s.whAt, "description": "paygate sandbox endpoint", "enabled_events": evts, "livemode": false,
		"metadata": obj{}, "status": status, "url": url}
}

func (s *Sandbox) listWebhookEndpoints(r *http.Request, f form) (obj, *Error) {
	c := &checker{f: f}
	if c.allow("limit", "starting_after", "ending_before"); c.err != nil {
		return nil, c.err
	}
	return obj{"object": "list", "data": []any{s.webhookEndpoint()}, "has_more": false, "url": "/v1/webhook_endpoints"}, nil
}

func (s *Sandbox) retrieveWebhookEndpoint(r *http.Request, f form) (obj, *Error) {
	if r.PathValue("id") != s.whID {
		return nil, notFound("webhook_endpoint", "id", r.PathValue("id"))
	}
	return s.webhookEndpoint(), nil
}

// minimumCharge is Stripe's minimum charge amount per currency, in minor
// units, for the currencies whose minimum we know.
var minimumCharge = map[string]int64{
	"usd": 50, "eur": 50, "gbp": 30, "aud": 50, "cad": 50, "chf": 50, "nzd": 50, "sgd": 50, "inr": 50, "brl": 50,
	"jpy": 50, "thb": 1000, "hkd": 400, "mxn": 1000, "sek": 300, "nok": 300, "dkk": 250, "pln": 200, "czk": 1500,
	"huf": 17500, "myr": 200, "aed": 200, "ron": 200, "bgn": 100,
}

// checkAmount refuses amounts below Stripe's minimum charge for the
// currency (amount_too_small) or above its maximum (amount_too_large).
func checkAmount(amount int64, cur, param string) *Error {
	cur = strings.ToLower(cur)
	if minimum, ok := minimumCharge[cur]; ok && amount < minimum {
		return &Error{Status: 400, Type: "invalid_request_error", Code: "amount_too_small", Param: param,
			Message: fmt.Sprintf("Amount must be at least %s", money(minimum, cur))}
	}
	if amount > 99999999 {
		return &Error{Status: 400, Type: "invalid_request_error", Code: "amount_too_large", Param: param,
			Message: fmt.Sprintf("Amount must be no more than %s", money(99999999, cur))}
	}
	return nil
}

// checkCurrency accepts a three-letter ISO code.
func checkCurrency(cur, param string) *Error {
	if len(cur) != 3 || strings.ToLower(cur) != strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r | 0x20
		}
		return -1
	}, cur) {
		return &Error{Status: 400, Type: "invalid_request_error", Code: "parameter_invalid_string", Param: param,
			Message: "Invalid currency: " + cur + ". Stripe currencies are three-letter ISO codes."}
	}
	return nil
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// mergeMeta applies a metadata update: empty values delete keys.
func mergeMeta(old any, upd map[string]string) map[string]any {
	out := map[string]any{}
	if m, ok := old.(map[string]any); ok {
		for k, v := range m {
			out[k] = v
		}
	}
	for k, v := range upd {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}
