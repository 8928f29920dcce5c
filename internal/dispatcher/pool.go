// Package dispatcher is the second stage of regtrigger: it takes delivery
// tasks off a queue, hands each to the delivery engine, and acknowledges,
// reschedules or dead-letters it according to the outcome.
//
// Pool is the long-running form used by `regtrigger serve` (and the SCF
// timer function): workers lease due tasks from a durable queue. The Lambda
// function is event-driven and uses Batch instead.
package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/record"
)

// Leased is one task taken off the queue. Err is set, and Task empty, when
// the message could not be decoded.
type Leased struct {
	ID   string
	Task delivery.Task
	Err  error
}

// Queue is the durable queue a Pool drains.
type Queue interface {
	// Lease returns up to max due tasks and hides them for leaseFor.
	Lease(ctx context.Context, max int, leaseFor time.Duration) ([]Leased, error)
	// Ack removes a task for good (delivered, or failed for good).
	Ack(ctx context.Context, id string) error
	// Retry stores the task's new state and makes it due after delay.
	Retry(ctx context.Context, t delivery.Task, delay time.Duration) error
	// DeadLetter moves an undecodable message aside, keeping it for people.
	DeadLetter(ctx context.Context, id string, reason error) error
	// NextDue reports when the earliest task becomes due.
	NextDue(ctx context.Context) (time.Time, bool, error)
}

// RecordQueue is a Queue that stores an attempt's record in the same write
// that settles its task (the embedded store: one commit instead of two).
// A Pool over one hands it every outcome's record, so the Engine must keep
// none itself: Run refuses a *delivery.Engine with a Sink.
type RecordQueue interface {
	Queue
	// AckRecord is Ack, storing rec with it.
	AckRecord(ctx context.Context, id string, rec record.Record) error
	// RetryRecord is Retry, storing rec with it.
	RetryRecord(ctx context.Context, t delivery.Task, delay time.Duration, rec record.Record) error
}

// Deliverer makes one attempt; *delivery.Engine is the production one.
type Deliverer interface {
	Deliver(ctx context.Context, t delivery.Task) delivery.Outcome
}

var _ Deliverer = (*delivery.Engine)(nil)

// Pool runs concurrent delivery workers over a Queue.
type Pool struct {
	Queue   Queue
	Engine  Deliverer
	Workers int           // default 4
	Lease   time.Duration // how long a leased task stays hidden; default 2m (> the 30 s maximum deadline)
	// Idle is the longest a worker sleeps when nothing is due; default 1s.
	Idle time.Duration
	// Drain bounds how long Run waits for in-flight deliveries after ctx
	// ends; past it they are canceled and re-queued. Default 15s.
	Drain time.Duration
	// Records receives the record of each undecodable task set aside for
	// the dead-letter path (the Engine records every other outcome); nil
	// leaves it to the log line.
	Records record.Sink
	Logger  *slog.Logger

	wake chan struct{}
	once sync.Once
}

// Wake tells idle workers that new tasks were enqueued.
func (p *Pool) Wake() {
	p.init()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *Pool) init() {
	p.once.Do(func() { p.wake = make(chan struct{}, 1) })
}

// Run delivers until ctx ends, then stops leasing, lets in-flight
// deliveries finish for up to Drain, cancels the rest (they are re-queued
// without counting as an attempt) and returns.
func (p *Pool) Run(ctx context.Context) error {
	p.init()
	if _, ok := p.Queue.(RecordQueue); ok {
		if e, ok := p.Engine.(*delivery.Engine); ok && e.Sink != nil {
			return errors.New("dispatcher: the queue stores the delivery records; the engine must not have a Sink too (each record would be stored twice)")
		}
	}
	workers := p.Workers
	if workers <= 0 {
		workers = 4
	}
	// Deliveries run on their own context so that a shutdown does not cut
	// them off at once; it is canceled when the drain period ends.
	dctx, cancelDeliveries := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDeliveries()
	go func() {
		<-ctx.Done()
		t := time.NewTimer(p.drain())
		defer t.Stop()
		select {
		case <-t.C:
			cancelDeliveries()
		case <-dctx.Done():
		}
	}()

	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.work(ctx, dctx)
		}()
	}
	wg.Wait()
	return nil
}

func (p *Pool) work(ctx, dctx context.Context) {
	for ctx.Err() == nil {
		items, err := p.Queue.Lease(ctx, 1, p.lease())
		if err != nil {
			if ctx.Err() == nil {
				p.logger().LogAttrs(ctx, slog.LevelError, "lease tasks", slog.String("error", err.Error()))
				p.sleep(ctx, time.Second)
			}
			continue
		}
		if len(items) == 0 {
			p.sleep(ctx, p.untilNext(ctx))
			continue
		}
		// More may be due: let another idle worker look while this one works.
		p.Wake()
		for _, it := range items {
			p.handle(dctx, it)
		}
	}
}

// handle delivers one leased task and settles it on the queue. Queue calls
// use a context that survives shutdown: the outcome must be recorded.
func (p *Pool) handle(dctx context.Context, it Leased) {
	qctx, cancel := context.WithTimeout(context.WithoutCancel(dctx), 10*time.Second)
	defer cancel()
	log := p.logger().With(slog.String("task_id", it.ID))
	if it.Err != nil {
		log.LogAttrs(qctx, slog.LevelError, "undecodable task moved to the dead-letter queue", slog.String("error", it.Err.Error()))
		if err := p.Queue.DeadLetter(qctx, it.ID, it.Err); err != nil {
			log.LogAttrs(qctx, slog.LevelError, "dead-letter task", slog.String("error", err.Error()))
		}
		if p.Records != nil {
			if err := p.Records.Put(qctx, record.UndecodableRecord(it.ID, it.Err, time.Now())); err != nil {
				log.LogAttrs(qctx, slog.LevelError, "store dead-letter record", slog.String("error", err.Error()))
			}
		}
		return
	}
	out := p.Engine.Deliver(dctx, it.Task)
	err := p.settle(qctx, it.ID, out)
	switch {
	case err != nil:
		// The lease will expire and the task come back: at least once.
		log.LogAttrs(qctx, slog.LevelError, "settle task", slog.Bool("retry", out.Retry), slog.String("error", err.Error()))
	case out.Retry:
		log.LogAttrs(qctx, slog.LevelDebug, "task rescheduled", slog.Int("attempt", out.Task.Attempt), slog.Duration("delay", out.Delay))
	default:
		log.LogAttrs(qctx, slog.LevelDebug, "task finished", slog.String("status", string(out.Record.Status)))
	}
}

// settle acknowledges or reschedules a delivered task, with its record
// when the queue stores records.
func (p *Pool) settle(ctx context.Context, id string, out delivery.Outcome) error {
	rq, records := p.Queue.(RecordQueue)
	switch {
	case out.Retry && records:
		return rq.RetryRecord(ctx, out.Task, out.Delay, out.Record)
	case out.Retry:
		return p.Queue.Retry(ctx, out.Task, out.Delay)
	case records:
		return rq.AckRecord(ctx, id, out.Record)
	}
	return p.Queue.Ack(ctx, id)
}

// untilNext is how long to sleep before the next task is due.
func (p *Pool) untilNext(ctx context.Context) time.Duration {
	idle := p.Idle
	if idle <= 0 {
		idle = time.Second
	}
	due, ok, err := p.Queue.NextDue(ctx)
	if err != nil || !ok {
		return idle
	}
	return min(max(time.Until(due), time.Millisecond), idle)
}

func (p *Pool) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-p.wake:
	}
}

func (p *Pool) lease() time.Duration {
	if p.Lease > 0 {
		return p.Lease
	}
	return 2 * time.Minute
}

func (p *Pool) drain() time.Duration {
	if p.Drain > 0 {
		return p.Drain
	}
	return 15 * time.Second
}

func (p *Pool) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

// ErrUndecodable marks a queue message that is not a task.
var ErrUndecodable = errors.New("undecodable task message")

// Undecodable wraps a decode failure of message id.
func Undecodable(id string, err error) error {
	return fmt.Errorf("%w %s: %w", ErrUndecodable, id, err)
}
