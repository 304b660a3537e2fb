package paygate

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// rateLimiter keeps one token bucket per caller (API key).
type rateLimiter struct {
	limit rate.Limit
	burst int
	mu    sync.Mutex
	by    map[string]*rate.Limiter
}

func newRateLimiter(perSecond float64, burst int) *rateLimiter {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(1, int(math.Ceil(2*perSecond)))
	}
	return &rateLimiter{limit: rate.Limit(perSecond), burst: burst, by: map[string]*rate.Limiter{}}
}

// allow takes a token for caller, or returns how long until one is free.
func (l *rateLimiter) allow(caller string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	lim, ok := l.by[caller]
	if !ok {
		lim = rate.NewLimiter(l.limit, l.burst)
		l.by[caller] = lim
	}
	l.mu.Unlock()
	res := lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// limitRate answers 429 with Retry-After when the caller is over its rate.
func (g *Gateway) limitRate(next http.HandlerFunc) http.HandlerFunc {
	if g.limiter == nil {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if ok, wait := g.limiter.allow(CallerFrom(r), time.Now()); !ok {
			secs := int(math.Ceil(wait.Seconds()))
			w.Header().Set("Retry-After", strconv.Itoa(max(1, secs)))
			g.writeError(w, r, &Error{Code: CodeRateLimited, Message: "too many requests for this API key; retry after " + strconv.Itoa(max(1, secs)) + " s"})
			return
		}
		next(w, r)
	}
}
