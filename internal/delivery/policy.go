package delivery

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultBackoff is the wait after each failed attempt of the default
// 8-attempt policy: about a day from the first attempt to the last
// (0, 30s, 2m30s, 12m30s, 42m30s, 2h42m, 8h42m, 23h42m), before jitter.
var DefaultBackoff = []time.Duration{
	30 * time.Second,
	2 * time.Minute,
	10 * time.Minute,
	30 * time.Minute,
	2 * time.Hour,
	6 * time.Hour,
	15 * time.Hour,
}

// Policy decides how often and how late a failed delivery is retried.
type Policy struct {
	// MaxAttempts is the number of attempts, the first included (default 8).
	MaxAttempts int
	// Backoff is the wait after attempt n (Backoff[n-1]); attempts past its
	// end reuse the last value.
	Backoff []time.Duration
	// Jitter spreads each wait by up to ±Jitter of itself (default 0.2), so
	// tasks that failed together do not come back together.
	Jitter float64
	// MaxRetryAfter bounds how long a target's Retry-After can push the next
	// attempt (default 6h).
	MaxRetryAfter time.Duration
}

// DefaultPolicy is 8 attempts over about a day.
func DefaultPolicy() Policy {
	return Policy{MaxAttempts: 8, Backoff: DefaultBackoff, Jitter: 0.2, MaxRetryAfter: 6 * time.Hour}
}

// Validate reports a policy that cannot work.
func (p Policy) Validate() error {
	switch {
	case p.MaxAttempts < 1 || p.MaxAttempts > 100:
		return fmt.Errorf("attempts %d: use 1 to 100", p.MaxAttempts)
	case p.MaxAttempts > 1 && len(p.Backoff) == 0:
		return fmt.Errorf("a backoff schedule is needed for %d attempts", p.MaxAttempts)
	case p.Jitter < 0 || p.Jitter >= 1:
		return fmt.Errorf("jitter %v: use 0 to 0.99", p.Jitter)
	}
	for i, d := range p.Backoff {
		if d <= 0 {
			return fmt.Errorf("backoff step %d is %v: steps must be positive", i+1, d)
		}
	}
	return nil
}

// Delay returns the wait before the attempt after attempt n (1-based), given
// the target's Retry-After (zero if none). rnd returns a value in [0, 1).
func (p Policy) Delay(n int, retryAfter time.Duration, rnd func() float64) time.Duration {
	if len(p.Backoff) == 0 {
		return 0
	}
	i := min(max(n, 1), len(p.Backoff)) - 1
	d := p.Backoff[i]
	if p.Jitter > 0 && rnd != nil {
		d = time.Duration(float64(d) * (1 - p.Jitter + 2*p.Jitter*rnd()))
	}
	if retryAfter > 0 {
		limit := p.MaxRetryAfter
		if limit <= 0 {
			limit = 6 * time.Hour
		}
		d = max(d, min(retryAfter, limit))
	}
	return d.Round(time.Millisecond)
}

// defaultRand is the jitter source.
func defaultRand() float64 { return rand.Float64() }

// RetryAfter parses a Retry-After header: delay-seconds or an HTTP date. It
// returns zero for a missing, malformed or past value.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, int64(365*24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
