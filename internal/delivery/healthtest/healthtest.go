// Package healthtest is test support: the behaviour every delivery.Health
// store must have, run by each store's tests against the real server
// (embedded store, DynamoDB on dynalite, Redis on redis-server).
package healthtest

import (
	"container/heap"
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/outbound"
	"github.com/regtrigger/regtrigger/internal/payload"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// Run checks h: the contract of each method, racing probe claims and
// openers, and — through a delivery.Engine on a simulated clock — that a
// target down for a while gets a bounded number of attempts while its
// circuit is open. h must be empty; keys are unique to each subtest.
func Run(t *testing.T, h delivery.Health) {
	t.Run("contract", func(t *testing.T) { contract(t, h) })
	t.Run("racing probes", func(t *testing.T) { racing(t, h) })
	t.Run("bounded attempts while open", func(t *testing.T) { Bounded(t, h) })
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func contract(t *testing.T, h delivery.Health) {
	ctx := context.Background()
	const tgt, trg = "https://contract.example:443", "contract-trigger"
	st, err := h.Read(ctx, tgt, trg)
	if err != nil || st != (delivery.State{}) {
		t.Fatalf("unknown target: %+v, %v; want zero", st, err)
	}
	for i := 1; i <= 3; i++ {
		st, err = h.Failed(ctx, tgt, trg, t0.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if st.Target.Failures != int64(i) || !st.FailingSince.Equal(t0.Add(time.Second)) {
			t.Fatalf("after failure %d: %+v; want %d failures, failing since the first", i, st, i)
		}
	}
	// A trigger-only failure leaves the target's count alone.
	if st, err = h.Failed(ctx, "", trg, t0.Add(time.Hour)); err != nil || !st.FailingSince.Equal(t0.Add(time.Second)) {
		t.Fatalf("trigger-only failure: %+v, %v", st, err)
	}
	if got, _ := h.Read(ctx, tgt, trg); got.Target.Failures != 3 {
		t.Fatalf("trigger-only failure counted on the target: %+v", got)
	}
	if ok, err := h.ClaimProbe(ctx, tgt, t0, t0.Add(time.Minute)); ok || err != nil {
		t.Fatalf("probe of a closed circuit: %v, %v", ok, err)
	}
	until := t0.Add(time.Minute)
	if ok, err := h.OpenCircuit(ctx, tgt, time.Time{}, until, time.Minute); !ok || err != nil {
		t.Fatalf("open: %v, %v", ok, err)
	}
	if ok, _ := h.OpenCircuit(ctx, tgt, time.Time{}, until.Add(time.Second), time.Minute); ok {
		t.Fatal("a second opener from closed won too")
	}
	st, _ = h.Read(ctx, tgt, trg)
	if !st.Target.OpenUntil.Equal(until) || st.Target.CoolDown != time.Minute || st.Target.Failures != 3 {
		t.Fatalf("open state: %+v", st.Target)
	}
	tests := []struct {
		name string
		now  time.Time
		want bool
	}{
		{"during the cool-down", until.Add(-time.Millisecond), false},
		{"after it", until, true},
		{"while the probe is out", until.Add(time.Second), false},
		{"after the probe's lease", until.Add(31 * time.Second), true},
	}
	for _, tt := range tests {
		ok, err := h.ClaimProbe(ctx, tgt, tt.now, tt.now.Add(30*time.Second))
		if ok != tt.want || err != nil {
			t.Errorf("probe %s: %v, %v; want %v", tt.name, ok, err, tt.want)
		}
	}
	// A failed probe re-opens it, compared against the OpenUntil read.
	if ok, _ := h.OpenCircuit(ctx, tgt, until, until.Add(2*time.Minute), 2*time.Minute); !ok {
		t.Fatal("re-open after the probe")
	}
	if st, _ = h.Read(ctx, tgt, trg); !st.Target.ProbeUntil.IsZero() || st.Target.CoolDown != 2*time.Minute {
		t.Fatalf("re-opened: %+v", st.Target)
	}
	if err := h.Recovered(ctx, tgt, ""); err != nil {
		t.Fatal(err)
	}
	if st, _ = h.Read(ctx, tgt, trg); st.Target != (delivery.TargetState{}) || st.FailingSince.IsZero() {
		t.Fatalf("after the target recovered: %+v; want a closed target, the trigger still failing", st)
	}
	if err := h.Recovered(ctx, tgt, trg); err != nil {
		t.Fatal(err)
	}
	if st, _ = h.Read(ctx, tgt, trg); st != (delivery.State{}) {
		t.Fatalf("after recovery: %+v", st)
	}
}

func racing(t *testing.T, h delivery.Health) {
	ctx := context.Background()
	const tgt = "https://racing.example:443"
	const n = 8
	var opened, probes atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if ok, err := h.OpenCircuit(ctx, tgt, time.Time{}, t0, time.Second); err != nil {
				t.Error(err)
			} else if ok {
				opened.Add(1)
			}
		})
	}
	wg.Wait()
	for range n {
		wg.Go(func() {
			if ok, err := h.ClaimProbe(ctx, tgt, t0, t0.Add(time.Minute)); err != nil {
				t.Error(err)
			} else if ok {
				probes.Add(1)
			}
		})
	}
	wg.Wait()
	if opened.Load() != 1 || probes.Load() != 1 {
		t.Errorf("%d racing openers and %d racing probes won; want one each", opened.Load(), probes.Load())
	}
	var failures atomic.Int64
	for range n {
		wg.Go(func() {
			st, err := h.Failed(ctx, tgt, "", t0)
			if err != nil {
				t.Error(err)
			}
			failures.Store(max(failures.Load(), st.Target.Failures))
		})
	}
	wg.Wait()
	if st, _ := h.Read(ctx, tgt, ""); st.Target.Failures != n {
		t.Errorf("%d racing failures counted %d", n, st.Target.Failures)
	}
}

// clock is the simulation's clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time       { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) set(t time.Time)      { c.mu.Lock(); c.now = t; c.mu.Unlock() }
func (c *clock) since() time.Duration { return c.Now().Sub(t0) }

// target answers 503 while down, 200 after, and counts the requests.
type target struct {
	clock     *clock
	downFor   time.Duration
	health    delivery.Health
	key       string
	requests  int
	whileOpen int
}

func (s *target) Post(ctx context.Context, _ string, _ http.Header, _ []byte) (*outbound.Response, error) {
	s.requests++
	if st, _ := s.health.Read(ctx, s.key, ""); st.Target.Open() {
		s.whileOpen++
	}
	if s.clock.since() < s.downFor {
		return &outbound.Response{Status: 503}, nil
	}
	return &outbound.Response{Status: 200}, nil
}

type due struct {
	at   time.Time
	task delivery.Task
}

type dueHeap []due

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(due)) }
func (h *dueHeap) Pop() any          { old := *h; x := old[len(old)-1]; *h = old[:len(old)-1]; return x }

// Bounded delivers 20 tasks to a target that is down for 2 s of a
// simulated clock, with a circuit of threshold 3 and a cool-down of 50 ms
// doubling to 400 ms, on retries every 10 ms: without the circuit the
// target would get some 4,000 requests while down. It asserts every task
// is delivered once the target is back, and that the requests made while
// the circuit was open are the probes: at most one per cool-down.
func Bounded(t *testing.T, h delivery.Health) {
	const (
		tasks     = 20
		threshold = 3
		coolDown  = 50 * time.Millisecond
		maxCool   = 400 * time.Millisecond
		downFor   = 2 * time.Second
	)
	clk := &clock{now: t0}
	tr := trigger.Trigger{Name: "bounded", Enabled: true, Namespace: "ns", Actions: []event.Action{event.PushImage},
		URL: "https://bounded.example/hook", Format: payload.TCR, Version: 1}
	srv := &target{clock: clk, downFor: downFor, health: h, key: delivery.TargetKey(tr.URL)}
	var records recordCount
	e := &delivery.Engine{
		Sender: srv, Triggers: delivery.FixedTriggers(tr), Health: h, Sink: &records,
		Policy:  delivery.Policy{MaxAttempts: 100, Backoff: []time.Duration{10 * time.Millisecond}},
		Circuit: delivery.Circuit{Threshold: threshold, CoolDown: coolDown, MaxCoolDown: maxCool, ProbeLease: 20 * time.Millisecond},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:     clk.Now, Rand: func() float64 { return 0.5 },
	}
	q := &dueHeap{}
	for i := range tasks {
		task := delivery.NewTask("tsk_bounded"+string(rune('a'+i)), &tr, event.Event{Action: event.PushImage, Namespace: "ns", Repository: "app", Tag: "v1"}, t0)
		heap.Push(q, due{at: t0.Add(time.Duration(i) * time.Millisecond), task: task})
	}
	ctx := context.Background()
	delivered, steps := 0, 0
	for q.Len() > 0 {
		if steps++; steps > 100000 {
			t.Fatal("the simulation does not end")
		}
		d := heap.Pop(q).(due)
		clk.set(d.at)
		out := e.Deliver(ctx, d.task)
		switch {
		case out.Retry:
			heap.Push(q, due{at: d.at.Add(out.Delay), task: out.Task})
		case out.Record.Status == record.Success:
			delivered++
		default:
			t.Fatalf("task %s ended %s (%s): %s", d.task.ID, out.Record.Status, out.Record.ErrorClass, out.Record.Error)
		}
	}
	if delivered != tasks {
		t.Fatalf("%d of %d tasks delivered", delivered, tasks)
	}
	// The cool-downs while down: 50, 100, 200, then 400 ms each; each
	// ends in one probe (plus one for a probe lease that lapsed).
	windows, elapsed := 0, time.Duration(0)
	for c := coolDown; elapsed < downFor; c = min(2*c, maxCool) {
		elapsed += c
		windows++
	}
	bound := windows + 1
	if srv.whileOpen > bound {
		t.Errorf("%d requests while the circuit was open; want at most %d (one probe per cool-down)", srv.whileOpen, bound)
	}
	if srv.requests > threshold+bound+tasks {
		t.Errorf("%d requests in all; want at most %d", srv.requests, threshold+bound+tasks)
	}
	if records.circuitOpen.Load() == 0 {
		t.Error("no circuit_open record")
	}
	t.Logf("%d requests (%d while open, bound %d), %d circuit_open records, simulated %v", srv.requests, srv.whileOpen, bound, records.circuitOpen.Load(), clk.since())
	if n := records.bad.Load(); n > 0 {
		t.Errorf("%d circuit_open records were not retrying, or counted an attempt", n)
	}
}

type recordCount struct{ circuitOpen, bad atomic.Int64 }

func (r *recordCount) Put(_ context.Context, rec record.Record) error {
	if rec.ErrorClass == record.ClassCircuitOpen {
		if rec.Status != record.Retrying || rec.Attempt != 0 {
			r.bad.Add(1)
		}
		r.circuitOpen.Add(1)
	}
	return nil
}
