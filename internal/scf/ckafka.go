package scf

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tencentyun/scf-go-lib/events"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/dispatcher"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/taskmsg"
)

// On Tencent's own services the dispatcher runs on a CKafka trigger: SCF's
// consumer hands it batches of task records. A function error makes CKafka
// retry the whole batch (every minute, for up to its retry count) and
// holds back the partition meanwhile, so Consumer settles every record
// itself and answers success:
//
//   - a delivery to retry is scheduled in the Redis retry set, due after
//     its delay; the requeue timer (Requeuer) produces it back when due;
//   - a record that is not a task gets a failed "undecodable" record and
//     is dropped, never blocking the partition;
//   - when the retry set cannot be written (Redis down), the task is held
//     for HoldFor and produced back to the topic (due now; its attempt is
//     not counted when the failure was reading the trigger). Only when that
//     produce fails too does the invocation fail, as the last resort.

// Scheduler keeps a task until it is due (redisstore.Retries).
type Scheduler interface {
	Schedule(ctx context.Context, t delivery.Task, at time.Time) error
}

// DefaultHoldFor is how long a retry the retry set could not take waits
// before it goes back to the topic.
const DefaultHoldFor = 5 * time.Second

// Consumer is the CKafka-triggered dispatcher.
type Consumer struct {
	Engine  dispatcher.Deliverer
	Retries Scheduler
	// Produce sends tasks back to the topic (kafkaqueue.Producer.Enqueue).
	Produce func(ctx context.Context, tasks []delivery.Task) error
	// Archive keeps finished tasks for redeliver (optional).
	Archive func(ctx context.Context, t delivery.Task) error
	// Records keeps the record of an undecodable message (optional).
	Records record.Sink
	// Workers is how many deliveries run at once (CONCURRENCY).
	Workers int
	// HoldFor is DefaultHoldFor when 0.
	HoldFor time.Duration
	Logger  *slog.Logger
	Now     func() time.Time
}

// BatchSummary is the answer of one CKafka invocation.
type BatchSummary struct {
	// Deliveries counts attempts by record status (success, retrying, ...).
	Deliveries map[string]int `json:"deliveries"`
	// Scheduled retries went to the Redis retry set; Returned went back to
	// the topic because the set could not take them.
	Scheduled   int `json:"scheduled,omitempty"`
	Returned    int `json:"returned,omitempty"`
	Undecodable int `json:"undecodable,omitempty"`
}

// Invoke settles every record of the batch.
func (c *Consumer) Invoke(ctx context.Context, ev events.CkafkaEvent) (BatchSummary, error) {
	s := BatchSummary{Deliveries: map[string]int{}}
	var (
		mu       sync.Mutex
		returned []delivery.Task
		wg       sync.WaitGroup
	)
	sem := make(chan struct{}, max(c.Workers, 1))
	for _, r := range ev.Records {
		m := r.Message
		id := fmt.Sprintf("%s[%d]@%d", m.Topic, m.Partition, m.Offset)
		t, err := taskmsg.Decode([]byte(m.Body))
		if err != nil {
			c.undecodable(ctx, id, err)
			s.Undecodable++
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(t delivery.Task) {
			defer func() { <-sem; wg.Done() }()
			out := c.Engine.Deliver(ctx, t)
			status, scheduled, back := c.settle(ctx, out)
			mu.Lock()
			defer mu.Unlock()
			s.Deliveries[status]++
			if scheduled {
				s.Scheduled++
			}
			if back {
				returned = append(returned, out.Task)
			}
		}(t)
	}
	wg.Wait()
	if len(returned) > 0 {
		if err := c.hold(ctx); err != nil {
			return s, err
		}
		if err := c.Produce(context.WithoutCancel(ctx), returned); err != nil {
			c.logger().LogAttrs(ctx, slog.LevelError, "cannot hold retries: neither the retry set nor the topic takes them; CKafka retries the batch",
				slog.Int("tasks", len(returned)), slog.String("error", err.Error()))
			return s, fmt.Errorf("return %d retries to the topic: %w", len(returned), err)
		}
		s.Returned = len(returned)
	}
	return s, nil
}

// settle schedules a retry or archives a finished task; back reports a
// retry the retry set did not take.
func (c *Consumer) settle(ctx context.Context, out delivery.Outcome) (status string, scheduled, back bool) {
	log := c.logger().With(slog.String("task_id", out.Task.ID))
	status = string(out.Record.Status)
	if !out.Retry {
		if c.Archive != nil {
			if err := c.Archive(ctx, out.Task); err != nil {
				log.LogAttrs(ctx, slog.LevelWarn, "archive finished task", slog.String("error", err.Error()))
			}
		}
		return status, false, false
	}
	if err := c.Retries.Schedule(ctx, out.Task, c.now().Add(out.Delay)); err != nil {
		log.LogAttrs(ctx, slog.LevelError, "schedule retry: returning it to the topic", slog.String("error", err.Error()))
		return status, false, true
	}
	return status, true, false
}

// hold waits HoldFor (less when the invocation ends sooner), so that a
// task the retry set cannot take does not circle through the topic at
// full speed.
func (c *Consumer) hold(ctx context.Context) error {
	d := c.HoldFor
	if d <= 0 {
		d = DefaultHoldFor
	}
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl)-2*time.Second)
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	return nil
}

func (c *Consumer) undecodable(ctx context.Context, id string, err error) {
	log := c.logger().With(slog.String("message_id", id))
	log.LogAttrs(ctx, slog.LevelError, "undecodable task message dropped", slog.String("error", err.Error()))
	if c.Records == nil {
		return
	}
	err = fmt.Errorf("message %s: %w; dropped (it could never be delivered)", id, err)
	if perr := c.Records.Put(ctx, record.UndecodableRecord(id, err, c.now())); perr != nil {
		log.LogAttrs(ctx, slog.LevelError, "store dead-letter record", slog.String("error", perr.Error()))
	}
}

func (c *Consumer) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Consumer) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// Requeuer is the timer function that moves due retries from the Redis
// retry set back to the topic (every 5 seconds: `*/5 * * * * * *`).
type Requeuer struct {
	// Requeue is redisstore.Retries.Requeue.
	Requeue func(ctx context.Context, now func() time.Time, produce func(ctx context.Context, tasks []delivery.Task) error) (moved, dropped int, err error)
	Produce func(ctx context.Context, tasks []delivery.Task) error
	Logger  *slog.Logger
}

// RequeueSummary is the answer of one timer invocation.
type RequeueSummary struct {
	Requeued int `json:"requeued"`
	Dropped  int `json:"dropped,omitempty"`
}

// Invoke moves every due retry, stopping 2 s before the deadline.
func (r *Requeuer) Invoke(ctx context.Context, ev events.TimerEvent) (RequeueSummary, error) {
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-2*time.Second))
		defer cancel()
	}
	moved, dropped, err := r.Requeue(ctx, time.Now, r.Produce)
	s := RequeueSummary{Requeued: moved, Dropped: dropped}
	log := r.Logger
	if log == nil {
		log = slog.Default()
	}
	if err != nil && ctx.Err() == nil {
		log.LogAttrs(ctx, slog.LevelError, "requeue due retries", slog.String("trigger_name", ev.TriggerName), slog.Int("requeued", moved), slog.String("error", err.Error()))
		return s, err
	}
	if moved > 0 || dropped > 0 {
		log.LogAttrs(ctx, slog.LevelInfo, "due retries requeued", slog.Int("requeued", moved), slog.Int("dropped", dropped))
	}
	return s, nil
}
