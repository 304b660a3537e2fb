package callback

import (
	"sync"
	"time"
)

// breaker stops an engine from burning attempts on a receiver that is
// plainly down. After Threshold attempts in a row fail for a reason that
// says the receiver is unavailable (no connection, a timeout, a 5xx, a 429),
// it opens: the engine claims nothing for a cooldown (30 s, doubling with
// every failed probe up to MaxCooldown), then sends one callback as a probe.
// A probe that succeeds closes it and everything due goes out at once; one
// that fails opens it again. The probe is a callback that is due: no
// callback is ever attempted before its schedule says, and while the
// breaker is open the callbacks that come due wait without using up their
// attempts. Each engine keeps its own breaker.
type breaker struct {
	threshold   int
	maxCooldown time.Duration

	mu        sync.Mutex
	failures  int
	open      bool
	probing   bool
	until     time.Time
	cooldown  time.Duration
	openCount int // times opened, for tests and logs
}

const firstCooldown = 30 * time.Second

// allow reports whether a worker may claim callbacks now, and how many: 0
// while open, 1 for a probe when the cooldown is over (one probe at a time),
// else limit. probe says the worker holds the probe: it must then record
// its outcome, or call probeNotSent.
func (b *breaker) allow(now time.Time, limit int) (n int, probe bool) {
	if b == nil {
		return limit, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case !b.open:
		return limit, false
	case b.probing || now.Before(b.until):
		return 0, false
	default:
		b.probing = true
		return 1, true
	}
}

// probeNotSent gives the probe back unsent (its claim failed, or its lease
// was too short to send it): the breaker stays open, and the next claim
// after the cooldown probes again.
func (b *breaker) probeNotSent() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
}

// probeNow ends the cooldown of an open breaker: the next claim probes.
func (b *breaker) probeNow(now time.Time) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open && now.Before(b.until) {
		b.until = now
	}
}

// wait is how long until a probe may be sent (0 when closed).
func (b *breaker) wait(now time.Time) time.Duration {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return 0
	}
	return max(0, b.until.Sub(now))
}

// isOpen reports whether the breaker is open (a probe included).
func (b *breaker) isOpen() bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open
}

// record notes an attempt's outcome; down says the failure means the
// receiver is unavailable. It reports whether the breaker just opened.
func (b *breaker) record(now time.Time, success, down bool) (opened bool) {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if success {
		b.failures, b.open, b.probing, b.cooldown = 0, false, false, 0
		return false
	}
	if !down {
		b.failures = 0 // the receiver answers; it refuses this callback
		if b.probing {
			b.open, b.probing, b.cooldown = false, false, 0
		}
		return false
	}
	b.failures++
	switch {
	case b.probing:
		b.probing = false
		b.cooldown = min(2*b.cooldown, b.maxCooldown)
		b.until = now.Add(b.cooldown)
	case !b.open && b.failures >= b.threshold:
		b.open, b.cooldown = true, min(firstCooldown, b.maxCooldown)
		b.until = now.Add(b.cooldown)
		b.openCount++
		return true
	}
	return false
}
