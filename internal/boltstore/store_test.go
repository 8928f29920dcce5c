package boltstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// clock is a settable test clock.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(0, c.t.Load()) }
func (c *clock) add(d time.Duration) { c.t.Add(int64(d)) }
func newClock(at time.Time) *clock   { c := &clock{}; c.t.Store(at.UnixNano()); return c }

var ctx = context.Background()

func open(t *testing.T, path string, c *clock) *Store {
	t.Helper()
	s, err := Open(path, Options{Now: c.now, Retention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func tr(name, ns string) trigger.Trigger {
	return trigger.Trigger{Name: name, Enabled: true, Namespace: ns, Actions: []event.Action{event.PushImage}, URL: "https://example.com/" + name}
}

func TestTriggers(t *testing.T) {
	c := newClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ts := open(t, filepath.Join(t.TempDir(), "s.db"), c).Triggers()
	for _, x := range []trigger.Trigger{tr("b", "ns1"), tr("a", "ns1"), tr("c", "ns2")} {
		got, err := ts.Create(ctx, x)
		if err != nil || got.Version != 1 || got.UpdatedAt.IsZero() {
			t.Fatalf("create %s: %+v %v", x.Name, got, err)
		}
	}
	if _, err := ts.Create(ctx, tr("a", "x")); !errors.Is(err, trigger.ErrExists) {
		t.Errorf("create twice: %v", err)
	}
	names := func(l []trigger.Trigger) string {
		var n []string
		for _, t := range l {
			n = append(n, t.Name)
		}
		return strings.Join(n, ",")
	}
	if l, _ := ts.Namespace(ctx, "ns1"); names(l) != "a,b" {
		t.Errorf("ns1 = %s", names(l))
	}
	if l, _ := ts.List(ctx); names(l) != "a,b,c" {
		t.Errorf("list = %s", names(l))
	}
	// Move b to ns2: the namespace index follows.
	b, _ := ts.Get(ctx, "b")
	b.Namespace = "ns2"
	b, err := ts.Update(ctx, b)
	if err != nil || b.Version != 2 {
		t.Fatalf("update: %+v %v", b, err)
	}
	if l, _ := ts.Namespace(ctx, "ns1"); names(l) != "a" {
		t.Errorf("ns1 after move = %s", names(l))
	}
	if l, _ := ts.Namespace(ctx, "ns2"); names(l) != "b,c" {
		t.Errorf("ns2 after move = %s", names(l))
	}
	stale := b
	stale.Version = 1
	if _, err := ts.Update(ctx, stale); !errors.Is(err, trigger.ErrConflict) {
		t.Errorf("stale update: %v", err)
	}
	if err := ts.Delete(ctx, "b", 1); !errors.Is(err, trigger.ErrConflict) {
		t.Errorf("stale delete: %v", err)
	}
	if err := ts.Delete(ctx, "b", 2); err != nil {
		t.Errorf("delete: %v", err)
	}
	if _, err := ts.Get(ctx, "b"); !errors.Is(err, trigger.ErrNotFound) {
		t.Errorf("get deleted: %v", err)
	}
	if err := ts.Delete(ctx, "b", 0); !errors.Is(err, trigger.ErrNotFound) {
		t.Errorf("delete missing: %v", err)
	}
	if _, err := ts.Update(ctx, tr("zz", "x")); !errors.Is(err, trigger.ErrNotFound) {
		t.Errorf("update missing: %v", err)
	}
	if l, _ := ts.Namespace(ctx, "ns2"); names(l) != "c" {
		t.Errorf("ns2 after delete = %s", names(l))
	}
}

func TestConcurrentUpdatesOneWins(t *testing.T) {
	c := newClock(time.Now())
	ts := open(t, filepath.Join(t.TempDir(), "s.db"), c).Triggers()
	base, _ := ts.Create(ctx, tr("a", "ns"))
	var wins, conflicts atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			x := base
			x.Description = fmt.Sprint(i)
			_, err := ts.Update(ctx, x)
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, trigger.ErrConflict):
				conflicts.Add(1)
			default:
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if wins.Load() != 1 || conflicts.Load() != 9 {
		t.Errorf("wins %d conflicts %d", wins.Load(), conflicts.Load())
	}
}

func TestRecords(t *testing.T) {
	c := newClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := open(t, filepath.Join(t.TempDir(), "s.db"), c)
	rs := s.Records()
	put := func(task, trig string, st record.Status) {
		if err := rs.Put(ctx, record.Record{TaskID: task, Trigger: trig, Status: st, Time: c.now()}); err != nil {
			t.Fatal(err)
		}
		c.add(time.Minute)
	}
	put("t1", "a", record.Retrying)
	put("t1", "a", record.Success)
	put("t2", "b", record.Failed)
	put("t3", "a", record.Untriggered)
	list := func(q record.Query) string {
		recs, err := rs.List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range recs {
			out = append(out, r.TaskID+":"+string(r.Status))
		}
		return strings.Join(out, " ")
	}
	tests := []struct {
		name string
		q    record.Query
		want string
	}{
		{"all newest first", record.Query{}, "t3:untriggered t2:failed t1:success t1:retrying"},
		{"by trigger", record.Query{Trigger: "a"}, "t3:untriggered t1:success t1:retrying"},
		{"by task", record.Query{TaskID: "t1"}, "t1:success t1:retrying"},
		{"by status", record.Query{Status: record.Failed}, "t2:failed"},
		{"trigger and status", record.Query{Trigger: "a", Status: record.Success}, "t1:success"},
		{"limit", record.Query{Limit: 2}, "t3:untriggered t2:failed"},
		{"since", record.Query{Since: c.now().Add(-150 * time.Second)}, "t3:untriggered t2:failed"},
		{"unknown trigger", record.Query{Trigger: "zz"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := list(tt.q); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	// Retention: a day later the old records are hidden, then purged.
	c.add(24 * time.Hour)
	put("t4", "a", record.Success)
	if got := list(record.Query{}); got != "t4:success" {
		t.Errorf("after retention: %q", got)
	}
	n, err := s.Purge(ctx)
	if err != nil || n != 4 {
		t.Errorf("purged %d, %v", n, err)
	}
	if got := list(record.Query{Trigger: "a"}); got != "t4:success" {
		t.Errorf("index after purge: %q", got)
	}
}

func TestDedupe(t *testing.T) {
	c := newClock(time.Now())
	s := open(t, filepath.Join(t.TempDir(), "s.db"), c)
	claim := func() bool {
		ok, err := s.Claim(ctx, "k", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !claim() || claim() {
		t.Fatal("first claim must win, the second lose")
	}
	c.add(2 * time.Minute)
	if !claim() {
		t.Fatal("an expired key can be claimed again")
	}
	if err := s.Release(ctx, "k"); err != nil || !claim() {
		t.Fatal("a released key can be claimed again")
	}
}

func TestQueueRestartLosesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	c := newClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s, err := Open(path, Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	items := []Item{{ID: "a", Payload: []byte("1")}, {ID: "b", Payload: []byte("2")}, {ID: "c", Payload: []byte("3"), Due: c.now().Add(time.Hour)}}
	if err := s.Enqueue(ctx, items); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, items[:1]); err != nil { // idempotent
		t.Fatal(err)
	}
	if n, _ := s.Len(ctx); n != 3 {
		t.Fatalf("len %d", n)
	}
	got, err := s.Lease(ctx, 10, time.Minute)
	if err != nil || len(got) != 2 || got[0].Receives != 1 {
		t.Fatalf("lease: %+v %v", got, err)
	}
	if again, _ := s.Lease(ctx, 10, time.Minute); len(again) != 0 {
		t.Fatalf("leased items must be hidden, got %+v", again)
	}
	if err := s.Ack(ctx, "a", true); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(ctx, "a", true); !errors.Is(err, ErrNoItem) {
		t.Errorf("double ack: %v", err)
	}
	// Crash with b leased; c is delayed an hour.
	s.Close()
	s, err = Open(path, Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, _ = s.Lease(ctx, 10, time.Minute)
	if len(got) != 1 || got[0].ID != "b" || got[0].Receives != 2 {
		t.Fatalf("after restart the leased item must be due at once: %+v", got)
	}
	due, ok, _ := s.NextDue(ctx)
	if !ok || !due.Equal(c.now().Add(time.Minute)) {
		t.Errorf("next due %v", due)
	}
	c.add(time.Hour)
	got, _ = s.Lease(ctx, 10, time.Minute)
	if len(got) != 2 {
		t.Fatalf("after an hour b (lease over) and c are due: %+v", got)
	}
	if err := s.Reschedule(ctx, "c", []byte("3b"), c.now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	c.add(time.Second)
	got, _ = s.Lease(ctx, 10, time.Minute)
	if len(got) != 1 || string(got[0].Payload) != "3b" {
		t.Fatalf("rescheduled: %+v", got)
	}
	if err := s.Reschedule(ctx, "nope", nil, c.now()); !errors.Is(err, ErrNoItem) {
		t.Errorf("reschedule unknown: %v", err)
	}
}

func TestTaskQueueRoundTripAndRedeliver(t *testing.T) {
	c := newClock(time.Now())
	s := open(t, filepath.Join(t.TempDir(), "s.db"), c)
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
	if leased[0].Task.Attempt != 5 {
		t.Fatalf("attempt not kept: %+v", leased[0].Task)
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
}

func TestUndecodableGoesToDeadLetters(t *testing.T) {
	c := newClock(time.Now())
	s := open(t, filepath.Join(t.TempDir(), "s.db"), c)
	if err := s.Enqueue(ctx, []Item{{ID: "junk", Payload: []byte("not json")}}); err != nil {
		t.Fatal(err)
	}
	q := NewTaskQueue(s)
	leased, _ := q.Lease(ctx, 1, time.Minute)
	if len(leased) != 1 || leased[0].Err == nil {
		t.Fatalf("%+v", leased)
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

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	if _, err := Open(path, Options{LockTimeout: 100 * time.Millisecond}); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "another regtrigger process") {
		t.Errorf("second open: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("the lock wait is not bounded")
	}
	garbage := filepath.Join(dir, "garbage.db")
	os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 1000)), 0o600)
	if _, err := Open(garbage, Options{}); err == nil || !strings.Contains(err.Error(), "not a regtrigger store") {
		t.Errorf("garbage file: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "no", "such", "dir", "s.db"), Options{}); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing dir: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "new.db"), Options{MustExist: true}); !errors.Is(err, ErrMissing) {
		t.Errorf("must exist: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Triggers().List(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: %v", err)
	}
}

func BenchmarkEnqueueLeaseAck(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "s.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	payload := make([]byte, 1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		id := fmt.Sprint(i)
		i++
		if err := s.Enqueue(ctx, []Item{{ID: id, Payload: payload}}); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Lease(ctx, 1, time.Minute); err != nil {
			b.Fatal(err)
		}
		if err := s.Ack(ctx, id, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRecordPut(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "s.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rs := s.Records()
	b.ReportAllocs()
	for b.Loop() {
		if err := rs.Put(ctx, record.Record{TaskID: "t", Trigger: "a", Status: record.Success}); err != nil {
			b.Fatal(err)
		}
	}
}
