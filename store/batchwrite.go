package store

import (
	"encoding/json"
	"time"
	"unsafe"

	"github.com/jackc/pgx/v5"

	"github.com/numedapp/paygate"
)

// The writes of a batch of webhook events go as one statement per table,
// whatever the batch's size: the rows travel as arrays and are expanded by
// unnest. A statement per row cost PostgreSQL an executor start-up, a
// portal and a round of protocol messages each, and pgx an encode; rows
// from arrays are inserted in array order, so history ids still follow the
// order of the events. A statement that fails (a resend's primary key, a
// Stripe id that names another payment) fails the pipeline before its
// COMMIT, as a single-row statement would.

// eventRows collects the paygate_webhook_events rows of a batch.
type eventRows struct {
	id, typ, apiVersion, status, errMsg, paymentID, payload []string
	livemode                                                []bool
	created, received                                       []time.Time
}

func (e *eventRows) add(ev *paygate.WebhookEvent, status paygate.EventStatus, errMsg, paymentID string) {
	e.id = append(e.id, ev.ID)
	e.typ = append(e.typ, ev.Type)
	e.apiVersion = append(e.apiVersion, ev.APIVersion)
	e.livemode = append(e.livemode, ev.Livemode)
	e.status = append(e.status, string(status))
	e.errMsg = append(e.errMsg, errMsg)
	e.paymentID = append(e.paymentID, paymentID)
	e.created = append(e.created, ev.CreatedAt)
	e.received = append(e.received, ev.ReceivedAt)
	// The payload is not copied: the string is read only while the batch
	// is encoded, and nothing writes to an event's payload meanwhile (its
	// request waits for the batch).
	e.payload = append(e.payload, unsafe.String(unsafe.SliceData(ev.Payload), len(ev.Payload)))
}

// queue queues the insert. No ON CONFLICT: a resend must fail the pipeline.
func (e *eventRows) queue(b *pgx.Batch) {
	if len(e.id) == 0 {
		return
	}
	b.Queue(`INSERT INTO paygate_webhook_events (id, type, api_version, livemode, status, error, payment_id,
		created_at, received_at, processed_at, payload)
		SELECT id, type, api_version, livemode, status, error, payment_id, created_at, received_at, received_at, payload::json
		FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::text[], $6::text[], $7::text[],
			$8::timestamptz[], $9::timestamptz[], $10::text[])
			AS u(id, type, api_version, livemode, status, error, payment_id, created_at, received_at, payload)`,
		sizedArrays(32, e.id, e.typ, e.apiVersion, e.status, e.errMsg, e.paymentID, e.payload), e.typ, e.apiVersion, e.livemode, e.status, e.errMsg, e.paymentID, e.created, e.received, e.payload)
}

// queueSaves queues, as queueSave does for one payment, the writes of every
// payment of a batch that changed, one statement per table. A callback
// whose record has a ClaimToken, the first of its payment in the batch, is
// inserted claimed if the payment has no earlier callback pending (as
// ClaimCallbacks would have claimed it); claimed gets the ids of those
// that were, when the batch's results are read. It reports whether it
// queued a callback that may be left unclaimed.
func queueSaves(b *pgx.Batch, ts []*touched, claimed map[string]bool) bool {
	var (
		// paygate_payments
		pID, pStatus, pURL, pPrice, pLink, pSession, pIntent, pCharge, pEmail, pAttempts, pDisputes []string
		pRefunded, pStripeRefunded, pSeq                                                            []int64
		pLivemode                                                                                   []bool
		pUpdated, pStripeRefundedAt                                                                 []time.Time
		// paygate_payment_refs
		refID, refPayment []string
		// paygate_payment_history
		hPayment, hIntent, hType, hFrom, hTo, hCurrency, hEvent, hSource, hData []string
		hAmount                                                                 []int64
		hCreated                                                                []time.Time
		// paygate_callbacks
		cID, cPayment, cEvent, cType, cAction, cURL, cPayload, cStatus []string
		cSeq                                                           []int64
		cNext, cCreated, cUpdated                                      []time.Time
		cToken                                                         []string
		cUntil                                                         []time.Time
	)
	for _, t := range ts {
		p := t.p
		if len(t.hist) == 0 && sameRow(&t.beforeRow, p) && !refundsChanged(t.before, p) {
			continue
		}
		pID = append(pID, p.ID)
		pStatus = append(pStatus, string(p.Status))
		pRefunded = append(pRefunded, p.AmountRefunded)
		pStripeRefunded = append(pStripeRefunded, p.StripeAmountRefunded)
		pURL = append(pURL, p.PaymentURL)
		pPrice = append(pPrice, p.PriceID)
		pLink = append(pLink, p.PaymentLinkID)
		pSession = append(pSession, p.CheckoutSessionID)
		pIntent = append(pIntent, p.PaymentIntentID)
		pCharge = append(pCharge, p.ChargeID)
		pLivemode = append(pLivemode, p.Livemode)
		pUpdated = append(pUpdated, p.UpdatedAt)
		pEmail = append(pEmail, p.CustomerEmail)
		pSeq = append(pSeq, p.CallbackSeq)
		pAttempts = append(pAttempts, jsonText(p.Attempts))
		pDisputes = append(pDisputes, jsonText(p.Disputes))
		pStripeRefundedAt = append(pStripeRefundedAt, p.StripeRefundedAt)
		for _, id := range newRefs(t.beforeIDs, p.StripeIDs()) {
			refID, refPayment = append(refID, id), append(refPayment, p.ID)
		}
		offered := false // this payment's first callback of the batch is queued
		for i, h := range t.hist {
			data := h.Data
			if len(data) == 0 {
				data = json.RawMessage("{}")
			}
			hPayment = append(hPayment, h.PaymentID)
			hIntent = append(hIntent, h.PaymentIntentID)
			hType = append(hType, string(h.EventType))
			hFrom = append(hFrom, string(h.FromStatus))
			hTo = append(hTo, string(h.ToStatus))
			hAmount = append(hAmount, h.Amount)
			hCurrency = append(hCurrency, h.Currency)
			hEvent = append(hEvent, h.StripeEventID)
			hSource = append(hSource, h.Source)
			hData = append(hData, string(data))
			hCreated = append(hCreated, h.CreatedAt)
			if c := h.Callback; c != nil {
				cID = append(cID, c.ID)
				cPayment = append(cPayment, c.PaymentID)
				cEvent = append(cEvent, c.WebhookEventID)
				cSeq = append(cSeq, c.Sequence)
				cType = append(cType, c.EventType)
				cAction = append(cAction, c.Action)
				cURL = append(cURL, c.URL)
				cPayload = append(cPayload, string(c.Payload))
				cStatus = append(cStatus, string(c.Status))
				cNext = append(cNext, c.NextAttemptAt)
				cCreated = append(cCreated, c.CreatedAt)
				cUpdated = append(cUpdated, c.UpdatedAt)
				// Only the payment's first callback of the batch may go
				// claimed: a later one sent now would overtake it.
				token, until := "", time.Time{}
				if r := t.histRecs[i]; !offered && r.ClaimToken != "" {
					token, until = r.ClaimToken, r.ClaimUntil
				}
				offered = true
				cToken, cUntil = append(cToken, token), append(cUntil, until)
			}
		}
	}
	if len(pID) == 0 {
		return false
	}
	b.Queue(`UPDATE paygate_payments p SET status = u.status, amount_refunded = u.amount_refunded,
		stripe_amount_refunded = u.stripe_amount_refunded, payment_url = u.payment_url, price_id = u.price_id,
		payment_link_id = u.payment_link_id, checkout_session_id = u.checkout_session_id,
		payment_intent_id = u.payment_intent_id, charge_id = u.charge_id, livemode = u.livemode,
		updated_at = u.updated_at, customer_email = u.customer_email, callback_seq = u.callback_seq,
		attempts = u.attempts::jsonb, disputes = u.disputes::jsonb, stripe_refunded_at = u.stripe_refunded_at
		FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::text[], $6::text[], $7::text[], $8::text[],
			$9::text[], $10::text[], $11::bool[], $12::timestamptz[], $13::text[], $14::int8[], $15::text[],
			$16::text[], $17::timestamptz[])
			AS u(id, status, amount_refunded, stripe_amount_refunded, payment_url, price_id, payment_link_id,
				checkout_session_id, payment_intent_id, charge_id, livemode, updated_at, customer_email,
				callback_seq, attempts, disputes, stripe_refunded_at)
		WHERE p.id = u.id`,
		sizedArrays(96, pID, pStatus, pURL, pPrice, pLink, pSession, pIntent, pCharge, pEmail, pAttempts, pDisputes), pStatus, pRefunded, pStripeRefunded, pURL, pPrice, pLink, pSession, pIntent, pCharge, pLivemode,
		pUpdated, pEmail, pSeq, pAttempts, pDisputes, pStripeRefundedAt)
	if len(refID) > 0 {
		b.Queue(`INSERT INTO paygate_payment_refs (stripe_id, payment_id) SELECT * FROM unnest($1::text[], $2::text[])`, refID, refPayment)
	}
	for _, t := range ts {
		queueRefunds(b, t.p, t.before) // rare: one statement per changed refund
	}
	if len(hPayment) > 0 {
		b.Queue(`INSERT INTO paygate_payment_history (payment_id, payment_intent_id, event_type, from_status,
			to_status, amount, currency, stripe_event_id, source, data, created_at)
			SELECT payment_id, payment_intent_id, event_type, from_status, to_status, amount, currency,
				stripe_event_id, source, data::jsonb, created_at
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::text[],
				$8::text[], $9::text[], $10::text[], $11::timestamptz[]) WITH ORDINALITY
				AS u(payment_id, payment_intent_id, event_type, from_status, to_status, amount, currency,
					stripe_event_id, source, data, created_at, ord)
			ORDER BY ord`,
			sizedArrays(32, hPayment, hIntent, hType, hFrom, hTo, hCurrency, hEvent, hSource, hData), hIntent, hType, hFrom, hTo, hAmount, hCurrency, hEvent, hSource, hData, hCreated)
	}
	if len(cID) == 0 {
		return false
	}
	// A claimed callback is leased and its first attempt counted, as
	// ClaimCallbacks does; the NOT EXISTS is the claim's in-order rule (the
	// payment is locked, so no callback of it is inserted meanwhile). OFFSET 0
	// keeps the subquery whole: flattened, its NOT EXISTS ran once for each
	// of the three CASEs that read claim.
	b.Queue(`INSERT INTO paygate_callbacks (id, payment_id, webhook_event_id, sequence, event_type, action, url, payload,
		status, next_attempt_at, created_at, updated_at, attempts, lease_token, lease_expires_at)
		SELECT id, payment_id, webhook_event_id, sequence, event_type, action, url, payload::json, status,
			next_attempt_at, created_at, updated_at,
			CASE WHEN claim THEN 1 ELSE 0 END, CASE WHEN claim THEN token END, CASE WHEN claim THEN until END
		FROM (SELECT u.*, u.token <> '' AND NOT EXISTS (SELECT 1 FROM paygate_callbacks e
				WHERE e.payment_id = u.payment_id AND e.sequence < u.sequence AND e.status = 'pending') AS claim
			FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[], $7::text[], $8::text[],
				$9::text[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[], $13::text[], $14::timestamptz[])
				AS u(id, payment_id, webhook_event_id, sequence, event_type, action, url, payload, status,
					next_attempt_at, created_at, updated_at, token, until) OFFSET 0) c
		RETURNING id, lease_token IS NOT NULL`,
		sizedArrays(64, cID, cPayment, cEvent, cType, cAction, cURL, cPayload, cStatus, cToken), cPayment, cEvent, cSeq, cType, cAction, cURL, cPayload, cStatus, cNext, cCreated, cUpdated, cToken, cUntil,
	).Query(func(rows pgx.Rows) error {
		var id string
		var ok bool
		_, err := pgx.ForEachRow(rows, []any{&id, &ok}, func() error {
			if ok {
				claimed[id] = true
			}
			return nil
		})
		return err
	})
	for _, tok := range cToken {
		if tok == "" {
			return true
		}
	}
	return false // each may still be unclaimed (an earlier one pending): the poll finds it
}
