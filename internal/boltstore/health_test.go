package boltstore

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/delivery/healthtest"
	"github.com/regtrigger/regtrigger/internal/dispatcher"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/outbound"
	"github.com/regtrigger/regtrigger/internal/payload"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

func TestHealthContract(t *testing.T) {
	healthtest.Run(t, open(t, "", newClock(time.Now())).Health())
}

// downTarget answers 503 until up is closed, then 200, and counts the
// requests made while the target's circuit was open.
type downTarget struct {
	health   delivery.Health
	key      string
	mu       sync.Mutex
	up       bool
	requests int
	open     int
	ok       int
	done     chan struct{}
	want     int
}

func (d *downTarget) Post(ctx context.Context, _ string, _ http.Header, _ []byte) (*outbound.Response, error) {
	st, _ := d.health.Read(ctx, d.key, "")
	d.mu.Lock()
	defer d.mu.Unlock()
	d.requests++
	if st.Target.Open() {
		d.open++
	}
	if !d.up {
		return &outbound.Response{Status: 503}, nil
	}
	if d.ok++; d.ok == d.want {
		close(d.done)
	}
	return &outbound.Response{Status: 200}, nil
}

// TestCircuitBoundsAttemptsOnThePool runs serve's dispatcher — the pool
// of workers over the embedded queue — against a target that is down for
// a second: threshold 3, cool-down 50 ms doubling to 200 ms, retries
// every 10 ms. While its circuit is open the target gets only the
// probes (one per cool-down window, and the requests the other workers
// had started when it opened); every task is delivered once it is up.
func TestCircuitBoundsAttemptsOnThePool(t *testing.T) {
	const (
		tasks, workers, threshold = 20, 4, 3
		coolDown, maxCool         = 50 * time.Millisecond, 200 * time.Millisecond
		downFor                   = time.Second
	)
	s, err := Open(filepath.Join(t.TempDir(), "s.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	tr, err := s.Triggers().Create(ctx, trigger.Trigger{Name: "down", Enabled: true, Namespace: "ns", Actions: []event.Action{event.PushImage},
		URL: "https://down.example/hook", Format: payload.TCR})
	if err != nil {
		t.Fatal(err)
	}
	q := NewTaskQueue(s)
	var ts []delivery.Task
	for i := range tasks {
		ts = append(ts, delivery.NewTask(fmt.Sprintf("tsk_%032x", i), &tr, event.Event{Action: event.PushImage, Namespace: "ns", Repository: "app", Tag: fmt.Sprint("v", i)}, time.Now()))
	}
	if err := q.Enqueue(ctx, ts); err != nil {
		t.Fatal(err)
	}
	target := &downTarget{health: s.Health(), key: delivery.TargetKey(tr.URL), done: make(chan struct{}), want: tasks}
	engine := &delivery.Engine{
		Sender: target, Triggers: s.Triggers(), Health: s.Health(),
		Policy:  delivery.Policy{MaxAttempts: 100, Backoff: []time.Duration{10 * time.Millisecond}},
		Circuit: delivery.Circuit{Threshold: threshold, CoolDown: coolDown, MaxCoolDown: maxCool, ProbeLease: 10 * time.Second},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	pool := &dispatcher.Pool{Queue: q, Engine: engine, Workers: workers, Idle: 5 * time.Millisecond, Logger: engine.Logger}
	q.OnEnqueue = pool.Wake
	pctx, stop := context.WithCancel(ctx)
	poolDone := make(chan error, 1)
	go func() { poolDone <- pool.Run(pctx) }()
	start := time.Now()
	time.Sleep(downFor)
	target.mu.Lock()
	target.up = true
	down := time.Since(start)
	target.mu.Unlock()
	select {
	case <-target.done:
	case <-time.After(time.Minute):
		t.Fatal("the tasks were not all delivered within a minute of the target coming back")
	}
	stop()
	if err := <-poolDone; err != nil {
		t.Fatal(err)
	}
	// Cool-down windows that fit in the time the target was down: each
	// lets one probe out, and one more may straddle its end.
	windows, elapsed := 0, time.Duration(0)
	for c := coolDown; elapsed < down; c = min(2*c, maxCool) {
		elapsed += c
		windows++
	}
	bound := windows + 1 + workers
	target.mu.Lock()
	defer target.mu.Unlock()
	if target.open > bound {
		t.Errorf("%d requests while the circuit was open; want at most %d (%d cool-down windows in %v, +1, + %d workers in flight)", target.open, bound, windows, down, workers)
	}
	recs, err := s.Records().List(ctx, record.Query{Trigger: "down", Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for _, r := range recs {
		if r.ErrorClass == record.ClassCircuitOpen {
			held++
			if r.Status != record.Retrying || r.Attempt != 0 {
				t.Errorf("circuit_open record %+v: want retrying with no attempt", r)
			}
		}
	}
	if held == 0 {
		t.Error("no circuit_open record in the log")
	}
	t.Logf("%d requests (%d while open, bound %d; without a circuit ~%d), %d circuit_open records", target.requests, target.open, bound, int(down/(10*time.Millisecond))*tasks, held)
}
