package sandbox

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// emit records an event about o (its state now) and queues its delivery.
// Callers hold mu.
func (s *Sandbox) emit(typ string, o obj, prev obj) {
	data := obj{"object": render(o)}
	if len(prev) > 0 {
		data["previous_attributes"] = render(prev)
	}
	pending := 0
	if s.whURL != "" && s.enabled(typ) {
		pending = 1
	}
	ev := obj{
		"id": newID("evt"), "object": "event", "api_version": APIVersion, "created": unix(s.now()),
		"data": data, "livemode": false, "pending_webhooks": pending,
		"request": obj{"id": nil, "idempotency_key": nil}, "type": typ,
	}
	if s.curReq != nil {
		ev["request"] = s.curReq
	}
	s.add(ev)
	s.events = append(s.events, ev)
	if s.enabled(typ) {
		payload, _ := json.MarshalIndent(render(ev), "", "  ")
		s.queue = append(s.queue, &delivery{event: ev["id"].(string), typ: typ, payload: payload, due: s.now()})
	}
}

func (s *Sandbox) enabled(typ string) bool {
	for _, e := range s.whEvts {
		if e == "*" || e == typ {
			return true
		}
	}
	return false
}

// delivery is one event waiting to be (re)sent.
type delivery struct {
	event   string
	typ     string
	payload []byte
	attempt int // attempts made so far
	due     time.Time
}

// Delivery is one webhook delivery attempt, for tests to inspect.
type Delivery struct {
	EventID   string
	Type      string
	Attempt   int // 1 for the first attempt
	At        time.Time
	Status    int    // HTTP status; 0 when the request failed
	Error     string // transport error, if any
	Duplicate bool   // a chaos duplicate
	Dropped   bool   // chaos dropped it: never sent
}

// Chaos makes webhook delivery misbehave at the given rates (0..1), drawn
// from a generator seeded with Seed, so one seed gives one schedule.
type Chaos struct {
	Seed      uint64
	Duplicate float64       // send an event twice
	Reorder   float64       // swap an event with the next one due
	Delay     float64       // hold an event back by DelayBy
	Drop      float64       // never send an event (it stays in the events list)
	DelayBy   time.Duration // default 10 minutes
}

// SetChaos sets webhook chaos and reseeds its generator.
func (s *Sandbox) SetChaos(c Chaos) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.DelayBy <= 0 {
		c.DelayBy = 10 * time.Minute
	}
	s.chaos = c
	s.rng = mrand.New(mrand.NewPCG(c.Seed, 0x5a4d))
}

// DeliveryReport sums up a DeliverAll.
type DeliveryReport struct {
	Sent    int // requests made (duplicates included)
	Failed  int // attempts that did not answer 2xx
	Dropped int
	Pending int // deliveries still queued (retries, delays) after this run
}

// DeliverAll fires due timers and sends every webhook due on the sandbox
// clock, one at a time in event order (chaos permitting), until none is due.
// Failed deliveries are rescheduled by RetrySchedule; Advance the clock to
// retry them. With no webhook URL set, nothing is sent and events wait.
func (s *Sandbox) DeliverAll() DeliveryReport {
	s.deliverMu.Lock()
	defer s.deliverMu.Unlock()
	var rep DeliveryReport
	for round := 0; round < 1000; round++ {
		s.mu.Lock()
		s.tick()
		url, secret := s.whURL, s.whSec
		var batch []*delivery
		if url != "" {
			now := s.now()
			rest := s.queue[:0:0]
			for _, d := range s.queue {
				if !d.due.After(now) {
					batch = append(batch, d)
				} else {
					rest = append(rest, d)
				}
			}
			s.queue = rest
			batch = s.applyChaos(batch, &rep)
		}
		s.mu.Unlock()
		if len(batch) == 0 {
			break
		}
		for _, d := range batch {
			s.send(url, secret, d, &rep)
		}
	}
	s.mu.Lock()
	rep.Pending = len(s.queue)
	s.mu.Unlock()
	return rep
}

// applyChaos drops, delays, duplicates and reorders a batch. Callers hold mu.
func (s *Sandbox) applyChaos(batch []*delivery, rep *DeliveryReport) []*delivery {
	c := s.chaos
	if c.Duplicate == 0 && c.Reorder == 0 && c.Delay == 0 && c.Drop == 0 {
		return batch
	}
	var out []*delivery
	for _, d := range batch {
		if d.attempt == 0 && c.Drop > 0 && s.rng.Float64() < c.Drop {
			rep.Dropped++
			s.log = append(s.log, Delivery{EventID: d.event, Type: d.typ, At: s.now(), Dropped: true})
			continue
		}
		if d.attempt == 0 && c.Delay > 0 && s.rng.Float64() < c.Delay && !d.delayed() {
			d.due = s.now().Add(c.DelayBy)
			d.attempt = -1 // marks "delayed once"; the first attempt is still 1
			s.queue = append(s.queue, d)
			continue
		}
		out = append(out, d)
		if c.Duplicate > 0 && s.rng.Float64() < c.Duplicate {
			dup := *d
			dup.attempt = -2
			out = append(out, &dup)
		}
	}
	if c.Reorder > 0 {
		for i := 0; i+1 < len(out); i++ {
			if s.rng.Float64() < c.Reorder {
				out[i], out[i+1] = out[i+1], out[i]
				i++
			}
		}
	}
	return out
}

func (d *delivery) delayed() bool { return d.attempt == -1 }

// send makes one delivery attempt and reschedules a failure.
func (s *Sandbox) send(url, secret string, d *delivery, rep *DeliveryReport) {
	dup := d.attempt == -2
	if d.attempt < 0 {
		d.attempt = 0
	}
	d.attempt++
	s.mu.Lock()
	now := s.now()
	s.mu.Unlock()
	ts := now.Unix()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(d.payload))
	if err != nil {
		s.cfg.Logger.LogAttrs(context.Background(), slog.LevelError, "sandbox: bad webhook url", slog.String("url", url), slog.String("error", err.Error()))
		return
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks) paygate-sandbox")
	req.Header.Set("Stripe-Signature", Sign(d.payload, secret, now))
	rec := Delivery{EventID: d.event, Type: d.typ, Attempt: d.attempt, At: time.Unix(ts, 0), Duplicate: dup}
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		rec.Error = err.Error()
	} else {
		rec.Status = resp.StatusCode
		_, _ = bytes.NewBuffer(nil).ReadFrom(resp.Body)
		resp.Body.Close()
	}
	rep.Sent++
	ok := err == nil && resp.StatusCode >= 200 && resp.StatusCode < 300
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, rec)
	if ok {
		if ev := s.objs[d.event]; ev != nil && !dup {
			ev["pending_webhooks"] = 0
		}
		return
	}
	rep.Failed++
	if dup {
		return
	}
	if d.attempt-1 < len(s.cfg.RetrySchedule) {
		d.due = s.now().Add(s.cfg.RetrySchedule[d.attempt-1])
		s.queue = append(s.queue, d)
	} else {
		s.cfg.Logger.LogAttrs(context.Background(), slog.LevelWarn, "sandbox: webhook delivery gave up",
			slog.String("event_id", d.event), slog.Int("attempts", d.attempt))
	}
}

// Sign returns a Stripe-Signature header value for payload signed with
// secret at t, exactly as Stripe signs: t=<unix>,v1=<hex HMAC-SHA256 of
// "<unix>.<payload>"> keyed with the whole whsec_ secret.
func Sign(payload []byte, secret string, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(payload)
	return fmt.Sprintf("t=%s,v1=%s", ts, hex.EncodeToString(mac.Sum(nil)))
}

// Redeliver queues an event for delivery again, now (as the Dashboard's
// "Resend" does), whatever became of its earlier deliveries. The next
// DeliverAll sends it.
func (s *Sandbox) Redeliver(eventID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := s.get("event", eventID)
	if ev == nil {
		return fmt.Errorf("%w: event %q", ErrNotFound, eventID)
	}
	payload, _ := json.MarshalIndent(render(ev), "", "  ")
	s.queue = append(s.queue, &delivery{event: eventID, typ: ev["type"].(string), payload: payload, due: s.now()})
	return nil
}

// Deliveries returns every delivery attempt so far, in order.
func (s *Sandbox) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivery(nil), s.log...)
}

// Event is a stored event, as the events API returns it.
type Event struct {
	ID      string
	Type    string
	Created int64
	// Object is the event's data.object as JSON.
	Object json.RawMessage
	// Payload is the whole event as JSON, as delivered.
	Payload json.RawMessage
}

// Events returns every event so far, oldest first.
func (s *Sandbox) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Event, 0, len(s.events))
	for _, ev := range s.events {
		r := render(ev)
		obj, _ := json.Marshal(r["data"].(obj)["object"])
		payload, _ := json.Marshal(r)
		out = append(out, Event{ID: ev["id"].(string), Type: ev["type"].(string), Created: toInt(ev["created"]), Object: obj, Payload: payload})
	}
	return out
}

// EventTypes returns the types of every event so far, oldest first.
func (s *Sandbox) EventTypes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.events))
	for i, ev := range s.events {
		out[i] = ev["type"].(string)
	}
	return out
}
