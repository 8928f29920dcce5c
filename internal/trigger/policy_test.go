package trigger

import (
	"strings"
	"testing"
	"time"
)

// parsePolicy parses a trigger "hook" with field added. With a problem,
// it checks the load fails with it and reports false.
func parsePolicy(t *testing.T, field, problem string) ([]Trigger, bool) {
	t.Helper()
	const head = "triggers:\n  - name: hook\n    actions: [pushImage]\n    namespace: n\n    url: https://example.com/\n"
	ts, err := Parse(strings.NewReader(head+field), env(nil))
	if problem != "" {
		if err == nil || !strings.Contains(err.Error(), problem) {
			t.Fatalf("got %v, want a problem containing %q", err, problem)
		}
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return ts, true
}

func TestAutoDisableAfter(t *testing.T) {
	tests := []struct {
		name, field string
		want        time.Duration
		problem     string // "" = valid
	}{
		{"default", "", DefaultAutoDisableAfter, ""},
		{"days", "    auto-disable-after: 3d\n", 72 * time.Hour, ""},
		{"go duration", "    auto-disable-after: 36h\n", 36 * time.Hour, ""},
		{"never", "    auto-disable-after: 0\n", 0, ""},
		{"never, as a duration", "    auto-disable-after: 0s\n", 0, ""},
		{"negative", "    auto-disable-after: -1h\n", 0, "trigger hook (line 2): auto-disable-after: must not be negative"},
		{"not a duration", "    auto-disable-after: soon\n", 0, `trigger hook (line 2): auto-disable-after: "soon" is not a duration`},
		{"days with a fraction", "    auto-disable-after: 1.5d\n", 0, "auto-disable-after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, ok := parsePolicy(t, tt.field, tt.problem)
			if !ok {
				return
			}
			if got := ts[0].DisableAfter(); got != tt.want {
				t.Errorf("DisableAfter() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	tests := []struct {
		name, field string
		conc        int
		rate        float64
		problem     string
	}{
		{"none", "", 0, 0, ""},
		{"both", "    max-concurrency: 2\n    rate: 5\n", 2, 5, ""},
		{"a fraction of a request per second", "    rate: 0.5\n", 0, 0.5, ""},
		{"rate 0", "    rate: 0\n", 0, 0, "trigger hook (line 2): rate: 0: requests per second must be more than 0"},
		{"rate negative", "    rate: -1\n", 0, 0, "trigger hook (line 2): rate: -1: requests per second must be more than 0"},
		{"rate too high", "    rate: 20000\n", 0, 0, "rate: 20000 requests per second is more than the 10000 maximum"},
		{"rate not a number", "    rate: fast\n", 0, 0, "line 6"},
		{"concurrency 0", "    max-concurrency: 0\n", 0, 0, "trigger hook (line 2): max-concurrency: 0: use at least 1"},
		{"concurrency too high", "    max-concurrency: 5000\n", 0, 0, "max-concurrency: 5000 is more than the 1000 maximum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, ok := parsePolicy(t, tt.field, tt.problem)
			if !ok {
				return
			}
			if ts[0].MaxConcurrency != tt.conc || ts[0].Rate != tt.rate {
				t.Errorf("got max-concurrency %d, rate %v", ts[0].MaxConcurrency, ts[0].Rate)
			}
		})
	}
}

func TestCoalesceWindow(t *testing.T) {
	tests := []struct {
		name, field string
		want        time.Duration
		problem     string
	}{
		{"off by default", "", 0, ""},
		{"ten seconds", "    coalesce: 10s\n", 10 * time.Second, ""},
		{"zero is off", "    coalesce: 0\n", 0, ""},
		{"the maximum", "    coalesce: 10m\n", 10 * time.Minute, ""},
		{"over ten minutes", "    coalesce: 11m\n", 0, "trigger hook (line 2): coalesce: 11m0s is longer than the 10m0s maximum"},
		{"under a second", "    coalesce: 500ms\n", 0, "trigger hook (line 2): coalesce: 500ms is too short; use at least 1s"},
		{"negative", "    coalesce: -5s\n", 0, "trigger hook (line 2): coalesce: must be positive (0 = off)"},
		{"not a duration", "    coalesce: soon\n", 0, `trigger hook (line 2): coalesce: "soon" is not a duration like "10s"`},
		{"with format raw", "    coalesce: 10s\n    format: raw\n", 0, "trigger hook (line 2): coalesce: format raw sends the registry's own body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, ok := parsePolicy(t, tt.field, tt.problem)
			if !ok {
				return
			}
			if got := time.Duration(ts[0].Coalesce); got != tt.want {
				t.Errorf("coalesce %v, want %v", got, tt.want)
			}
		})
	}
}
