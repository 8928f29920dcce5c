package kafkaqueue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/dispatcher"
	"github.com/regtrigger/regtrigger/internal/taskmsg"
)

// Scheduler keeps a task until it is due (redisstore.Retries).
type Scheduler interface {
	Schedule(ctx context.Context, t delivery.Task, at time.Time) error
}

// Consumer is the task topic as serve's dispatcher.Pool sees it: a member
// of a consumer group. Lease hands out fetched tasks; Ack and DeadLetter
// settle them; Retry schedules the task in Retries and settles it. A
// partition's offset is committed only up to its oldest unsettled task,
// so a crash delivers again (same webhook-id) what was in flight, and
// loses nothing.
//
// A record whose not_before is ahead goes to Retries without an attempt.
// When Retries cannot be written (Redis down), the task is kept in this
// process until it is due and its record stays uncommitted.
type Consumer struct {
	client  *kgo.Client
	retries Scheduler
	archive func(ctx context.Context, t delivery.Task) error
	logger  *slog.Logger
	now     func() time.Time

	pollMu sync.Mutex // one poller at a time

	mu      sync.Mutex
	buf     []pending
	leased  map[string][]*kgo.Record // by task id (or record position for undecodable ones)
	offsets map[tp]*partitionOffsets
}

type tp struct {
	topic     string
	partition int32
}

// pending is a fetched task not yet handed out: due at due (zero: now).
type pending struct {
	rec  *kgo.Record
	task delivery.Task
	err  error
	due  time.Time
}

// partitionOffsets tracks one partition's unsettled offsets.
type partitionOffsets struct {
	open     map[int64]bool // fetched, not settled
	epoch    int32
	highDone int64 // the highest settled offset, -1 for none
}

var _ dispatcher.Queue = (*Consumer)(nil)

// ConsumerOptions are what a Consumer needs besides the topic.
type ConsumerOptions struct {
	// Retries keeps retries until due (required).
	Retries Scheduler
	// Archive keeps finished tasks for redeliver (optional).
	Archive func(ctx context.Context, t delivery.Task) error
	Logger  *slog.Logger
}

// NewConsumer joins cfg.Group on cfg.Topic, starting a new group at the
// topic's oldest record.
func NewConsumer(cfg Config, o ConsumerOptions) (*Consumer, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if o.Retries == nil {
		return nil, errors.New("kafka consumer: no retry scheduler")
	}
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	c := &Consumer{retries: o.Retries, archive: o.Archive, logger: o.Logger, now: time.Now,
		leased: map[string][]*kgo.Record{}, offsets: map[tp]*partitionOffsets{}}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(time.Second),
		kgo.FetchMaxWait(time.Second),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, lost map[string][]int32) {
			c.forget(lost)
			_ = cl.CommitMarkedOffsets(ctx)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) { c.forget(lost) }),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka consumer: %w", err)
	}
	c.client = cl
	return c, nil
}

// Close commits what is settled and leaves the group.
func (c *Consumer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.client.CommitMarkedOffsets(ctx)
	c.client.Close()
}

// pollWait bounds one fetch, so that a Lease returns while the Pool stops.
const pollWait = time.Second

// Lease returns up to max due tasks. leaseFor is unused: a record stays
// unsettled (and uncommitted) until Ack, Retry or DeadLetter.
func (c *Consumer) Lease(ctx context.Context, max int, _ time.Duration) ([]dispatcher.Leased, error) {
	if out := c.take(max); len(out) > 0 {
		return out, nil
	}
	c.pollMu.Lock()
	defer c.pollMu.Unlock()
	if out := c.take(max); len(out) > 0 {
		return out, nil
	}
	pctx, cancel := context.WithTimeout(ctx, pollWait)
	defer cancel()
	fs := c.client.PollRecords(pctx, 100)
	if fs.IsClientClosed() {
		return nil, errors.New("kafka consumer closed")
	}
	var errs []error
	fs.EachError(func(t string, p int32, err error) {
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("fetch %s[%d]: %w", t, p, err))
		}
	})
	fs.EachRecord(func(r *kgo.Record) { c.add(ctx, r) })
	if out := c.take(max); len(out) > 0 {
		return out, nil
	}
	return nil, errors.Join(errs...)
}

// add tracks a fetched record and queues it (or schedules it when early).
func (c *Consumer) add(ctx context.Context, r *kgo.Record) {
	c.mu.Lock()
	k := tp{r.Topic, r.Partition}
	po := c.offsets[k]
	if po == nil {
		po = &partitionOffsets{open: map[int64]bool{}, highDone: -1}
		c.offsets[k] = po
	}
	po.open[r.Offset], po.epoch = true, r.LeaderEpoch
	c.mu.Unlock()

	t, err := taskmsg.Decode(r.Value)
	if err != nil {
		c.push(pending{rec: r, err: fmt.Errorf("record %s[%d]@%d: %w", r.Topic, r.Partition, r.Offset, err)})
		return
	}
	if nb := NotBefore(r.Headers); nb.After(c.now()) {
		if err := c.retries.Schedule(ctx, t, nb); err != nil {
			c.logger.LogAttrs(ctx, slog.LevelWarn, "keep early task in memory: the retry set cannot be written",
				slog.String("task_id", t.ID), slog.String("error", err.Error()))
			c.push(pending{rec: r, task: t, due: nb})
			return
		}
		c.settle(r)
		return
	}
	c.push(pending{rec: r, task: t})
}

func (c *Consumer) push(p pending) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, p)
}

// take hands out up to max due tasks from the buffer.
func (c *Consumer) take(max int) []dispatcher.Leased {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	var out []dispatcher.Leased
	rest := c.buf[:0]
	for _, p := range c.buf {
		if len(out) == max || p.due.After(now) {
			rest = append(rest, p)
			continue
		}
		id := p.task.ID
		if p.err != nil {
			id = fmt.Sprintf("%s[%d]@%d", p.rec.Topic, p.rec.Partition, p.rec.Offset)
		}
		c.leased[id] = append(c.leased[id], p.rec)
		out = append(out, dispatcher.Leased{ID: id, Task: p.task, Err: p.err})
	}
	c.buf = rest
	return out
}

func (c *Consumer) untake(id string) (*kgo.Record, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rs := c.leased[id]
	if len(rs) == 0 {
		return nil, false
	}
	r := rs[0]
	if len(rs) == 1 {
		delete(c.leased, id)
	} else {
		c.leased[id] = rs[1:]
	}
	return r, true
}

// Ack settles a finished task, after archiving it.
func (c *Consumer) Ack(ctx context.Context, id string) error {
	r, ok := c.untake(id)
	if !ok {
		return fmt.Errorf("ack %s: not leased by this consumer", id)
	}
	if c.archive != nil {
		if t, err := taskmsg.Decode(r.Value); err == nil {
			_ = c.archive(ctx, t)
		}
	}
	c.settle(r)
	return nil
}

// Retry schedules t in the retry set, due after delay, and settles its
// record. When the set cannot be written, t waits in this process instead
// (its record uncommitted, so a crash meanwhile loses nothing).
func (c *Consumer) Retry(ctx context.Context, t delivery.Task, delay time.Duration) error {
	r, ok := c.untake(t.ID)
	if !ok {
		return fmt.Errorf("retry %s: not leased by this consumer", t.ID)
	}
	due := c.now().Add(delay)
	if err := c.retries.Schedule(ctx, t, due); err != nil {
		c.logger.LogAttrs(ctx, slog.LevelWarn, "keep retry in memory: the retry set cannot be written",
			slog.String("task_id", t.ID), slog.String("error", err.Error()))
		c.push(pending{rec: r, task: t, due: due})
		return nil
	}
	c.settle(r)
	return nil
}

// DeadLetter drops an undecodable record: it is committed past, never
// blocks its partition, and the Pool writes its failed record.
func (c *Consumer) DeadLetter(_ context.Context, id string, _ error) error {
	if r, ok := c.untake(id); ok {
		c.settle(r)
	}
	return nil
}

// NextDue is the soonest task kept in memory; retries in Redis are the
// requeue loop's.
func (c *Consumer) NextDue(context.Context) (time.Time, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var next time.Time
	for _, p := range c.buf {
		if next.IsZero() || p.due.Before(next) {
			next = p.due
		}
	}
	return next, !next.IsZero(), nil
}

// settle marks r done and the partition's commit offset up to its oldest
// unsettled record.
func (c *Consumer) settle(r *kgo.Record) {
	c.mu.Lock()
	k := tp{r.Topic, r.Partition}
	po := c.offsets[k]
	if po == nil || !po.open[r.Offset] {
		c.mu.Unlock()
		return // the partition was revoked meanwhile: its new owner has it
	}
	delete(po.open, r.Offset)
	po.highDone = max(po.highDone, r.Offset)
	next := po.highDone + 1
	if len(po.open) > 0 {
		open := make([]int64, 0, len(po.open))
		for o := range po.open {
			open = append(open, o)
		}
		sort.Slice(open, func(i, j int) bool { return open[i] < open[j] })
		next = min(next, open[0])
	}
	epoch := po.epoch
	c.mu.Unlock()
	c.client.MarkCommitOffsets(map[string]map[int32]kgo.EpochOffset{r.Topic: {r.Partition: {Epoch: epoch, Offset: next}}})
}

// forget drops what is tracked of partitions this member lost.
func (c *Consumer) forget(lost map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gone := map[tp]bool{}
	for t, ps := range lost {
		for _, p := range ps {
			gone[tp{t, p}] = true
			delete(c.offsets, tp{t, p})
		}
	}
	rest := c.buf[:0]
	for _, p := range c.buf {
		if !gone[tp{p.rec.Topic, p.rec.Partition}] {
			rest = append(rest, p)
		}
	}
	c.buf = rest
}
