package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/coalesce"
	"github.com/regtrigger/regtrigger/internal/coalesce/coalescetest"
	"github.com/regtrigger/regtrigger/internal/outbound"
	"github.com/regtrigger/regtrigger/internal/record"
)

// burstTasks joins n tasks of testTrigger, tags v1..vn of one digest, to
// their window in w and returns them as the receiver queues them.
func burstTasks(t *testing.T, w coalesce.Store, n int) []Task {
	t.Helper()
	tr := testTrigger()
	var tasks []Task
	var members []coalesce.Member
	for i := range n {
		ev := testEvent()
		ev.Tag = "v" + string(rune('1'+i))
		task := NewTask("task-"+ev.Tag, &tr, ev, createdAt)
		task.Coalescing, task.NotBefore = true, createdAt.Add(10*time.Second)
		tasks = append(tasks, task)
		members = append(members, coalesce.Member{Task: task.ID, Event: task.Event})
	}
	if _, err := (coalesce.Windows{Store: w}).Join(context.Background(), coalesce.Key(tr.Name, testEvent()), 10*time.Second, members, createdAt); err != nil {
		t.Fatal(err)
	}
	return tasks
}

func TestCoalescedDelivery(t *testing.T) {
	ctx := context.Background()
	w := &coalesce.MemStore{}
	tasks := burstTasks(t, w, 3)
	s := &fakeSender{resp: &outbound.Response{Status: 200}}
	sink := &memSink{}
	e := newEngine(s, sink, &bytes.Buffer{})
	e.Windows = w

	first := e.Deliver(ctx, tasks[1]) // the first to come due delivers
	if first.Record.Status != record.Success || first.Record.Events != 3 || len(first.Task.Coalesced) != 3 {
		t.Fatalf("first due: %+v, %d events carried", first.Record, len(first.Task.Coalesced))
	}
	var body struct {
		EventData struct {
			Resources []struct{ Tag string } `json:"resources"`
		} `json:"event_data"`
	}
	if err := json.Unmarshal(s.body, &body); err != nil || len(body.EventData.Resources) != 3 || body.EventData.Resources[2].Tag != "v3" {
		t.Fatalf("body %s: want the 3 tags in arrival order", s.body)
	}
	s.body = nil
	for _, task := range []Task{tasks[0], tasks[2]} {
		out := e.Deliver(ctx, task)
		if out.Retry || out.Record.Status != record.Coalesced || out.Record.CoalescedInto != tasks[1].ID || out.Record.Attempt != 0 {
			t.Errorf("%s: %+v; want coalesced into %s, no attempt", task.ID, out.Record, tasks[1].ID)
		}
	}
	if s.body != nil {
		t.Error("a coalesced task sent a request")
	}

	// Its retry carries the events: no window read, the same body.
	s.resp = &outbound.Response{Status: 503}
	retry := e.Deliver(ctx, first.Task)
	if !retry.Retry || len(retry.Task.Coalesced) != 3 || retry.Record.Events != 3 {
		t.Fatalf("the retry of the delivery: %+v", retry.Record)
	}
	// A redeliver of a coalesced task sends it alone.
	again := tasks[0].Requeued(ptr(testTrigger()))
	if again.Coalescing || !again.NotBefore.IsZero() {
		t.Fatalf("requeued: %+v", again)
	}
	s.resp = &outbound.Response{Status: 200}
	if out := e.Deliver(ctx, again); out.Record.Status != record.Success || out.Record.Events != 0 {
		t.Fatalf("redelivered coalesced task: %+v", out.Record)
	}
}

func ptr[T any](v T) *T { return &v }

func TestCoalescePaths(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		windows coalesce.Store
		task    func(t *testing.T, w coalesce.Store) Task
		status  record.Status
		class   string
		retry   bool
		sent    bool
	}{
		{"early on a queue that cannot delay: held, not an attempt", &coalesce.MemStore{}, func(t *testing.T, w coalesce.Store) Task {
			task := burstTasks(t, w, 1)[0]
			task.NotBefore = fixedNow.Add(5 * time.Second)
			return task
		}, record.Retrying, record.ClassCoalesceWait, true, false},
		{"window store down: retried, not an attempt", coalescetest.Down{}, func(t *testing.T, _ coalesce.Store) Task {
			task := testTask()
			task.Coalescing = true
			return task
		}, record.Retrying, record.ClassStore, true, false},
		{"window gone: delivered alone", &coalesce.MemStore{}, func(t *testing.T, _ coalesce.Store) Task {
			task := testTask()
			task.Coalescing = true
			return task
		}, record.Success, "", false, true},
		{"a window of one: delivered as one event", &coalesce.MemStore{}, func(t *testing.T, w coalesce.Store) Task {
			return burstTasks(t, w, 1)[0]
		}, record.Success, "", false, true},
		{"no window store: delivered alone", nil, func(t *testing.T, _ coalesce.Store) Task {
			task := testTask()
			task.Coalescing = true
			return task
		}, record.Success, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &fakeSender{resp: &outbound.Response{Status: 200}}
			e := newEngine(s, &memSink{}, &bytes.Buffer{})
			e.Windows = tt.windows
			task := tt.task(t, tt.windows)
			out := e.Deliver(ctx, task)
			if out.Record.Status != tt.status || out.Record.ErrorClass != tt.class || out.Retry != tt.retry || (s.body != nil) != tt.sent {
				t.Fatalf("%+v retry %v sent %v; want %s/%s retry %v sent %v", out.Record, out.Retry, s.body != nil, tt.status, tt.class, tt.retry, tt.sent)
			}
			if tt.retry && out.Task.Attempt != task.Attempt {
				t.Errorf("attempt counted: %d", out.Task.Attempt)
			}
			if tt.sent && (out.Task.Coalesced != nil || out.Record.Events != 0) {
				t.Errorf("one event, yet %d coalesced", len(out.Task.Coalesced))
			}
		})
	}
}

// The task contract holds for a coalesced delivery: its events, never
// the trigger.
func TestCoalescedTaskHoldsNoSecret(t *testing.T) {
	w := &coalesce.MemStore{}
	tasks := burstTasks(t, w, 2)
	e := newEngine(&fakeSender{resp: &outbound.Response{Status: 503}}, &memSink{}, &bytes.Buffer{})
	e.Windows = w
	out := e.Deliver(context.Background(), tasks[0])
	b, err := json.Marshal(out.Task)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"supersecret", "topsecret", testSecret} {
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("the retried task holds %q: %s", secret, b)
		}
	}
	var back Task
	if err := json.Unmarshal(b, &back); err != nil || len(back.Coalesced) != 2 || back.Coalesced[1].Tag != "v2" || !back.Coalescing {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
}
