package boltstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/dispatcher"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// lease leases up to 10 items for a minute and renders them as id:payload.
func lease(t *testing.T, s *Store) string {
	t.Helper()
	items, err := s.Lease(ctx, 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ID + ":" + string(it.Payload)
	}
	return strings.Join(out, " ")
}

func TestQueueEnqueueLeaseAck(t *testing.T) {
	c := newClock(t0)
	s := open(t, "", c)
	if _, ok, err := s.NextDue(ctx); ok || err != nil {
		t.Fatalf("empty queue has a next due: %v", err)
	}
	err := s.Enqueue(ctx, []Item{
		{ID: "b", Payload: []byte("2"), Due: t0.Add(time.Second)},
		{ID: "a", Payload: []byte("1")}, // due now
		{ID: "c", Payload: []byte("3"), Due: t0.Add(time.Hour)},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Idempotent: a queued id is skipped, also within one call.
	if err := s.Enqueue(ctx, []Item{{ID: "a", Payload: []byte("other")}, {ID: "d", Payload: []byte("4")}, {ID: "d", Payload: []byte("5")}}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Len(ctx); err != nil || n != 4 {
		t.Fatalf("len %d, %v", n, err)
	}
	if due, ok, _ := s.NextDue(ctx); !ok || !due.Equal(t0) {
		t.Errorf("next due %v %v, want %v", due, ok, t0)
	}
	if got := lease(t, s); got != "a:1 d:4" {
		t.Fatalf("lease now = %q", got)
	}
	c.add(time.Second)
	items, err := s.Lease(ctx, 10, time.Minute)
	if err != nil || len(items) != 1 || items[0].ID != "b" || items[0].Receives != 1 || !items[0].Due.Equal(c.now().Add(time.Minute)) {
		t.Fatalf("lease after a second = %+v %v", items, err)
	}
	// max bounds a lease.
	if err := s.Enqueue(ctx, []Item{{ID: "e"}, {ID: "f"}}); err != nil {
		t.Fatal(err)
	}
	if items, _ := s.Lease(ctx, 1, time.Minute); len(items) != 1 || items[0].ID != "e" {
		t.Errorf("lease 1 = %+v", items)
	}
	for _, id := range []string{"a", "b", "d", "e"} {
		if err := s.Finish(ctx, id, nil); err != nil {
			t.Errorf("finish %s: %v", id, err)
		}
	}
	if n, _ := s.Len(ctx); n != 2 {
		t.Errorf("len after finishing = %d, want 2 (c, f)", n)
	}
	if n := keys(t, s, bPending); n != 2 {
		t.Errorf("%d pending entries on disk, want 2", n)
	}
	if n := keys(t, s, bTasks); n != 6 {
		t.Errorf("%d payloads kept, want all 6 (finished ones stay for redeliver)", n)
	}
	for _, call := range []func() error{
		func() error { return s.Finish(ctx, "a", nil) },
		func() error { return s.Finish(ctx, "zz", nil) },
		func() error { return s.Reschedule(ctx, Item{ID: "zz", Due: t0}, nil) },
		func() error { return s.DeadLetter(ctx, "zz", errors.New("x")) },
	} {
		if err := call(); !errors.Is(err, ErrNoItem) {
			t.Errorf("unknown id: %v, want ErrNoItem", err)
		}
	}
	if _, err := s.Lease(ctx, 1, 0); err == nil {
		t.Error("a lease of no duration was granted")
	}
}

func TestQueueEnqueueIsAtomic(t *testing.T) {
	s := open(t, "", newClock(t0))
	if err := s.Enqueue(ctx, []Item{{ID: "a"}, {ID: ""}}); err == nil {
		t.Fatal("an item without an id was accepted")
	}
	if n, _ := s.Len(ctx); n != 0 {
		t.Errorf("a failed enqueue stored %d items", n)
	}
}

func TestQueueLeaseHidesUntilItEnds(t *testing.T) {
	c := newClock(t0)
	s := open(t, "", c)
	if err := s.Enqueue(ctx, []Item{{ID: "a", Payload: []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	if got := lease(t, s); got != "a:1" {
		t.Fatalf("lease = %q", got)
	}
	if due, ok, _ := s.NextDue(ctx); !ok || !due.Equal(t0.Add(time.Minute)) {
		t.Errorf("next due while leased = %v, want the lease end", due)
	}
	c.add(time.Minute - time.Nanosecond)
	if got := lease(t, s); got != "" {
		t.Fatalf("leased item seen during its lease: %q", got)
	}
	if n, _ := s.Len(ctx); n != 1 {
		t.Errorf("leased item not counted: %d", n)
	}
	c.add(time.Nanosecond)
	items, err := s.Lease(ctx, 10, time.Minute)
	if err != nil || len(items) != 1 || items[0].Receives != 2 {
		t.Fatalf("after the lease ended: %+v %v", items, err)
	}
	// Reschedule: new payload, due later, receives kept.
	if err := s.Reschedule(ctx, Item{ID: "a", Payload: []byte("retry"), Due: c.now().Add(10 * time.Second)}, nil); err != nil {
		t.Fatal(err)
	}
	if got := lease(t, s); got != "" {
		t.Fatalf("rescheduled item leased early: %q", got)
	}
	c.add(10 * time.Second)
	items, err = s.Lease(ctx, 10, time.Minute)
	if err != nil || len(items) != 1 || string(items[0].Payload) != "retry" || items[0].Receives != 3 {
		t.Fatalf("after reschedule: %+v %v", items, err)
	}
	if n := keys(t, s, bPending); n != 1 {
		t.Errorf("%d pending entries for one item", n)
	}
}

func TestQueueRestartLosesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	c := newClock(t0)
	s, err := Open(path, Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Enqueue(ctx, []Item{
		{ID: "acked", Payload: []byte("1")},
		{ID: "leased", Payload: []byte("2")},
		{ID: "delayed", Payload: []byte("3"), Due: t0.Add(time.Hour)},
		{ID: "waiting", Payload: []byte("4"), Due: t0.Add(time.Second)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Lease(ctx, 2, 10*time.Minute); len(got) != 2 {
		t.Fatalf("lease: %+v", got)
	}
	if err := s.Finish(ctx, "acked", nil); err != nil {
		t.Fatal(err)
	}
	// A retry leased, then rescheduled to later: it keeps that due time.
	if err := s.Reschedule(ctx, Item{ID: "leased", Payload: []byte("2b"), Due: t0.Add(30 * time.Minute)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, []Item{{ID: "crashed", Payload: []byte("5")}}); err != nil {
		t.Fatal(err)
	}
	if got := lease(t, s); got != "crashed:5" {
		t.Fatalf("lease = %q", got)
	}
	// "Crash" with "crashed" leased for a minute, and restart.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, c)
	if n, _ := s.Len(ctx); n != 4 {
		t.Errorf("len after restart = %d, want 4", n)
	}
	items, err := s.Lease(ctx, 10, time.Minute)
	if err != nil || len(items) != 1 || items[0].ID != "crashed" || items[0].Receives != 1 {
		t.Fatalf("the leased item must be due at once after a restart (its first receive since): %+v %v", items, err)
	}
	// Ack what each lease returns, so that only newly due items show.
	done := func() string {
		t.Helper()
		got := lease(t, s)
		for _, f := range strings.Fields(got) {
			if err := s.Finish(ctx, strings.Split(f, ":")[0], nil); err != nil {
				t.Fatal(err)
			}
		}
		return got
	}
	if err := s.Finish(ctx, "crashed", nil); err != nil {
		t.Fatal(err)
	}
	c.add(time.Second)
	if got := done(); got != "waiting:4" {
		t.Errorf("after a second = %q", got)
	}
	c.add(30 * time.Minute)
	if got := done(); got != "leased:2b" {
		t.Errorf("after half an hour = %q", got)
	}
	c.add(30 * time.Minute)
	if got := done(); got != "delayed:3" {
		t.Errorf("after an hour = %q", got)
	}
	if n, _ := s.Len(ctx); n != 0 {
		t.Errorf("len at the end = %d", n)
	}
}

func TestTaskQueueRoundTripAndRedeliver(t *testing.T) {
	c := newClock(t0)
	s := open(t, "", c)
	q := NewTaskQueue(s)
	woken := 0
	q.OnEnqueue = func() { woken++ }
	trg := tr("a", "ns")
	task := delivery.NewTask("tsk_1", &trg, event.Event{Action: event.PushImage, Namespace: "ns", Repository: "r"}, c.now())
	if err := q.Enqueue(ctx, []delivery.Task{task}); err != nil || woken != 1 {
		t.Fatal(err, woken)
	}
	leased, err := q.Lease(ctx, 1, time.Minute)
	if err != nil || len(leased) != 1 || leased[0].Err != nil || leased[0].Task.Trigger.Name != "a" {
		t.Fatalf("%+v %v", leased, err)
	}
	if err := redeliver(ctx, q, "tsk_1"); !errors.Is(err, ErrQueued) {
		t.Errorf("redeliver a queued task: %v", err)
	}
	task.Attempt = 5
	attempt := record.Record{TaskID: "tsk_1", Trigger: "a", Status: record.Retrying, Attempt: 5}
	if err := q.RetryRecord(ctx, task, 0, attempt); err != nil {
		t.Fatal(err)
	}
	leased, _ = q.Lease(ctx, 1, time.Minute)
	if len(leased) != 1 || leased[0].Task.Attempt != 5 {
		t.Fatalf("attempt not kept: %+v", leased)
	}
	attempt.Status, attempt.Attempt = record.Success, 6
	if err := q.AckRecord(ctx, "tsk_1", attempt); err != nil {
		t.Fatal(err)
	}
	// Each settlement stored its record in the same commit.
	if got := recs(t, s.Records(), record.Query{TaskID: "tsk_1"}); got != "tsk_1:success tsk_1:retrying" {
		t.Errorf("records = %q", got)
	}
	if n, _ := s.Len(ctx); n != 0 {
		t.Errorf("len after ack = %d", n)
	}
	if err := redeliver(ctx, q, "tsk_1"); err != nil {
		t.Fatal(err)
	}
	leased, _ = q.Lease(ctx, 1, time.Minute)
	if len(leased) != 1 || leased[0].Task.Attempt != 0 || leased[0].Task.ID != "tsk_1" {
		t.Fatalf("redelivered: %+v", leased)
	}
	if err := redeliver(ctx, q, "unknown"); !errors.Is(err, ErrNoItem) {
		t.Errorf("redeliver unknown: %v", err)
	}
	// Finished again, this time with the record stored on its own (an
	// engine with a Sink): the record still names the task.
	if err := s.Records().Put(ctx, record.Record{TaskID: "tsk_1", Trigger: "a", Status: record.Failed}); err != nil {
		t.Fatal(err)
	}
	if err := q.Ack(ctx, "tsk_1"); err != nil {
		t.Fatal(err)
	}
	if b, err := s.Archived(ctx, "tsk_1"); err != nil || !strings.Contains(string(b), `"attempt":0`) {
		t.Errorf("kept after the second run: %s, %v", b, err)
	}
	c.add(25 * time.Hour)
	if _, err := s.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if err := redeliver(ctx, q, "tsk_1"); !errors.Is(err, ErrNoItem) {
		t.Errorf("redeliver after the retention: %v", err)
	}
	if n := keys(t, s, bTasks); n != 0 {
		t.Errorf("%d payloads kept after purge", n)
	}
}

func TestTaskQueueFinishedWithoutRecordIsNotKept(t *testing.T) {
	// A finished task is found through the records of its attempts: one
	// finished without any record cannot be redelivered.
	s := open(t, "", newClock(t0))
	q := NewTaskQueue(s)
	if err := q.Enqueue(ctx, []delivery.Task{{ID: "tsk_1"}}); err != nil {
		t.Fatal(err)
	}
	if err := q.Ack(ctx, "tsk_1"); err != nil {
		t.Fatal(err)
	}
	if err := redeliver(ctx, q, "tsk_1"); !errors.Is(err, ErrNoItem) {
		t.Errorf("redeliver: %v, want ErrNoItem", err)
	}
}

func TestTaskQueueDeadLettersUndecodable(t *testing.T) {
	s := open(t, "", newClock(t0))
	if err := s.Enqueue(ctx, []Item{{ID: "junk", Payload: []byte("not json")}, {ID: "other", Payload: []byte(`{"id":"x"}`)}}); err != nil {
		t.Fatal(err)
	}
	// And one whose payload the file lost (queued without a value, as
	// after a restart).
	if err := s.Enqueue(ctx, []Item{{ID: "lost", Payload: []byte(`{"id":"lost"}`)}}); err != nil {
		t.Fatal(err)
	}
	e, err := s.queuedEntry("lost")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.flush(ctx); err != nil { // the payload is in the file, not in memory
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bTasks).Delete(e.key[:]) }); err != nil {
		t.Fatal(err)
	}
	q := NewTaskQueue(s)
	leased, err := q.Lease(ctx, 10, time.Minute)
	if err != nil || len(leased) != 3 {
		t.Fatalf("%+v %v", leased, err)
	}
	for _, l := range leased {
		if l.Err == nil || !errors.Is(l.Err, dispatcher.ErrUndecodable) {
			t.Errorf("%s: %v, want undecodable", l.ID, l.Err)
			continue
		}
		if err := q.DeadLetter(ctx, l.ID, l.Err); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := s.DeadLetters(ctx); n != 3 {
		t.Errorf("dead letters %d", n)
	}
	if n, _ := s.Len(ctx); n != 0 {
		t.Errorf("queue len %d", n)
	}
	if n := keys(t, s, bTasks) + keys(t, s, bPending); n != 0 {
		t.Errorf("%d task keys left", n)
	}
}

func TestLeaseHandsBackTheValue(t *testing.T) {
	c := newClock(t0)
	path := filepath.Join(t.TempDir(), "s.db")
	s := open(t, path, c)
	if err := s.Enqueue(ctx, []Item{{ID: "a", Payload: []byte("p"), Value: 42}}); err != nil {
		t.Fatal(err)
	}
	items, err := s.Lease(ctx, 1, time.Minute)
	if err != nil || len(items) != 1 || items[0].Value != 42 || string(items[0].Payload) != "p" {
		t.Fatalf("first lease: %+v, %v", items, err)
	}
	// A lease takes the value: the next one (the lease ended) decodes.
	c.add(time.Minute)
	if items, _ = s.Lease(ctx, 1, time.Minute); len(items) != 1 || items[0].Value != nil {
		t.Fatalf("second lease: %+v", items)
	}
	if err := s.Reschedule(ctx, Item{ID: "a", Payload: []byte("q"), Value: 7, Due: c.now()}, nil); err != nil {
		t.Fatal(err)
	}
	if items, _ = s.Lease(ctx, 1, time.Minute); len(items) != 1 || items[0].Value != 7 || string(items[0].Payload) != "q" {
		t.Fatalf("after reschedule: %+v", items)
	}
	// Values are not stored.
	if err := s.Reschedule(ctx, Item{ID: "a", Payload: []byte("r"), Value: 8, Due: c.now()}, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, path, c)
	if items, _ = s.Lease(ctx, 1, time.Minute); len(items) != 1 || items[0].Value != nil || string(items[0].Payload) != "r" {
		t.Fatalf("after a restart: %+v", items)
	}
	// At most maxValues are held.
	many := make([]Item, maxValues+10)
	for i := range many {
		many[i] = Item{ID: fmt.Sprint("m", i), Value: i}
	}
	if err := s.Enqueue(ctx, many); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	n := s.queue.values
	s.mu.Unlock()
	if n != maxValues {
		t.Errorf("%d values held, want %d", n, maxValues)
	}
	for _, id := range []string{"m0", "a"} {
		if err := s.Finish(ctx, id, nil); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	n = s.queue.values
	s.mu.Unlock()
	if n != maxValues-1 {
		t.Errorf("%d values held after finishing one, want %d", n, maxValues-1)
	}
}

// redeliver is what `regtrigger redeliver` does: the archived task,
// queued again for its trigger's next revision.
func redeliver(ctx context.Context, q *TaskQueue, id string) error {
	t, err := q.Archived(ctx, id)
	if err != nil {
		return err
	}
	tr := trigger.Trigger{Name: t.Trigger.Name, Namespace: t.Trigger.Namespace, Version: t.Trigger.Version + 1}
	return q.Requeue(ctx, t.Requeued(&tr))
}
