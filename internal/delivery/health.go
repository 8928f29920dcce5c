package delivery

import (
	"context"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// TargetState is what a Health store knows of one target (scheme, host and
// port of a webhook URL, see TargetKey).
type TargetState struct {
	// Failures counts the retryable failures (network, timeout, 408, 429,
	// 5xx) since the target last answered otherwise.
	Failures int64
	// OpenUntil is when the circuit's cool-down ends; zero while the
	// circuit is closed. Past it the circuit is half-open: one probe at a
	// time may go.
	OpenUntil time.Time
	// CoolDown is the cool-down that set OpenUntil; it doubles at each
	// failed probe.
	CoolDown time.Duration
	// ProbeUntil is when the probe claimed last may be presumed lost.
	ProbeUntil time.Time
}

// Open reports whether the circuit is open or half-open.
func (s TargetState) Open() bool { return !s.OpenUntil.IsZero() }

// State is the health of one target and of one trigger.
type State struct {
	Target TargetState
	// FailingSince is the first failed delivery of the trigger since its
	// last success (zero: its last delivery succeeded, or none failed).
	FailingSince time.Time
}

// Health keeps the state the delivery policies need across tasks, workers
// and (in a shared store) processes: each target's consecutive failures and
// circuit, and each trigger's first failure since its last success. Every
// method must be safe for concurrent use; the stores make the writes
// atomic (a counter increment, conditional writes), so racing dispatchers
// open a circuit once and send one probe at a time.
//
// Times are given by the caller and kept to the millisecond: a time read
// back compares equal to the one written.
type Health interface {
	// Read returns the state of target and trigger (zero values for
	// unknown ones).
	Read(ctx context.Context, target, trigger string) (State, error)
	// Failed adds one consecutive failure to target ("": none) and marks
	// trigger ("": none) failing since now unless it already is. It
	// returns the state after the write.
	Failed(ctx context.Context, target, trigger string, now time.Time) (State, error)
	// Recovered forgets target's failures, closing its circuit, and
	// trigger's failing-since ("" skips either).
	Recovered(ctx context.Context, target, trigger string) error
	// OpenCircuit opens target's circuit until until with coolDown, and
	// clears its probe, if its OpenUntil is still prev (zero: closed). It
	// reports whether it did: of racing openers one wins.
	OpenCircuit(ctx context.Context, target string, prev, until time.Time, coolDown time.Duration) (bool, error)
	// ClaimProbe claims the one probe of a half-open circuit — open, its
	// OpenUntil and any earlier probe's ProbeUntil not after now — until
	// until. It reports whether this caller got it.
	ClaimProbe(ctx context.Context, target string, now, until time.Time) (bool, error)
}

// Circuit tunes the per-target circuit breaker. The zero value is the
// default.
type Circuit struct {
	// Threshold is the consecutive retryable failures that open a circuit
	// (default 5).
	Threshold int
	// CoolDown is the first cool-down (default 1m); each failed probe
	// doubles it, up to MaxCoolDown (default 30m).
	CoolDown, MaxCoolDown time.Duration
	// ProbeLease is how long a claimed probe keeps other tasks back
	// before it is presumed lost (default: the trigger's deadline + 10s).
	ProbeLease time.Duration
}

// The circuit defaults.
const (
	DefaultCircuitThreshold = 5
	DefaultCoolDown         = time.Minute
	DefaultMaxCoolDown      = 30 * time.Minute
)

func (c Circuit) threshold() int64 {
	if c.Threshold > 0 {
		return int64(c.Threshold)
	}
	return DefaultCircuitThreshold
}

func (c Circuit) coolDown() time.Duration {
	if c.CoolDown > 0 {
		return c.CoolDown
	}
	return DefaultCoolDown
}

func (c Circuit) maxCoolDown() time.Duration {
	if c.MaxCoolDown > 0 {
		return max(c.MaxCoolDown, c.coolDown())
	}
	return max(DefaultMaxCoolDown, c.coolDown())
}

func (c Circuit) probeLease(tr *trigger.Trigger) time.Duration {
	if c.ProbeLease > 0 {
		return c.ProbeLease
	}
	return tr.Deadline() + 10*time.Second
}

// next is the cool-down after a failed probe of a circuit opened for prev.
func (c Circuit) next(prev time.Duration) time.Duration {
	if prev <= 0 {
		return c.coolDown()
	}
	return min(2*prev, c.maxCoolDown())
}

// TargetKey is the circuit key of a webhook URL: scheme, lowercased host
// and port ("https://hooks.example.com:443"), the port filled in for the
// scheme's default. It is "" for a URL that does not parse.
func TargetKey(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		switch scheme {
		case "https":
			port = "443"
		default:
			port = "80"
		}
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// gate is what the engine learnt of a task's target before sending.
type gate struct {
	key   string
	state State
	read  bool // state was read (false: no Health, or the read failed)
	probe bool // this attempt is the circuit's probe
}

// admit reads the target's health and decides whether the task may be
// sent now. When it may not (the circuit is open, or another task is its
// probe), it fills rec and returns the retry outcome: the task waits,
// without counting an attempt. A store that cannot be read lets the task
// go: the circuit saves requests, it must not stop deliveries.
func (e *Engine) admit(ctx context.Context, t Task, tr *trigger.Trigger, rec *record.Record, now time.Time) (gate, *Outcome) {
	g := gate{key: TargetKey(tr.URL)}
	if e.Health == nil || g.key == "" {
		return g, nil
	}
	st, err := e.Health.Read(ctx, g.key, tr.Name)
	if err != nil {
		e.logger().LogAttrs(ctx, slog.LevelWarn, "read target health; sending anyway", slog.String("task_id", t.ID), slog.String("target", rec.Target), slog.String("error", err.Error()))
		return g, nil
	}
	g.state, g.read = st, true
	ts := st.Target
	if !ts.Open() {
		return g, nil
	}
	var wait time.Duration
	switch {
	case now.Before(ts.OpenUntil):
		wait = ts.OpenUntil.Sub(now)
	case now.Before(ts.ProbeUntil):
		wait = ts.ProbeUntil.Sub(now) // another task is the probe
	default:
		lease := e.Circuit.probeLease(tr)
		ok, err := e.Health.ClaimProbe(ctx, g.key, now, now.Add(lease))
		if err != nil {
			e.logger().LogAttrs(ctx, slog.LevelWarn, "claim circuit probe; sending anyway", slog.String("task_id", t.ID), slog.String("target", rec.Target), slog.String("error", err.Error()))
		}
		if ok || err != nil {
			g.probe = ok
			return g, nil
		}
		wait = lease // lost the race: another task is the probe
	}
	// Spread the waiting tasks over a tenth of the cool-down, so that
	// they do not all come back at the same instant.
	wait += time.Duration(float64(max(ts.CoolDown, time.Millisecond)) * 0.1 * e.rand()())
	wait = max(wait.Round(time.Millisecond), time.Millisecond)
	rec.Status, rec.ErrorClass = record.Retrying, record.ClassCircuitOpen
	rec.Error = "circuit open: " + rec.Target + " failed " + strconv.FormatInt(ts.Failures, 10) + " times in a row; waiting for the probe after the cool-down of " + ts.CoolDown.String()
	rec.NextAttemptAt = now.Add(wait).UTC()
	return g, &Outcome{Retry: true, Delay: wait}
}

// report tells Health how the attempt went, and opens the circuit when
// the failures reach the threshold or the probe failed.
func (e *Engine) report(ctx context.Context, g gate, tr *trigger.Trigger, rec *record.Record, now time.Time) (State, bool) {
	if e.Health == nil || g.key == "" {
		return State{}, false
	}
	var (
		st  State
		err error
	)
	log := func(what string, err error) {
		e.logger().LogAttrs(ctx, slog.LevelWarn, what, slog.String("task_id", rec.TaskID), slog.String("target", rec.Target), slog.String("error", err.Error()))
	}
	switch {
	case rec.Status == record.Success:
		if !g.read || g.probe || g.state.Target.Failures > 0 || !g.state.FailingSince.IsZero() {
			if err := e.Health.Recovered(ctx, g.key, tr.Name); err != nil {
				log("record target recovery", err)
			}
			if g.probe {
				e.logger().LogAttrs(ctx, slog.LevelInfo, "circuit closed", slog.String("target", rec.Target), slog.String("trigger", tr.Name))
			}
		}
		return State{}, false
	case retryableClass(rec.ErrorClass):
		if st, err = e.Health.Failed(ctx, g.key, tr.Name, now); err != nil {
			log("record target failure", err)
			return st, false
		}
		e.maybeOpen(ctx, g, st.Target, rec, now)
		return st, true
	case rec.ErrorClass == record.ClassCanceled || rec.ErrorClass == record.ClassPayload:
		return State{}, false // not the target's doing
	default:
		// The target answered (a final 4xx, a redirect, a platform's
		// refusal) or was refused by the guard: it is not down, but the
		// trigger's delivery failed.
		if rec.HTTPStatus != 0 && (!g.read || g.state.Target.Failures > 0 || g.probe) {
			if err := e.Health.Recovered(ctx, g.key, ""); err != nil {
				log("record target recovery", err)
			}
		}
		if st, err = e.Health.Failed(ctx, "", tr.Name, now); err != nil {
			log("record trigger failure", err)
			return st, false
		}
		return st, true
	}
}

// maybeOpen opens the circuit after a failure that reached the threshold,
// or re-opens it with a doubled cool-down after a failed probe.
func (e *Engine) maybeOpen(ctx context.Context, g gate, ts TargetState, rec *record.Record, now time.Time) {
	var prev time.Time
	var cool time.Duration
	switch {
	case g.probe:
		prev, cool = g.state.Target.OpenUntil, e.Circuit.next(g.state.Target.CoolDown)
	case !ts.Open() && ts.Failures >= e.Circuit.threshold():
		cool = e.Circuit.coolDown()
	default:
		return
	}
	until := now.Add(cool).Truncate(time.Millisecond)
	ok, err := e.Health.OpenCircuit(ctx, g.key, prev, until, cool)
	if err != nil {
		e.logger().LogAttrs(ctx, slog.LevelWarn, "open circuit", slog.String("target", rec.Target), slog.String("error", err.Error()))
		return
	}
	if ok {
		e.logger().LogAttrs(ctx, slog.LevelWarn, "circuit opened", slog.String("target", rec.Target), slog.String("trigger", rec.Trigger),
			slog.Int64("failures", ts.Failures), slog.Bool("probe_failed", g.probe), slog.Duration("cool_down", cool), slog.Time("open_until", until.UTC()))
	}
}

// retryableClass reports whether an error class is a target failure that
// counts towards its circuit.
func retryableClass(c string) bool {
	switch c {
	case record.ClassNetwork, record.ClassTimeout, record.ClassHTTP408, record.ClassHTTP429, record.ClassHTTP5xx:
		return true
	}
	return false
}

// MemHealth is a Health in memory: for one process that owns its queue
// (the embedded store of `regtrigger serve`) and for tests. The zero
// value is ready; it is safe for concurrent use.
type MemHealth struct {
	mu       sync.Mutex
	targets  map[string]TargetState
	triggers map[string]time.Time
}

var _ Health = (*MemHealth)(nil)

func ms(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.UnixMilli(t.UnixMilli()).UTC()
}

// Read returns the state of target and trigger.
func (m *MemHealth) Read(_ context.Context, target, trig string) (State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return State{Target: m.targets[target], FailingSince: m.triggers[trig]}, nil
}

// Failed counts a failure of target and of trigger.
func (m *MemHealth) Failed(_ context.Context, target, trig string, now time.Time) (State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.targets == nil {
		m.targets, m.triggers = make(map[string]TargetState), make(map[string]time.Time)
	}
	var st State
	if target != "" {
		ts := m.targets[target]
		ts.Failures++
		m.targets[target] = ts
		st.Target = ts
	}
	if trig != "" {
		since, ok := m.triggers[trig]
		if !ok {
			since = ms(now)
			m.triggers[trig] = since
		}
		st.FailingSince = since
	}
	return st, nil
}

// Recovered forgets target's and trigger's failures.
func (m *MemHealth) Recovered(_ context.Context, target, trig string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if target != "" {
		delete(m.targets, target)
	}
	if trig != "" {
		delete(m.triggers, trig)
	}
	return nil
}

// OpenCircuit opens target's circuit if its OpenUntil is still prev.
func (m *MemHealth) OpenCircuit(_ context.Context, target string, prev, until time.Time, coolDown time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.targets == nil {
		m.targets, m.triggers = make(map[string]TargetState), make(map[string]time.Time)
	}
	ts := m.targets[target]
	if !ts.OpenUntil.Equal(ms(prev)) {
		return false, nil
	}
	ts.OpenUntil, ts.CoolDown, ts.ProbeUntil = ms(until), coolDown.Truncate(time.Millisecond), time.Time{}
	m.targets[target] = ts
	return true, nil
}

// ClaimProbe claims the probe of a half-open circuit.
func (m *MemHealth) ClaimProbe(_ context.Context, target string, now, until time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ts, ok := m.targets[target]
	if !ok || !ts.Open() || ts.OpenUntil.After(now) || ts.ProbeUntil.After(now) {
		return false, nil
	}
	ts.ProbeUntil = ms(until)
	m.targets[target] = ts
	return true, nil
}
