package delivery

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// DefaultLimitWait is the longest Limits keeps a worker waiting for a
// trigger's slot before the task is put back on the queue instead.
const DefaultLimitWait = time.Second

// Limits enforces each trigger's max-concurrency and rate across the
// workers of one process: its state is in memory, so several processes
// (Lambda containers, serve instances on one Redis) each allow the limit.
//
// A task over a limit waits: in the worker for up to MaxWait, or else on
// the queue, as a retry that counts no attempt. A task over the rate is
// given the next free slot (1/rate after the one before) and, if that is
// further than MaxWait, put back on the queue until then with the slot
// kept for it, so N tasks of a burst go out at 1/rate apart, each held
// once. The zero value is ready; it is safe for concurrent use.
type Limits struct {
	// MaxWait bounds the wait in the worker (0 = DefaultLimitWait).
	MaxWait time.Duration
	// Now and Sleep are the clock; nil means the real ones. Sleep returns
	// early with ctx's error.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error

	mu sync.Mutex
	m  map[string]*limit
}

type limit struct {
	inflight int
	freed    chan struct{} // closed when a concurrency slot frees
	next     time.Time     // the earliest free rate slot
	reserved map[string]time.Time
}

// maxReserved bounds one trigger's kept slots; past it the lapsed ones go.
const maxReserved = 10000

// acquire takes a slot of tr for the task, waiting up to MaxWait. It
// returns the release of the concurrency slot, or — when the task must
// go back on the queue — the delay and the error class saying which limit.
func (l *Limits) acquire(ctx context.Context, tr *trigger.Trigger, taskID string) (release func(), wait time.Duration, class string) {
	if tr.MaxConcurrency <= 0 && tr.Rate <= 0 {
		return func() {}, 0, ""
	}
	release = func() {}
	if tr.MaxConcurrency > 0 {
		var ok bool
		if release, ok = l.concurrency(ctx, tr); !ok {
			// The ones in flight end within the trigger's deadline.
			return nil, min(tr.Deadline(), 4*l.maxWait()), record.ClassConcurrencyLimited
		}
	}
	if tr.Rate > 0 {
		if d := l.rate(tr, taskID); d > l.maxWait() {
			release()
			return nil, d, record.ClassRateLimited
		} else if d > 0 {
			if err := l.sleep(ctx, d); err != nil {
				release()
				return nil, 0, record.ClassCanceled
			}
		}
	}
	return release, 0, ""
}

func (l *Limits) get(name string) *limit {
	if l.m == nil {
		l.m = make(map[string]*limit)
	}
	s, ok := l.m[name]
	if !ok {
		s = &limit{freed: make(chan struct{})}
		l.m[name] = s
	}
	return s
}

// concurrency takes one of tr's MaxConcurrency slots, waiting up to
// MaxWait for one to free.
func (l *Limits) concurrency(ctx context.Context, tr *trigger.Trigger) (func(), bool) {
	deadline := l.now().Add(l.maxWait())
	for {
		l.mu.Lock()
		s := l.get(tr.Name)
		if s.inflight < tr.MaxConcurrency {
			s.inflight++
			l.mu.Unlock()
			var once sync.Once
			return func() {
				once.Do(func() {
					l.mu.Lock()
					s.inflight--
					close(s.freed)
					s.freed = make(chan struct{})
					l.mu.Unlock()
				})
			}, true
		}
		freed := s.freed
		l.mu.Unlock()
		left := deadline.Sub(l.now())
		if left <= 0 {
			return nil, false
		}
		t := time.NewTimer(left)
		select {
		case <-freed:
			t.Stop()
		case <-t.C:
			return nil, false
		case <-ctx.Done():
			t.Stop()
			return nil, false
		}
	}
}

// rate returns how long the task must wait for its rate slot: the one
// kept for it when it was put back on the queue, or the next free one.
func (l *Limits) rate(tr *trigger.Trigger, taskID string) time.Duration {
	now := l.now()
	interval := time.Duration(float64(time.Second) / tr.Rate)
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.get(tr.Name)
	if slot, ok := s.reserved[taskID]; ok {
		delete(s.reserved, taskID)
		if !slot.After(now) {
			return 0
		}
		s.reserved[taskID] = slot // early: keep it
		return slot.Sub(now)
	}
	slot := now
	if s.next.After(now) {
		slot = s.next
	}
	s.next = slot.Add(interval)
	d := slot.Sub(now)
	if d > l.maxWait() {
		if s.reserved == nil {
			s.reserved = make(map[string]time.Time)
		}
		if len(s.reserved) >= maxReserved {
			for id, at := range s.reserved {
				if at.Before(now.Add(-time.Minute)) {
					delete(s.reserved, id)
				}
			}
		}
		s.reserved[taskID] = slot
	}
	return d
}

// limited fills rec for a task put back on the queue by a limit.
func limited(rec *record.Record, tr *trigger.Trigger, class string, wait time.Duration, now time.Time) *Outcome {
	rec.Status, rec.ErrorClass = record.Retrying, class
	switch class {
	case record.ClassRateLimited:
		rec.Error = fmt.Sprintf("over the trigger's rate of %v requests per second: its slot is in %v", tr.Rate, wait.Round(time.Millisecond))
	default:
		rec.Error = fmt.Sprintf("the trigger's %d requests in flight (max-concurrency) did not end within the wait", tr.MaxConcurrency)
	}
	rec.NextAttemptAt = now.Add(wait).UTC()
	return &Outcome{Retry: true, Delay: wait}
}

func (l *Limits) maxWait() time.Duration {
	if l.MaxWait > 0 {
		return l.MaxWait
	}
	return DefaultLimitWait
}

func (l *Limits) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

func (l *Limits) sleep(ctx context.Context, d time.Duration) error {
	if l.Sleep != nil {
		return l.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
