package storetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/delivery/healthtest"
	"github.com/regtrigger/regtrigger/internal/dispatcher"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/outbound"
	"github.com/regtrigger/regtrigger/internal/payload"
	"github.com/regtrigger/regtrigger/internal/receiver"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// tests are the behaviour tests Run runs.
var tests = []struct {
	name string
	fn   func(*testing.T, Opener)
}{
	{"QueueEnqueueLeaseAck", testQueueEnqueueLeaseAck},
	{"WindowsContract", testWindowsContract},
	{"WindowsSurviveRestart", testWindowsSurviveRestart},
	{"QueueEnqueueIsAtomic", testQueueEnqueueIsAtomic},
	{"QueueLeaseHidesUntilItEnds", testQueueLeaseHidesUntilItEnds},
	{"QueueRestartLosesNothing", testQueueRestartLosesNothing},
	{"TaskQueueRoundTripAndRedeliver", testTaskQueueRoundTripAndRedeliver},
	{"TaskQueueFinishedWithoutRecordIsNotKept", testTaskQueueFinishedWithoutRecordIsNotKept},
	{"TaskQueueDeadLettersUndecodable", testTaskQueueDeadLettersUndecodable},
	{"LeaseHandsBackTheValue", testLeaseHandsBackTheValue},
	{"RecordsList", testRecordsList},
	{"RecordsSameTimeAndDefaults", testRecordsSameTimeAndDefaults},
	{"RecordsRetentionAndPurge", testRecordsRetentionAndPurge},
	{"Dedupe", testDedupe},
	{"TriggerCreateGetList", testTriggerCreateGetList},
	{"TriggerErrors", testTriggerErrors},
	{"TriggerNamespaceMove", testTriggerNamespaceMove},
	{"ConcurrentUpdatesOneWins", testConcurrentUpdatesOneWins},
	{"NamespaceCacheFollowsWrites", testNamespaceCacheFollowsWrites},
	{"GetSeesEveryWrite", testGetSeesEveryWrite},
	{"AutoDisableAfter", testAutoDisableAfter},
	{"HealthContract", testHealthContract},
	{"CircuitBoundsAttemptsOnThePool", testCircuitBoundsAttemptsOnThePool},
	{"ReopenKeepsEverything", testReopenKeepsEverything},
	{"CanceledContext", testCanceledContext},
	{"ConcurrentClaimsOfOneKeyOneWins", testConcurrentClaimsOfOneKeyOneWins},
	{"ClaimEnqueue", testClaimEnqueue},
	{"TaskQueueClaimEnqueue", testTaskQueueClaimEnqueue},
}

// lease leases up to 10 items for a minute and renders them as id:payload.
func lease(t testing.TB, s interface {
	Lease(context.Context, int, time.Duration) ([]Item, error)
}) string {
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

func testQueueEnqueueLeaseAck(t *testing.T, open Opener) {
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

func testQueueEnqueueIsAtomic(t *testing.T, open Opener) {
	s := open(t, "", newClock(t0))
	if err := s.Enqueue(ctx, []Item{{ID: "a"}, {ID: ""}}); err == nil {
		t.Fatal("an item without an id was accepted")
	}
	if n, _ := s.Len(ctx); n != 0 {
		t.Errorf("a failed enqueue stored %d items", n)
	}
}

func testQueueLeaseHidesUntilItEnds(t *testing.T, open Opener) {
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

func testQueueRestartLosesNothing(t *testing.T, open Opener) {
	path := filepath.Join(t.TempDir(), "s.db")
	c := newClock(t0)
	s, err := open(t, path, c), error(nil)
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

func testTaskQueueRoundTripAndRedeliver(t *testing.T, open Opener) {
	c := newClock(t0)
	s := open(t, "", c)
	q := s.NewTaskQueue()
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

func testTaskQueueFinishedWithoutRecordIsNotKept(t *testing.T, open Opener) {
	// A finished task is found through the records of its attempts: one
	// finished without any record cannot be redelivered.
	s := open(t, "", newClock(t0))
	q := s.NewTaskQueue()
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

func testTaskQueueDeadLettersUndecodable(t *testing.T, open Opener) {
	s := open(t, "", newClock(t0))
	if err := s.Enqueue(ctx, []Item{{ID: "junk", Payload: []byte("not json")}, {ID: "other", Payload: []byte(`{"id":"x"}`)}}); err != nil {
		t.Fatal(err)
	}
	// And one whose payload the file lost (queued without a value, as
	// after a restart).
	if err := s.Enqueue(ctx, []Item{{ID: "lost", Payload: []byte(`{"id":"lost"}`)}}); err != nil {
		t.Fatal(err)
	}
	s.LosePayload(t, "lost")
	q := s.NewTaskQueue()
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

func testLeaseHandsBackTheValue(t *testing.T, open Opener) {
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
	maxValues := s.MaxValues
	many := make([]Item, maxValues+10)
	for i := range many {
		many[i] = Item{ID: fmt.Sprint("m", i), Value: i}
	}
	if err := s.Enqueue(ctx, many); err != nil {
		t.Fatal(err)
	}
	n := s.Values()
	if n != maxValues {
		t.Errorf("%d values held, want %d", n, maxValues)
	}
	for _, id := range []string{"m0", "a"} {
		if err := s.Finish(ctx, id, nil); err != nil {
			t.Fatal(err)
		}
	}
	n = s.Values()
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

func recs(t testing.TB, rs record.Store, q record.Query) string {
	t.Helper()
	l, err := rs.List(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(l))
	for i, r := range l {
		out[i] = r.TaskID + ":" + string(r.Status)
	}
	return strings.Join(out, " ")
}

func testRecordsList(t *testing.T, open Opener) {
	c := newClock(t0)
	rs := open(t, "", c).Records()
	put := func(task, trig string, st record.Status) {
		t.Helper()
		if err := rs.Put(ctx, record.Record{TaskID: task, Trigger: trig, Status: st, Time: c.now()}); err != nil {
			t.Fatal(err)
		}
		c.add(time.Minute)
	}
	put("t1", "a", record.Retrying)
	put("t1", "a", record.Success)
	put("t2", "b", record.Failed)
	put("t3", "a", record.Untriggered)
	put("t4", "a.b", record.Blocked) // "a" is its prefix
	put("t10", "b", record.Success)  // "t1" is its prefix
	start := t0
	tests := []struct {
		name string
		q    record.Query
		want string
	}{
		{"all, newest first", record.Query{}, "t10:success t4:blocked t3:untriggered t2:failed t1:success t1:retrying"},
		{"trigger", record.Query{Trigger: "a"}, "t3:untriggered t1:success t1:retrying"},
		{"trigger with a prefix", record.Query{Trigger: "a.b"}, "t4:blocked"},
		{"task", record.Query{TaskID: "t1"}, "t1:success t1:retrying"},
		{"task with a prefix", record.Query{TaskID: "t10"}, "t10:success"},
		{"status", record.Query{Status: record.Success}, "t10:success t1:success"},
		{"trigger and status", record.Query{Trigger: "a", Status: record.Retrying}, "t1:retrying"},
		{"task and trigger", record.Query{TaskID: "t1", Trigger: "a"}, "t1:success t1:retrying"},
		{"task of another trigger", record.Query{TaskID: "t1", Trigger: "b"}, ""},
		{"since", record.Query{Since: start.Add(2 * time.Minute)}, "t10:success t4:blocked t3:untriggered t2:failed"},
		{"since, exact time included", record.Query{Trigger: "a", Since: start.Add(time.Minute)}, "t3:untriggered t1:success"},
		{"since in the future", record.Query{Since: c.now().Add(time.Hour)}, ""},
		{"limit", record.Query{Limit: 2}, "t10:success t4:blocked"},
		{"limit with a filter", record.Query{Trigger: "a", Limit: 1}, "t3:untriggered"},
		{"unknown trigger", record.Query{Trigger: "zz"}, ""},
		{"unknown task", record.Query{TaskID: "zz"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := recs(t, rs, tt.q); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func testRecordsSameTimeAndDefaults(t *testing.T, open Opener) {
	c := newClock(t0)
	rs := open(t, "", c).Records()
	// Records at the same instant keep their order; a zero Time is now.
	for i := range record.DefaultLimit + 5 {
		if err := rs.Put(ctx, record.Record{TaskID: fmt.Sprint(i), Trigger: "a", Status: record.Success}); err != nil {
			t.Fatal(err)
		}
	}
	l, err := rs.List(ctx, record.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != record.DefaultLimit {
		t.Fatalf("%d records without a limit, want %d", len(l), record.DefaultLimit)
	}
	if l[0].TaskID != fmt.Sprint(record.DefaultLimit+4) || !l[0].Time.Equal(c.now()) {
		t.Errorf("newest = %+v", l[0])
	}
}

func testRecordsRetentionAndPurge(t *testing.T, open Opener) {
	c := newClock(t0)
	s := open(t, "", c) // retention: one day
	rs := s.Records()
	put := func(task, trig string) {
		t.Helper()
		if err := rs.Put(ctx, record.Record{TaskID: task, Trigger: trig, Status: record.Success, Time: c.now()}); err != nil {
			t.Fatal(err)
		}
	}
	// More old records than one purge batch, so Purge takes several.
	for i := range purgeBatch + 10 {
		put(fmt.Sprint("old", i), "a")
		c.add(time.Millisecond)
	}
	put("untriggered", "") // no task id or trigger: no index entries
	c.add(23 * time.Hour)
	put("recent", "a")
	c.add(time.Hour + time.Second) // the first records are now older than the retention
	tests := []struct {
		name string
		q    record.Query
		want string
	}{
		{"all", record.Query{}, "recent:success"},
		{"trigger", record.Query{Trigger: "a"}, "recent:success"},
		{"task", record.Query{TaskID: "old0"}, ""},
		{"since before the retention", record.Query{Since: t0}, "recent:success"},
	}
	check := func(when string) {
		for _, tt := range tests {
			if got := recs(t, rs, tt.q); got != tt.want {
				t.Errorf("%s, %s: got %q, want %q", when, tt.name, got, tt.want)
			}
		}
	}
	check("before purge")
	if n := keys(t, s, bRecords); n != purgeBatch+12 {
		t.Fatalf("%d records stored before purge", n)
	}
	n, err := s.Purge(ctx)
	if err != nil || n != purgeBatch+11 {
		t.Fatalf("purged %d, %v; want %d", n, err, purgeBatch+11)
	}
	check("after purge")
	for _, b := range []Kind{bRecords, bRecordsTrigger, bRecordsTask} {
		if n := keys(t, s, b); n != 1 {
			t.Errorf("%s holds %d keys after purge, want 1", b, n)
		}
	}
	if n, err := s.Purge(ctx); err != nil || n != 0 {
		t.Errorf("second purge: %d, %v", n, err)
	}
}

func testDedupe(t *testing.T, open Opener) {
	c := newClock(t0)
	s := open(t, "", c)
	claim := func(key string, ttl time.Duration) bool {
		t.Helper()
		fresh, err := s.Claim(ctx, key, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return fresh
	}
	if !claim("k", time.Minute) {
		t.Fatal("first claim lost")
	}
	if claim("k", time.Minute) {
		t.Fatal("second claim of a live key won")
	}
	if !claim("other", time.Minute) {
		t.Fatal("another key is independent")
	}
	c.add(59 * time.Second)
	if claim("k", time.Minute) {
		t.Fatal("claim a second before expiry won")
	}
	c.add(time.Second)
	if !claim("k", time.Minute) {
		t.Fatal("an expired key can be claimed again")
	}
	if err := s.Release(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if !claim("k", time.Minute) {
		t.Fatal("a released key can be claimed again")
	}
	if err := s.Release(ctx, "never claimed"); err != nil {
		t.Errorf("release of an unknown key: %v", err)
	}
	// Purge removes expired keys only, however many.
	for i := range 2*purgeBatch + 1 {
		claim(fmt.Sprint("short", i), time.Second)
	}
	claim("long", time.Hour)
	c.add(2 * time.Minute)
	if _, err := s.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if n := keys(t, s, bDedupe); n != 1 {
		t.Errorf("%d keys after purge, want 1 (long)", n)
	}
	if claim("long", time.Hour) {
		t.Error("purge removed a live key")
	}
}

func tr(name, ns string) trigger.Trigger {
	return trigger.Trigger{Name: name, Enabled: true, Namespace: ns, Actions: []event.Action{event.PushImage}, URL: "https://example.com/" + name}
}

func names(l []trigger.Trigger) string {
	n := make([]string, len(l))
	for i, t := range l {
		n[i] = t.Name
	}
	return strings.Join(n, ",")
}

func testTriggerCreateGetList(t *testing.T, open Opener) {
	c := newClock(t0)
	ts := open(t, "", c).Triggers()
	// Created out of order, in three namespaces; "a.b" shares a prefix with "a".
	for _, x := range []trigger.Trigger{tr("b", "ns1"), tr("a.b", "ns1"), tr("a", "ns1"), tr("c", "ns2"), tr("d", "ns")} {
		c.add(time.Second)
		got, err := ts.Create(ctx, x)
		if err != nil {
			t.Fatalf("create %s: %v", x.Name, err)
		}
		if got.Version != 1 || !got.UpdatedAt.Equal(c.now()) {
			t.Errorf("create %s returned version %d at %v", x.Name, got.Version, got.UpdatedAt)
		}
		stored, err := ts.Get(ctx, x.Name)
		if err != nil || stored.Version != 1 || !stored.UpdatedAt.Equal(got.UpdatedAt) || stored.URL != x.URL {
			t.Errorf("get %s: %+v %v", x.Name, stored, err)
		}
	}
	tests := []struct {
		ns   string
		want string
	}{
		{"ns1", "a,a.b,b"},
		{"ns2", "c"},
		{"ns", "d"}, // not ns1 or ns2, though it is their prefix
		{"n", ""},
		{"", ""},
	}
	for _, tt := range tests {
		l, err := ts.Namespace(ctx, tt.ns)
		if err != nil || names(l) != tt.want {
			t.Errorf("Namespace(%q) = %s, %v; want %s", tt.ns, names(l), err, tt.want)
		}
	}
	if l, err := ts.List(ctx); err != nil || names(l) != "a,a.b,b,c,d" {
		t.Errorf("List = %s, %v", names(l), err)
	}
}

func testTriggerErrors(t *testing.T, open Opener) {
	ts := open(t, "", newClock(t0)).Triggers()
	a, err := ts.Create(ctx, tr("a", "ns"))
	if err != nil {
		t.Fatal(err)
	}
	a.Description = "changed"
	if a, err = ts.Update(ctx, a); err != nil || a.Version != 2 {
		t.Fatalf("update: %+v %v", a, err)
	}
	at := func(v int64) trigger.Trigger { x := tr("a", "ns"); x.Version = v; return x }
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"create taken name", func() error { _, err := ts.Create(ctx, tr("a", "other")); return err }, trigger.ErrExists},
		{"get missing", func() error { _, err := ts.Get(ctx, "zz"); return err }, trigger.ErrNotFound},
		{"update missing", func() error { _, err := ts.Update(ctx, tr("zz", "ns")); return err }, trigger.ErrNotFound},
		{"update old version", func() error { _, err := ts.Update(ctx, at(1)); return err }, trigger.ErrConflict},
		{"update future version", func() error { _, err := ts.Update(ctx, at(3)); return err }, trigger.ErrConflict},
		{"update without version", func() error { _, err := ts.Update(ctx, at(0)); return err }, trigger.ErrConflict},
		{"delete missing", func() error { return ts.Delete(ctx, "zz", 0) }, trigger.ErrNotFound},
		{"delete old version", func() error { return ts.Delete(ctx, "a", 1) }, trigger.ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
	// None of them changed the stored trigger.
	if got, err := ts.Get(ctx, "a"); err != nil || got.Version != 2 || got.Namespace != "ns" || got.Description != "changed" {
		t.Errorf("after the failed writes: %+v %v", got, err)
	}
	if err := ts.Delete(ctx, "a", 2); err != nil {
		t.Fatalf("delete at the stored version: %v", err)
	}
	if _, err := ts.Get(ctx, "a"); !errors.Is(err, trigger.ErrNotFound) {
		t.Errorf("get deleted: %v", err)
	}
	if l, _ := ts.Namespace(ctx, "ns"); len(l) != 0 {
		t.Errorf("deleted trigger still in its namespace: %s", names(l))
	}
	// A deleted name can be created again, at version 1.
	if a, err := ts.Create(ctx, tr("a", "ns")); err != nil || a.Version != 1 {
		t.Errorf("create again: %+v %v", a, err)
	}
	if err := ts.Delete(ctx, "a", 0); err != nil {
		t.Errorf("delete any version: %v", err)
	}
}

func testTriggerNamespaceMove(t *testing.T, open Opener) {
	c := newClock(t0)
	s := open(t, "", c)
	ts := s.Triggers()
	for _, x := range []trigger.Trigger{tr("a", "ns1"), tr("b", "ns1"), tr("c", "ns2")} {
		if _, err := ts.Create(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := ts.Get(ctx, "b")
	b.Namespace = "ns2"
	c.add(time.Minute)
	b, err := ts.Update(ctx, b)
	if err != nil || b.Version != 2 || !b.UpdatedAt.Equal(c.now()) {
		t.Fatalf("move: %+v %v", b, err)
	}
	check := func(when string, want map[string]string) {
		t.Helper()
		for ns, w := range want {
			if l, err := ts.Namespace(ctx, ns); err != nil || names(l) != w {
				t.Errorf("%s: Namespace(%s) = %s, %v; want %s", when, ns, names(l), err, w)
			}
		}
		if n := keys(t, s, bTriggersNS); n != keys(t, s, bTriggers) {
			t.Errorf("%s: %d index entries for %d triggers", when, n, keys(t, s, bTriggers))
		}
	}
	check("after the move", map[string]string{"ns1": "a", "ns2": "b,c"})
	if l, _ := ts.Namespace(ctx, "ns2"); l[0].Version != 2 {
		t.Errorf("Namespace returned the old version: %+v", l[0])
	}
	// An update that keeps the namespace keeps one index entry.
	b.Description = "x"
	if b, err = ts.Update(ctx, b); err != nil {
		t.Fatal(err)
	}
	check("after an update in place", map[string]string{"ns1": "a", "ns2": "b,c"})
	// Move it back, then delete it.
	b.Namespace = "ns1"
	if b, err = ts.Update(ctx, b); err != nil {
		t.Fatal(err)
	}
	check("after moving back", map[string]string{"ns1": "a,b", "ns2": "c"})
	if err := ts.Delete(ctx, "b", b.Version); err != nil {
		t.Fatal(err)
	}
	check("after delete", map[string]string{"ns1": "a", "ns2": "c"})
}

func testConcurrentUpdatesOneWins(t *testing.T, open Opener) {
	ts := open(t, "", newClock(t0)).Triggers()
	base, err := ts.Create(ctx, tr("a", "ns"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			x := base
			x.Description = fmt.Sprint(i)
			<-start
			_, errs[i] = ts.Update(ctx, x)
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("updates %d and %d both won", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, trigger.ErrConflict):
			t.Errorf("update %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no update won")
	}
	got, _ := ts.Get(ctx, "a")
	if got.Version != 2 || got.Description != fmt.Sprint(winner) {
		t.Errorf("stored %+v, want the winner's (%d) at version 2", got, winner)
	}
}

func testNamespaceCacheFollowsWrites(t *testing.T, open Opener) {
	s := open(t, "", newClock(t0))
	ts := s.Triggers()
	urls := func() string {
		t.Helper()
		l, err := ts.Namespace(ctx, "ns")
		if err != nil {
			t.Fatal(err)
		}
		out := make([]string, len(l))
		for i, x := range l {
			out[i] = strings.TrimPrefix(x.URL, "https://example.com/")
		}
		return strings.Join(out, ",")
	}
	if got := urls(); got != "" {
		t.Fatalf("empty namespace: %q", got)
	}
	a, err := ts.Create(ctx, tr("a", "ns"))
	if err != nil {
		t.Fatal(err)
	}
	if got := urls(); got != "a" {
		t.Errorf("after create: %q", got)
	}
	// A caller changing its answer does not change the next one's.
	l, _ := ts.Namespace(ctx, "ns")
	l[0].URL = "changed"
	if got := urls(); got != "a" {
		t.Errorf("after a caller changed its copy: %q", got)
	}
	a.URL = "https://example.com/a2"
	if _, err := ts.Update(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got := urls(); got != "a2" {
		t.Errorf("after update: %q", got)
	}
	if err := ts.Delete(ctx, "a", 0); err != nil {
		t.Fatal(err)
	}
	if got := urls(); got != "" {
		t.Errorf("after delete: %q", got)
	}
	// A failed write empties the cache too, harmlessly.
	if err := ts.Delete(ctx, "a", 0); !errors.Is(err, trigger.ErrNotFound) {
		t.Errorf("delete again: %v", err)
	}
	// Many namespaces: the cache stays bounded.
	maxCachedNamespaces := s.MaxCached
	for i := range maxCachedNamespaces + 10 {
		if _, err := ts.Namespace(ctx, fmt.Sprint("other", i)); err != nil {
			t.Fatal(err)
		}
	}
	n := s.CachedNamespaces()
	if n > maxCachedNamespaces {
		t.Errorf("%d namespaces cached", n)
	}
}

// TestGetSeesEveryWrite: Get answers from memory, and every trigger write
// empties that memory, so the dispatcher never sends with a stale trigger.
func testGetSeesEveryWrite(t *testing.T, open Opener) {
	s := open(t, "", newClock(t0))
	ts := s.Triggers()
	if _, err := ts.Get(ctx, "a"); !errors.Is(err, trigger.ErrNotFound) {
		t.Fatalf("before create: %v", err)
	}
	created, err := ts.Create(ctx, tr("a", "ns"))
	if err != nil {
		t.Fatal(err)
	}
	for step, want := range []string{"https://example.com/a", "https://example.com/edited"} {
		got, err := ts.Get(ctx, "a")
		if err != nil || got.URL != want {
			t.Fatalf("step %d: %q, %v; want %q", step, got.URL, err, want)
		}
		if _, err := ts.Get(ctx, "a"); err != nil { // from memory
			t.Fatal(err)
		}
		if step == 0 {
			created.URL = "https://example.com/edited"
			if created, err = ts.Update(ctx, created); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := ts.Delete(ctx, "a", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Get(ctx, "a"); !errors.Is(err, trigger.ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
}

// scripted answers each request with the status its function gives for
// the time since the test started.
type scripted struct {
	clock *Clock
	start time.Time
	at    func(since time.Duration) int
}

func (s scripted) Post(context.Context, string, http.Header, []byte) (*outbound.Response, error) {
	return &outbound.Response{Status: s.at(s.clock.now().Sub(s.start))}, nil
}

// TestAutoDisableAfter delivers a task every 100 ms of a test clock on the
// embedded store, with auto-disable-after scaled down to 1 s, and checks
// when the trigger is disabled: after 1 s of failures only, counted from
// the last success or edit, never with 0.
func testAutoDisableAfter(t *testing.T, open Opener) {
	const step = 100 * time.Millisecond
	after := trigger.Duration(time.Second)
	never := trigger.Duration(0)
	tests := []struct {
		name   string
		after  *trigger.Duration
		status func(since time.Duration) int
		edit   time.Duration // edit the trigger (a new description) at this time; 0 = never
		want   time.Duration // disabled at this time since the start; 0 = never (within 3 s)
	}{
		{"down all along", &after, func(time.Duration) int { return 503 }, 0, time.Second},
		{"final 4xx count too", &after, func(time.Duration) int { return 404 }, 0, time.Second},
		{"a success restarts the clock", &after, func(d time.Duration) int {
			if d == 600*time.Millisecond {
				return 200
			}
			return 500
		}, 0, 1700 * time.Millisecond},
		{"an edit restarts the clock", &after, func(time.Duration) int { return 503 }, 500 * time.Millisecond, 1500 * time.Millisecond},
		{"0 is never", &never, func(time.Duration) int { return 503 }, 0, 0},
		{"up all along", &after, func(time.Duration) int { return 200 }, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			clk := newClock(start)
			s := open(t, "", clk)
			ctx := context.Background()
			tr, err := s.Triggers().Create(ctx, trigger.Trigger{Name: "flaky", Enabled: true, Namespace: "ns", Actions: []event.Action{event.PushImage},
				URL: "https://flaky.example/hook", Format: payload.TCR, AutoDisableAfter: tt.after})
			if err != nil {
				t.Fatal(err)
			}
			e := &delivery.Engine{
				Sender: scripted{clock: clk, start: start, at: tt.status}, Triggers: s.Triggers(), Health: s.Health(), Disable: s.Triggers(),
				Policy: delivery.Policy{MaxAttempts: 1}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: clk.now,
				Circuit: delivery.Circuit{Threshold: 1000}, // this test is about the trigger, not the target
			}
			var disabledAt time.Duration
			for i := 0; i <= 30 && disabledAt == 0; i++ {
				since := clk.now().Sub(start)
				if tt.edit != 0 && since == tt.edit {
					cur, _ := s.Triggers().Get(ctx, "flaky")
					cur.Description = "new URL, say"
					if _, err := s.Triggers().Update(ctx, cur); err != nil {
						t.Fatal(err)
					}
				}
				task := delivery.NewTask(fmt.Sprintf("tsk_%032x", i), &tr, event.Event{Action: event.PushImage, Namespace: "ns", Repository: "app", Tag: "v1"}, clk.now())
				out := e.Deliver(ctx, task)
				if out.Record.ErrorClass == record.ClassAutoDisabled {
					disabledAt = since
					if out.Retry || out.Record.Status != record.Failed || !strings.Contains(out.Record.Error, "auto-disable-after 1s") {
						t.Errorf("the disabling attempt's record: %+v (retry %v)", out.Record, out.Retry)
					}
				}
				clk.add(step)
			}
			if disabledAt != tt.want {
				t.Fatalf("disabled at %v, want %v (0 = never)", disabledAt, tt.want)
			}
			got, err := s.Triggers().Get(ctx, "flaky")
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == 0 {
				if !got.Enabled || got.DisabledReason != "" {
					t.Errorf("trigger disabled: %+v", got)
				}
				return
			}
			if got.Enabled || !strings.HasPrefix(got.DisabledReason, "auto-disabled: every delivery failed since") || got.DisabledAt.IsZero() {
				t.Fatalf("stored trigger: enabled %v, reason %q, at %v", got.Enabled, got.DisabledReason, got.DisabledAt)
			}
			// Later tasks are skipped, saying why.
			out := e.Deliver(ctx, delivery.NewTask("tsk_later", &tr, event.Event{Action: event.PushImage, Namespace: "ns"}, clk.now()))
			if out.Record.Status != record.Skipped || !strings.Contains(out.Record.Error, "auto-disabled") {
				t.Errorf("a later task: %+v", out.Record)
			}
			// Re-applying a file that says enabled (serve --triggers at
			// every start) does not undo it.
			file := got
			file.Enabled, file.DisabledReason, file.DisabledAt, file.Version = true, "", time.Time{}, 0
			changes, err := trigger.Apply(ctx, s.Triggers(), []trigger.Trigger{file}, trigger.ApplyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if again, _ := s.Triggers().Get(ctx, "flaky"); again.Enabled || changes[0].Kind != trigger.Unchanged {
				t.Errorf("apply re-enabled the auto-disabled trigger (%v)", changes)
			}
		})
	}
}

func testHealthContract(t *testing.T, open Opener) {
	healthtest.Run(t, open(t, "", newClock(time.Now())).Health())
}

// downTarget answers 503 until up is closed, then 200, and counts the
// requests made while the target's circuit was open.
type downTarget struct {
	health   delivery.Health
	key      string
	mu       sync.Mutex
	up       bool
	requests int
	open     int
	ok       int
	done     chan struct{}
	want     int
}

func (d *downTarget) Post(ctx context.Context, _ string, _ http.Header, _ []byte) (*outbound.Response, error) {
	st, _ := d.health.Read(ctx, d.key, "")
	d.mu.Lock()
	defer d.mu.Unlock()
	d.requests++
	if st.Target.Open() {
		d.open++
	}
	if !d.up {
		return &outbound.Response{Status: 503}, nil
	}
	if d.ok++; d.ok == d.want {
		close(d.done)
	}
	return &outbound.Response{Status: 200}, nil
}

// TestCircuitBoundsAttemptsOnThePool runs serve's dispatcher — the pool
// of workers over the embedded queue — against a target that is down for
// a second: threshold 3, cool-down 50 ms doubling to 200 ms, retries
// every 10 ms. While its circuit is open the target gets only the
// probes (one per cool-down window, and the requests the other workers
// had started when it opened); every task is delivered once it is up.
func testCircuitBoundsAttemptsOnThePool(t *testing.T, open Opener) {
	const (
		tasks, workers, threshold = 20, 4, 3
		coolDown, maxCool         = 50 * time.Millisecond, 200 * time.Millisecond
		downFor                   = time.Second
	)
	s := open(t, "", nil)
	ctx := context.Background()
	tr, err := s.Triggers().Create(ctx, trigger.Trigger{Name: "down", Enabled: true, Namespace: "ns", Actions: []event.Action{event.PushImage},
		URL: "https://down.example/hook", Format: payload.TCR})
	if err != nil {
		t.Fatal(err)
	}
	q := s.NewTaskQueue()
	var ts []delivery.Task
	for i := range tasks {
		ts = append(ts, delivery.NewTask(fmt.Sprintf("tsk_%032x", i), &tr, event.Event{Action: event.PushImage, Namespace: "ns", Repository: "app", Tag: fmt.Sprint("v", i)}, time.Now()))
	}
	if err := q.Enqueue(ctx, ts); err != nil {
		t.Fatal(err)
	}
	target := &downTarget{health: s.Health(), key: delivery.TargetKey(tr.URL), done: make(chan struct{}), want: tasks}
	engine := &delivery.Engine{
		Sender: target, Triggers: s.Triggers(), Health: s.Health(),
		Policy:  delivery.Policy{MaxAttempts: 100, Backoff: []time.Duration{10 * time.Millisecond}},
		Circuit: delivery.Circuit{Threshold: threshold, CoolDown: coolDown, MaxCoolDown: maxCool, ProbeLease: 10 * time.Second},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	pool := &dispatcher.Pool{Queue: q, Engine: engine, Workers: workers, Idle: 5 * time.Millisecond, Logger: engine.Logger}
	q.OnEnqueue = pool.Wake
	pctx, stop := context.WithCancel(ctx)
	poolDone := make(chan error, 1)
	go func() { poolDone <- pool.Run(pctx) }()
	start := time.Now()
	time.Sleep(downFor)
	target.mu.Lock()
	target.up = true
	down := time.Since(start)
	target.mu.Unlock()
	select {
	case <-target.done:
	case <-time.After(time.Minute):
		t.Fatal("the tasks were not all delivered within a minute of the target coming back")
	}
	stop()
	if err := <-poolDone; err != nil {
		t.Fatal(err)
	}
	// Cool-down windows that fit in the time the target was down: each
	// lets one probe out, and one more may straddle its end.
	windows, elapsed := 0, time.Duration(0)
	for c := coolDown; elapsed < down; c = min(2*c, maxCool) {
		elapsed += c
		windows++
	}
	bound := windows + 1 + workers
	target.mu.Lock()
	defer target.mu.Unlock()
	if target.open > bound {
		t.Errorf("%d requests while the circuit was open; want at most %d (%d cool-down windows in %v, +1, + %d workers in flight)", target.open, bound, windows, down, workers)
	}
	recs, err := s.Records().List(ctx, record.Query{Trigger: "down", Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for _, r := range recs {
		if r.ErrorClass == record.ClassCircuitOpen {
			held++
			if r.Status != record.Retrying || r.Attempt != 0 {
				t.Errorf("circuit_open record %+v: want retrying with no attempt", r)
			}
		}
	}
	if held == 0 {
		t.Error("no circuit_open record in the log")
	}
	t.Logf("%d requests (%d while open, bound %d; without a circuit ~%d), %d circuit_open records", target.requests, target.open, bound, int(down/(10*time.Millisecond))*tasks, held)
}

func testReopenKeepsEverything(t *testing.T, open Opener) {
	path := filepath.Join(t.TempDir(), "s.db")
	c := newClock(t0)
	s, err := open(t, path, c), error(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Triggers().Create(ctx, tr("a", "ns")); err != nil {
		t.Fatal(err)
	}
	if err := s.Records().Put(ctx, record.Record{TaskID: "t1", Trigger: "a", Status: record.Success}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, "k", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, c)
	if _, err := s.Triggers().Get(ctx, "a"); err != nil {
		t.Error(err)
	}
	if l, err := s.Triggers().Namespace(ctx, "ns"); err != nil || len(l) != 1 {
		t.Errorf("namespace: %v %v", l, err)
	}
	if recs, err := s.Records().List(ctx, record.Query{Trigger: "a"}); err != nil || len(recs) != 1 {
		t.Errorf("records: %v %v", recs, err)
	}
	if fresh, err := s.Claim(ctx, "k", time.Hour); err != nil || fresh {
		t.Errorf("claim after reopen: %v %v", fresh, err)
	}
}

func testCanceledContext(t *testing.T, open Opener) {
	s := open(t, "", newClock(t0))
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	ts, rs := s.Triggers(), s.Records()
	calls := []struct {
		op string
		fn func() error
	}{
		{"load triggers for ns", func() error { _, err := ts.Namespace(cctx, "ns"); return err }},
		{"get trigger a", func() error { _, err := ts.Get(cctx, "a"); return err }},
		{"list triggers", func() error { _, err := ts.List(cctx); return err }},
		{"create trigger a", func() error { _, err := ts.Create(cctx, tr("a", "ns")); return err }},
		{"update trigger a", func() error { _, err := ts.Update(cctx, tr("a", "ns")); return err }},
		{"delete trigger a", func() error { return ts.Delete(cctx, "a", 0) }},
		{"store record", func() error { return rs.Put(cctx, record.Record{TaskID: "t"}) }},
		{"list records", func() error { _, err := rs.List(cctx, record.Query{}); return err }},
		{"purge records", func() error { _, err := s.Purge(cctx); return err }},
		{"claim duplicate key", func() error { _, err := s.Claim(cctx, "k", time.Minute); return err }},
		{"release duplicate key", func() error { return s.Release(cctx, "k") }},
		{"enqueue", func() error { return s.Enqueue(cctx, []Item{{ID: "x"}}) }},
		{"lease queue items", func() error { _, err := s.Lease(cctx, 1, time.Minute); return err }},
		{"finish x", func() error { return s.Finish(cctx, "x", nil) }},
		{"reschedule x", func() error { return s.Reschedule(cctx, Item{ID: "x", Due: t0}, nil) }},
		{"dead-letter x", func() error { return s.DeadLetter(cctx, "x", errors.New("r")) }},
		{"find task x", func() error { _, err := s.Archived(cctx, "x"); return err }},
		{"requeue x", func() error { return s.Requeue(cctx, "x", nil) }},
		{"read the store", func() error { return s.Ping(cctx) }},
		{"next due", func() error { _, _, err := s.NextDue(cctx); return err }},
		{"queue length", func() error { _, err := s.Len(cctx); return err }},
	}
	for _, c := range calls {
		t.Run(c.op, func(t *testing.T) {
			err := c.fn()
			if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), c.op+": ") {
				t.Errorf("got %v, want %q: context canceled", err, c.op)
			}
		})
	}
	if n := keys(t, s, bTasks) + keys(t, s, bPending) + keys(t, s, bTriggers) + keys(t, s, bRecords) + keys(t, s, bDedupe); n != 0 {
		t.Errorf("a canceled call wrote %d keys", n)
	}
}

func testConcurrentClaimsOfOneKeyOneWins(t *testing.T, open Opener) {
	s := open(t, "", newClock(t0))
	const n = 64
	var wg sync.WaitGroup
	answers := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { answers[i], errs[i] = s.Claim(ctx, "k", time.Hour) })
	}
	wg.Wait()
	won := 0
	for i := range n {
		switch {
		case errs[i] != nil:
			t.Errorf("claim %d: %v", i, errs[i])
		case answers[i]:
			won++
		}
	}
	if won != 1 {
		t.Errorf("%d claims of one key won, want 1", won)
	}
}

func testClaimEnqueue(t *testing.T, open Opener) {
	path := filepath.Join(t.TempDir(), "s.db")
	c := newClock(t0)
	s, err := open(t, path, c), error(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, []Item{{ID: "queued", Payload: []byte("old")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, "dup", time.Hour); err != nil {
		t.Fatal(err)
	}
	fresh, err := s.ClaimEnqueue(ctx, []Claimed{
		{Key: "new", TTL: time.Hour, Items: []Item{{ID: "n1", Payload: []byte("1")}, {ID: "n2", Payload: []byte("2")}}},
		{Key: "dup", TTL: time.Hour, Items: []Item{{ID: "d1", Payload: []byte("x")}}},
		{Key: "new", TTL: time.Hour, Items: []Item{{ID: "again", Payload: []byte("x")}}}, // twice in one call: new once
		{Items: []Item{{ID: "nokey", Payload: []byte("3")}, {ID: "queued", Payload: []byte("new")}}},
		{Key: "empty", TTL: time.Hour},
	})
	if err != nil || fmt.Sprint(fresh) != "[true false false true true]" {
		t.Fatalf("fresh %v, %v", fresh, err)
	}
	// Atomic: an item without an id refuses the whole call.
	if _, err := s.ClaimEnqueue(ctx, []Claimed{{Key: "x", TTL: time.Hour, Items: []Item{{ID: "x1"}}}, {Key: "y", Items: []Item{{ID: ""}}}}); err == nil {
		t.Fatal("an item without an id was accepted")
	}
	// What was answered is on disk.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, c)
	// Due at the same time, tasks come in the order they were queued.
	if got := lease(t, s); got != "queued:old n1:1 n2:2 nokey:3" {
		t.Errorf("queue after reopen: %q", got)
	}
	for key, want := range map[string]bool{"new": false, "dup": false, "empty": false, "x": true} {
		if fresh, err := s.Claim(ctx, key, time.Hour); err != nil || fresh != want {
			t.Errorf("claim %s after reopen = %v, %v; want %v", key, fresh, err, want)
		}
	}
}

func testTaskQueueClaimEnqueue(t *testing.T, open Opener) {
	s := open(t, "", newClock(t0))
	q := s.NewTaskQueue()
	wakes := 0
	q.OnEnqueue = func() { wakes++ }
	task := delivery.Task{ID: "tsk_1", Trigger: delivery.TriggerRef{Name: "t"}}
	fresh, err := q.ClaimEnqueue(ctx, []receiver.Claim{{Key: "k", TTL: time.Hour, Tasks: []delivery.Task{task}}})
	if err != nil || len(fresh) != 1 || !fresh[0] || wakes != 1 {
		t.Fatalf("fresh %v, %v, %d wakes", fresh, err, wakes)
	}
	if fresh, err = q.ClaimEnqueue(ctx, []receiver.Claim{{Key: "k", TTL: time.Hour, Tasks: []delivery.Task{task}}}); err != nil || fresh[0] || wakes != 1 {
		t.Fatalf("duplicate: fresh %v, %v, %d wakes", fresh, err, wakes)
	}
	leased, err := q.Lease(ctx, 10, time.Minute)
	if err != nil || len(leased) != 1 || leased[0].Task.ID != "tsk_1" || leased[0].Err != nil {
		t.Fatalf("leased %+v, %v", leased, err)
	}
	other := open(t, "", newClock(t0))
	if !q.OwnsDedupe(s.Store) || q.OwnsDedupe(other.Store) || q.OwnsDedupe(nil) {
		t.Error("OwnsDedupe must be true for its own store only")
	}
}
