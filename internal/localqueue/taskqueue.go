// Package localqueue is the queue contract of regtrigger's embedded stores
// (boltstore, pebblestore): the queue item (Item), a duplicate key with the
// items it guards (Claimed), the queue's errors, and TaskQueue, which
// adapts a store's queue to delivery tasks for the receiver and the
// dispatcher. The store keeps the queue durable; this package only
// encodes tasks and decodes them back.
package localqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/dispatcher"
	"github.com/regtrigger/regtrigger/internal/receiver"
	"github.com/regtrigger/regtrigger/internal/record"
)

// TaskQueue is the durable delivery queue: the receiver enqueues tasks, the
// dispatcher's workers lease, retry and acknowledge them. It is a
// dispatcher.RecordQueue: a delivery's record is written with its
// settlement, one journal write for both.
type TaskQueue struct {
	s   Store
	now func() time.Time
	// OnEnqueue is called after tasks were stored (to wake idle workers).
	OnEnqueue func()
}

var (
	_ receiver.ClaimQueue    = (*TaskQueue)(nil)
	_ dispatcher.RecordQueue = (*TaskQueue)(nil)
)

// Store is the durable queue of an embedded store, which is also the
// receiver.Dedupe whose keys ClaimEnqueue claims.
type Store interface {
	Enqueue(ctx context.Context, items []Item) error
	ClaimEnqueue(ctx context.Context, entries []Claimed) ([]bool, error)
	Lease(ctx context.Context, max int, leaseFor time.Duration) ([]Item, error)
	Finish(ctx context.Context, id string, rec *record.Record) error
	Reschedule(ctx context.Context, it Item, rec *record.Record) error
	DeadLetter(ctx context.Context, id string, reason error) error
	NextDue(ctx context.Context) (time.Time, bool, error)
	Archived(ctx context.Context, id string) ([]byte, error)
	Requeue(ctx context.Context, id string, payload []byte) error
	Queued(ctx context.Context) ([]Item, error)
}

// NewTaskQueue returns the task queue of s; now is the store's clock
// (retry due times, cancelled records).
func NewTaskQueue(s Store, now func() time.Time) *TaskQueue { return &TaskQueue{s: s, now: now} }

// Enqueue stores tasks, due now, all or none.
func (q *TaskQueue) Enqueue(ctx context.Context, tasks []delivery.Task) error {
	items, err := taskItems(tasks)
	if err != nil {
		return err
	}
	if err := q.s.Enqueue(ctx, items); err != nil {
		return err
	}
	if q.OnEnqueue != nil {
		q.OnEnqueue()
	}
	return nil
}

// ClaimEnqueue claims the duplicate keys in the store and enqueues the
// tasks of the new ones, due now, in one write (Store.ClaimEnqueue).
func (q *TaskQueue) ClaimEnqueue(ctx context.Context, claims []receiver.Claim) ([]bool, error) {
	entries := make([]Claimed, len(claims))
	for i, c := range claims {
		items, err := taskItems(c.Tasks)
		if err != nil {
			return nil, err
		}
		entries[i] = Claimed{Key: c.Key, TTL: c.TTL, Items: items}
	}
	fresh, err := q.s.ClaimEnqueue(ctx, entries)
	if err != nil {
		return nil, err
	}
	if q.OnEnqueue != nil {
		for i, f := range fresh {
			if f && len(entries[i].Items) > 0 {
				q.OnEnqueue()
				break
			}
		}
	}
	return fresh, nil
}

// OwnsDedupe reports whether d is the store of q, whose duplicate keys
// ClaimEnqueue claims.
func (q *TaskQueue) OwnsDedupe(d receiver.Dedupe) bool {
	return d != nil && any(d) == any(q.s)
}

// taskItems encodes tasks as queue items, due now (or at their NotBefore).
func taskItems(tasks []delivery.Task) ([]Item, error) {
	items := make([]Item, len(tasks))
	for i, t := range tasks {
		var err error
		if items[i], err = taskItem(t); err != nil {
			return nil, err
		}
	}
	return items, nil
}

// taskItem encodes t as a queue item, due now (or at its NotBefore: a
// coalesce window's end), which keeps t itself as its value for the next
// Lease.
func taskItem(t delivery.Task) (Item, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return Item{}, fmt.Errorf("encode task %s: %w", t.ID, err)
	}
	return Item{ID: t.ID, Payload: b, Value: t, Due: t.NotBefore}, nil
}

// Lease takes due tasks off the queue for leaseFor.
func (q *TaskQueue) Lease(ctx context.Context, max int, leaseFor time.Duration) ([]dispatcher.Leased, error) {
	items, err := q.s.Lease(ctx, max, leaseFor)
	if err != nil {
		return nil, err
	}
	out := make([]dispatcher.Leased, len(items))
	for i, it := range items {
		out[i].ID = it.ID
		if t, ok := it.Value.(delivery.Task); ok {
			out[i].Task = t
			continue
		}
		if err := json.Unmarshal(it.Payload, &out[i].Task); err != nil || out[i].Task.ID != it.ID {
			if err == nil {
				err = fmt.Errorf("task id %q does not match", out[i].Task.ID)
			}
			out[i].Err = dispatcher.Undecodable(it.ID, err)
		}
	}
	return out, nil
}

// Ack finishes a task without a record. Redeliver finds a finished task
// through the records of its attempts, so one finished here with none
// stored (by AckRecord, or by Records().Put while it was queued) cannot be
// redelivered.
func (q *TaskQueue) Ack(ctx context.Context, id string) error { return q.s.Finish(ctx, id, nil) }

// AckRecord finishes a task and stores the record of its last attempt, in
// one write.
func (q *TaskQueue) AckRecord(ctx context.Context, id string, rec record.Record) error {
	return q.s.Finish(ctx, id, &rec)
}

// Retry stores the task's new attempt count and makes it due after delay.
func (q *TaskQueue) Retry(ctx context.Context, t delivery.Task, delay time.Duration) error {
	return q.retry(ctx, t, delay, nil)
}

// RetryRecord is Retry and stores the record of the attempt, in one
// write.
func (q *TaskQueue) RetryRecord(ctx context.Context, t delivery.Task, delay time.Duration, rec record.Record) error {
	return q.retry(ctx, t, delay, &rec)
}

func (q *TaskQueue) retry(ctx context.Context, t delivery.Task, delay time.Duration, rec *record.Record) error {
	it, err := taskItem(t)
	if err != nil {
		return err
	}
	it.Due = q.now().Add(delay)
	return q.s.Reschedule(ctx, it, rec)
}

// DeadLetter sets an undecodable message aside.
func (q *TaskQueue) DeadLetter(ctx context.Context, id string, reason error) error {
	return q.s.DeadLetter(ctx, id, reason)
}

// NextDue reports when the earliest task becomes due.
func (q *TaskQueue) NextDue(ctx context.Context) (time.Time, bool, error) { return q.s.NextDue(ctx) }

// Archived returns a finished task kept for redelivery: ErrQueued if it is
// still queued, ErrNoItem if it is not kept.
func (q *TaskQueue) Archived(ctx context.Context, id string) (delivery.Task, error) {
	b, err := q.s.Archived(ctx, id)
	if err != nil {
		return delivery.Task{}, err
	}
	var t delivery.Task
	if err := json.Unmarshal(b, &t); err != nil {
		return delivery.Task{}, fmt.Errorf("decode archived task %s: %w", id, err)
	}
	return t, nil
}

// Requeue queues a finished task again, due now, as t (redeliver: see
// delivery.Task.Requeued). It keeps its id, the webhook-id. ErrQueued if it
// is still queued, ErrNoItem if it is not kept.
func (q *TaskQueue) Requeue(ctx context.Context, t delivery.Task) error {
	it, err := taskItem(t)
	if err != nil {
		return err
	}
	if err := q.s.Requeue(ctx, t.ID, it.Payload); err != nil {
		return err
	}
	if q.OnEnqueue != nil {
		q.OnEnqueue()
	}
	return nil
}

// Queued is one queued task and when it is due.
type Queued struct {
	Task delivery.Task
	Due  time.Time
}

// Queued returns the queued tasks of the trigger named trigger ("" for
// every trigger), soonest due first. A payload that cannot be decoded is
// skipped: the dispatcher sets it aside when it comes due.
func (q *TaskQueue) Queued(ctx context.Context, trigger string) ([]Queued, error) {
	items, err := q.s.Queued(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Queued, 0, len(items))
	for _, it := range items {
		t, ok := it.Value.(delivery.Task)
		if !ok && (json.Unmarshal(it.Payload, &t) != nil || t.ID != it.ID) {
			continue
		}
		if trigger == "" || t.Trigger.Name == trigger {
			out = append(out, Queued{Task: t, Due: it.Due})
		}
	}
	slices.SortFunc(out, func(a, b Queued) int {
		if c := a.Due.Compare(b.Due); c != 0 {
			return c
		}
		return strings.Compare(a.Task.ID, b.Task.ID)
	})
	return out, nil
}

// Cancel takes the queued tasks of the trigger named trigger off the queue
// for good, each with a cancelled record saying why, and returns them.
// A task whose delivery is being settled right now is left to finish.
func (q *TaskQueue) Cancel(ctx context.Context, trigger, why string) ([]Queued, error) {
	if trigger == "" {
		return nil, errors.New("cancel queued tasks: name a trigger")
	}
	queued, err := q.Queued(ctx, trigger)
	if err != nil {
		return nil, err
	}
	done := queued[:0]
	for _, t := range queued {
		rec := record.FromEvent(t.Task.ID, trigger, t.Task.Event)
		rec.Status, rec.ErrorClass, rec.Error = record.Cancelled, record.ClassCancelled, why
		rec.Attempt, rec.Time = t.Task.Attempt, q.now().UTC()
		err := q.s.Finish(ctx, t.Task.ID, &rec)
		switch {
		case errors.Is(err, ErrNoItem), errors.Is(err, ErrSettling):
			continue // delivered or being settled meanwhile
		case err != nil:
			return done, fmt.Errorf("cancel task %s: %w", t.Task.ID, err)
		}
		done = append(done, t)
	}
	return done, nil
}
