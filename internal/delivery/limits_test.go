package delivery

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/outbound"
	"github.com/regtrigger/regtrigger/internal/record"
)

// gaugeSender counts the requests in flight and answers 200 once release
// is closed (or at once, when it is nil).
type gaugeSender struct {
	mu            sync.Mutex
	inflight, top int
	sent          []time.Time
	now           func() time.Time
	release       chan struct{}
}

func (g *gaugeSender) Post(ctx context.Context, _ string, _ http.Header, _ []byte) (*outbound.Response, error) {
	g.mu.Lock()
	g.inflight++
	g.top = max(g.top, g.inflight)
	if g.now != nil {
		g.sent = append(g.sent, g.now())
	}
	g.mu.Unlock()
	if g.release != nil {
		select {
		case <-g.release:
		case <-ctx.Done():
		}
	} else {
		time.Sleep(time.Millisecond) // let the others pile up
	}
	g.mu.Lock()
	g.inflight--
	g.mu.Unlock()
	return &outbound.Response{Status: 200}, nil
}

func TestMaxConcurrency(t *testing.T) {
	tests := []struct {
		name    string
		maxWait time.Duration
		block   bool // the requests in flight do not end until all tasks are handled
		held    int  // tasks put back on the queue
	}{
		{"the others wait in their workers", time.Minute, false, 0},
		{"the others go back on the queue", time.Millisecond, true, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &gaugeSender{}
			if tt.block {
				s.release = make(chan struct{})
			}
			tr := testTrigger()
			tr.MaxConcurrency = 2
			var logs bytes.Buffer
			e := newEngine(s, nil, &logs)
			e.Triggers = FixedTriggers(tr)
			e.Limits = &Limits{MaxWait: tt.maxWait}
			const n = 8
			outs := make(chan Outcome, n)
			var wg sync.WaitGroup
			for i := range n {
				task := testTask()
				task.ID = fmt.Sprint("task-", i)
				wg.Go(func() { outs <- e.Deliver(context.Background(), task) })
			}
			if tt.block {
				// The held ones come back at once; then let the two go.
				for range tt.held {
					out := <-outs
					if !out.Retry || out.Record.ErrorClass != record.ClassConcurrencyLimited || out.Task.Attempt != 0 || out.Delay <= 0 {
						t.Errorf("held task: %+v", out)
					}
				}
				close(s.release)
			}
			wg.Wait()
			close(outs)
			for out := range outs {
				if out.Record.Status != record.Success {
					t.Errorf("task %s: %s (%s)", out.Task.ID, out.Record.Status, out.Record.ErrorClass)
				}
			}
			if s.top > tr.MaxConcurrency {
				t.Errorf("%d requests in flight at once; max-concurrency is %d", s.top, tr.MaxConcurrency)
			}
		})
	}
}

// TestRate runs a burst of 10 tasks for a trigger of rate 2 on a simulated
// clock: each goes out in its own slot, 500 ms after the one before, and
// none is put back on the queue more than once.
func TestRate(t *testing.T) {
	tests := []struct {
		name     string
		maxWait  time.Duration
		wantHeld int
	}{
		{"waits in the worker", time.Second, 0},
		{"waits on the queue", 100 * time.Millisecond, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := fixedNow
			clock := func() time.Time { return now }
			s := &gaugeSender{now: clock}
			tr := testTrigger()
			tr.Rate = 2
			var logs bytes.Buffer
			e := newEngine(s, nil, &logs)
			e.Now = clock
			e.Triggers = FixedTriggers(tr)
			e.Limits = &Limits{MaxWait: tt.maxWait, Now: clock, Sleep: func(_ context.Context, d time.Duration) error { now = now.Add(d); return nil }}
			type due struct {
				at   time.Time
				task Task
			}
			var queue []due
			for i := range 10 {
				task := testTask()
				task.ID = fmt.Sprint("task-", i)
				queue = append(queue, due{fixedNow, task})
			}
			held := map[string]int{}
			for len(queue) > 0 {
				sort.SliceStable(queue, func(i, j int) bool { return queue[i].at.Before(queue[j].at) })
				d := queue[0]
				queue = queue[1:]
				if d.at.After(now) {
					now = d.at
				}
				out := e.Deliver(context.Background(), d.task)
				switch {
				case out.Retry:
					if out.Record.ErrorClass != record.ClassRateLimited || out.Task.Attempt != 0 {
						t.Fatalf("held: %+v", out.Record)
					}
					held[d.task.ID]++
					queue = append(queue, due{now.Add(out.Delay), out.Task})
				case out.Record.Status != record.Success:
					t.Fatalf("task %s: %+v", d.task.ID, out.Record)
				}
			}
			if len(s.sent) != 10 {
				t.Fatalf("%d requests, want 10", len(s.sent))
			}
			for i := 1; i < len(s.sent); i++ {
				if gap := s.sent[i].Sub(s.sent[i-1]); gap < 500*time.Millisecond {
					t.Errorf("request %d went %v after the one before; the rate allows one per 500ms", i, gap)
				}
			}
			total := 0
			for id, n := range held {
				if n > 1 {
					t.Errorf("%s put back %d times", id, n)
				}
				total += n
			}
			if total != tt.wantHeld {
				t.Errorf("%d tasks put back on the queue, want %d", total, tt.wantHeld)
			}
		})
	}
}
