package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Summary describes a set of latencies.
type Summary struct {
	N                  int
	P50, P90, P99, Max time.Duration
}

// summarize sorts a copy of ds and takes its percentiles.
func summarize(ds []time.Duration) Summary {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return Summary{}
	}
	return Summary{
		N:   len(s),
		P50: percentile(s, 50),
		P90: percentile(s, 90),
		P99: percentile(s, 99),
		Max: s[len(s)-1],
	}
}

// percentile is the nearest-rank percentile of sorted (ascending): the
// smallest value with at least p % of the values at or below it, i.e. the
// value of 1-based rank ceil(p/100 × N). No interpolation: every figure
// reported is a latency that was observed. 0 for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// perSecond is n events over d.
func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// median of xs (the mean of the two middle values for an even count).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	switch n := len(s); {
	case n == 0:
		return 0
	case n%2 == 1:
		return s[n/2]
	default:
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// scheduled is when the i-th request (from 0) of an open-loop run at rate
// requests per second starting at start is due. Latencies of that run are
// measured from this time, not from when the request actually went out, so
// a generator or server that falls behind cannot hide it (no coordinated
// omission).
func scheduled(start time.Time, rate float64, i int) time.Time {
	return start.Add(time.Duration(float64(i) * float64(time.Second) / rate))
}

// ms formats d in milliseconds with a precision that suits its size.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.2f ms", v)
}
