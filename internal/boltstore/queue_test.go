package boltstore

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/event"
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
		if err := s.Ack(ctx, id); err != nil {
			t.Errorf("ack %s: %v", id, err)
		}
	}
	if n, _ := s.Len(ctx); n != 2 {
		t.Errorf("len after acks = %d, want 2 (c, f)", n)
	}
	for _, call := range []func() error{
		func() error { return s.Ack(ctx, "a") },
		func() error { return s.Ack(ctx, "zz") },
		func() error { return s.Reschedule(ctx, "zz", nil, t0) },
		func() error { return s.Archive(ctx, "zz") },
		func() error { return s.DeadLetter(ctx, "zz", errors.New("x")) },
	} {
		if err := call(); !errors.Is(err, ErrNoItem) {
			t.Errorf("unknown id: %v, want ErrNoItem", err)
		}
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
	if err := s.Reschedule(ctx, "a", []byte("retry"), c.now().Add(10*time.Second)); err != nil {
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
	if n := keys(t, s, bQueueDue); n != 1 {
		t.Errorf("%d due entries for one item", n)
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
	if err := s.Ack(ctx, "acked"); err != nil {
		t.Fatal(err)
	}
	// A retry leased, then rescheduled to later: it keeps that due time.
	if err := s.Reschedule(ctx, "leased", []byte("2b"), t0.Add(30*time.Minute)); err != nil {
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
	if err != nil || len(items) != 1 || items[0].ID != "crashed" || items[0].Receives != 2 {
		t.Fatalf("the leased item must be due at once after a restart: %+v %v", items, err)
	}
	// Ack what each lease returns, so that only newly due items show.
	done := func() string {
		t.Helper()
		got := lease(t, s)
		for _, f := range strings.Fields(got) {
			if err := s.Ack(ctx, strings.Split(f, ":")[0]); err != nil {
				t.Fatal(err)
			}
		}
		return got
	}
	if err := s.Ack(ctx, "crashed"); err != nil {
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

func TestQueueUndecodableItemIsSetAside(t *testing.T) {
	c := newClock(t0)
	s := open(t, "", c)
	if err := s.Enqueue(ctx, []Item{{ID: "bad"}, {ID: "good", Payload: []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bQueue).Put([]byte("bad"), []byte("{not json")) }); err != nil {
		t.Fatal(err)
	}
	if got := lease(t, s); got != "good:1" {
		t.Errorf("lease = %q", got)
	}
	if n, _ := s.DeadLetters(ctx); n != 1 {
		t.Errorf("%d dead letters, want 1", n)
	}
	if n, _ := s.Len(ctx); n != 1 {
		t.Errorf("len %d, want 1", n)
	}
}

func TestTaskQueueRoundTripAndRedeliver(t *testing.T) {
	c := newClock(t0)
	s := open(t, "", c)
	q := NewTaskQueue(s)
	woken := 0
	q.OnEnqueue = func() { woken++ }
	task := delivery.NewTask("tsk_1", tr("a", "ns"), event.Event{Action: event.PushImage, Namespace: "ns", Repository: "r"}, c.now())
	if err := q.Enqueue(ctx, []delivery.Task{task}); err != nil || woken != 1 {
		t.Fatal(err, woken)
	}
	leased, err := q.Lease(ctx, 1, time.Minute)
	if err != nil || len(leased) != 1 || leased[0].Err != nil || leased[0].Task.Trigger.Name != "a" {
		t.Fatalf("%+v %v", leased, err)
	}
	if err := q.Redeliver(ctx, "tsk_1"); !errors.Is(err, ErrQueued) {
		t.Errorf("redeliver a queued task: %v", err)
	}
	task.Attempt = 5
	if err := q.Retry(ctx, task, 0); err != nil {
		t.Fatal(err)
	}
	leased, _ = q.Lease(ctx, 1, time.Minute)
	if len(leased) != 1 || leased[0].Task.Attempt != 5 {
		t.Fatalf("attempt not kept: %+v", leased)
	}
	if err := q.Ack(ctx, "tsk_1"); err != nil {
		t.Fatal(err)
	}
	if err := q.Redeliver(ctx, "tsk_1"); err != nil {
		t.Fatal(err)
	}
	leased, _ = q.Lease(ctx, 1, time.Minute)
	if len(leased) != 1 || leased[0].Task.Attempt != 0 || leased[0].Task.ID != "tsk_1" {
		t.Fatalf("redelivered: %+v", leased)
	}
	if err := q.Redeliver(ctx, "unknown"); !errors.Is(err, ErrNoItem) {
		t.Errorf("redeliver unknown: %v", err)
	}
	// Finished again: archived once, and purged after the retention.
	if err := q.Ack(ctx, "tsk_1"); err != nil {
		t.Fatal(err)
	}
	if n := keys(t, s, bArchiveTime); n != 1 {
		t.Errorf("%d archive times for one task", n)
	}
	c.add(25 * time.Hour)
	if _, err := s.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if err := q.Redeliver(ctx, "tsk_1"); !errors.Is(err, ErrNoItem) {
		t.Errorf("redeliver after the retention: %v", err)
	}
	if n := keys(t, s, bArchive) + keys(t, s, bArchiveTime); n != 0 {
		t.Errorf("%d archive keys after purge", n)
	}
}

func TestTaskQueueDeadLettersUndecodable(t *testing.T) {
	s := open(t, "", newClock(t0))
	if err := s.Enqueue(ctx, []Item{{ID: "junk", Payload: []byte("not json")}}); err != nil {
		t.Fatal(err)
	}
	q := NewTaskQueue(s)
	leased, err := q.Lease(ctx, 1, time.Minute)
	if err != nil || len(leased) != 1 || leased[0].Err == nil {
		t.Fatalf("%+v %v", leased, err)
	}
	if err := q.DeadLetter(ctx, "junk", leased[0].Err); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.DeadLetters(ctx); n != 1 {
		t.Errorf("dead letters %d", n)
	}
	if n, _ := s.Len(ctx); n != 0 {
		t.Errorf("queue len %d", n)
	}
}
