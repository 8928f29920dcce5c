package scf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tencentyun/scf-go-lib/events"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/dispatcher"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// SCF has no SQS trigger, so the dispatcher runs on a timer trigger and
// drains the queue for most of each invocation's time budget, with the
// dispatcher Pool of `regtrigger serve` over sqsqueue.Poller.

// Reserve is the part of an invocation's time kept free at its end: no new
// task is taken once less than this is left, so the longest delivery
// (trigger.MaxTimeout) and the settling of its message finish before SCF
// stops the function.
const Reserve = trigger.MaxTimeout + 10*time.Second

// MinBudget is the shortest function timeout the dispatcher accepts: it
// must leave time to poll beyond Reserve.
const MinBudget = Reserve + 20*time.Second

// ErrBudget: the invocation's time limit is too short to drain anything.
var ErrBudget = errors.New("the function timeout is too short for the dispatcher")

// Drainer is the timer-triggered dispatcher.
type Drainer struct {
	Queue  dispatcher.Queue // an *sqsqueue.Poller
	Engine dispatcher.Deliverer
	// Records receives the record of an undecodable task; nil: the log only.
	Records record.Sink
	// Workers is how many deliveries run at once (the CONCURRENCY setting).
	Workers int
	// Idle ends the invocation early once no task was leased or in flight
	// for this long (the DRAIN_IDLE setting); 0 drains for the whole budget.
	// The Poller's long poll should not be longer than Idle.
	Idle   time.Duration
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Summary is the answer of one timer invocation, for SCF's log and console.
type Summary struct {
	// Deliveries counts attempts by record status (success, retrying, ...).
	Deliveries map[string]int `json:"deliveries"`
	// Drained is how long the queue was polled.
	Drained string `json:"drained"`
}

// Invoke drains the queue until Reserve before the invocation's deadline,
// lets in-flight deliveries finish and returns what was delivered. A
// context without a deadline (never the case on SCF) is refused.
func (d *Drainer) Invoke(ctx context.Context, ev events.TimerEvent) (Summary, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return Summary{}, fmt.Errorf("%w: the invocation has no deadline", ErrBudget)
	}
	now := d.now()
	if left := deadline.Sub(now); left < MinBudget {
		return Summary{}, fmt.Errorf("%w: %s left, at least %s needed (deliveries may take %s): raise the timeout to 300 s or more",
			ErrBudget, left.Round(time.Second), MinBudget, trigger.MaxTimeout)
	}
	stop := deadline.Add(-Reserve)
	log := d.logger().With(slog.String("trigger_name", ev.TriggerName))
	log.LogAttrs(ctx, slog.LevelDebug, "draining the queue", slog.Time("until", stop))

	pctx, cancel := context.WithDeadline(ctx, stop)
	defer cancel()
	queue := &watchedQueue{Queue: d.Queue, now: d.now}
	queue.busy(0)
	if d.Idle > 0 {
		go queue.stopWhenIdle(pctx, d.Idle, cancel)
	}
	counter := &countingDeliverer{next: d.Engine, counts: map[string]int{}}
	pool := &dispatcher.Pool{
		Queue: queue, Engine: counter, Workers: d.Workers, Records: d.Records, Logger: d.Logger,
		// Hidden for longer than a delivery and its settling take, yet short
		// enough that a message of a crashed instance comes back soon.
		Lease: Reserve + time.Minute,
		// In-flight deliveries end by their own deadline (at most
		// trigger.MaxTimeout); past the drain they are canceled and their
		// messages come back by the visibility timeout.
		Drain: Reserve - 5*time.Second,
	}
	if err := pool.Run(pctx); err != nil {
		return Summary{}, fmt.Errorf("drain the queue: %w", err)
	}
	s := Summary{Deliveries: counter.snapshot(), Drained: d.now().Sub(now).Round(time.Millisecond).String()}
	attrs := []slog.Attr{slog.String("drained", s.Drained)}
	for status, n := range s.Deliveries {
		attrs = append(attrs, slog.Int(status, n))
	}
	log.LogAttrs(ctx, slog.LevelInfo, "queue drained", attrs...)
	return s, nil
}

func (d *Drainer) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Drainer) logger() *slog.Logger {
	if d.Logger != nil {
		return d.Logger
	}
	return slog.Default()
}

// countingDeliverer counts the outcomes of the deliveries it passes on.
type countingDeliverer struct {
	next   dispatcher.Deliverer
	mu     sync.Mutex
	counts map[string]int
}

func (c *countingDeliverer) Deliver(ctx context.Context, t delivery.Task) delivery.Outcome {
	out := c.next.Deliver(ctx, t)
	c.mu.Lock()
	c.counts[string(out.Record.Status)]++
	c.mu.Unlock()
	return out
}

func (c *countingDeliverer) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]int, len(c.counts))
	for k, v := range c.counts {
		m[k] = v
	}
	return m
}

// watchedQueue tracks when the queue last gave work and how much is in
// flight, so an invocation can end once the queue is idle.
type watchedQueue struct {
	dispatcher.Queue
	now func() time.Time

	mu       sync.Mutex
	inFlight int
	lastBusy time.Time
}

func (q *watchedQueue) busy(delta int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.inFlight += delta
	q.lastBusy = q.now()
}

func (q *watchedQueue) idleFor() time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.inFlight > 0 {
		return 0
	}
	return q.now().Sub(q.lastBusy)
}

// stopWhenIdle calls stop once nothing was leased or in flight for idle.
func (q *watchedQueue) stopWhenIdle(ctx context.Context, idle time.Duration, stop func()) {
	t := time.NewTicker(min(idle/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if q.idleFor() >= idle {
				stop()
				return
			}
		}
	}
}

func (q *watchedQueue) Lease(ctx context.Context, max int, leaseFor time.Duration) ([]dispatcher.Leased, error) {
	items, err := q.Queue.Lease(ctx, max, leaseFor)
	if len(items) > 0 {
		q.busy(len(items))
	}
	return items, err
}

func (q *watchedQueue) Ack(ctx context.Context, id string) error {
	defer q.busy(-1)
	return q.Queue.Ack(ctx, id)
}

func (q *watchedQueue) Retry(ctx context.Context, t delivery.Task, delay time.Duration) error {
	defer q.busy(-1)
	return q.Queue.Retry(ctx, t, delay)
}

func (q *watchedQueue) DeadLetter(ctx context.Context, id string, reason error) error {
	defer q.busy(-1)
	return q.Queue.DeadLetter(ctx, id, reason)
}
