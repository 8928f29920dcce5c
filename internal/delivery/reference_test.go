package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/outbound"
	"github.com/regtrigger/regtrigger/internal/payload"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// storeFunc is a Triggers answering with a function.
type storeFunc func(ctx context.Context, name string) (trigger.Trigger, error)

func (f storeFunc) Get(ctx context.Context, name string) (trigger.Trigger, error) {
	return f(ctx, name)
}

// TestTriggerResolvedWhenSent: the engine sends to the trigger as the
// store holds it when the attempt runs, and sends nothing for a trigger
// that is gone, moved, disabled or whose queued work was cancelled.
func TestTriggerResolvedWhenSent(t *testing.T) {
	edited := testTrigger()
	edited.URL = "https://new.example.com/hook"
	edited.Headers = map[string]string{"Authorization": "Bearer rotated"}
	edited.Format = payload.CloudEvents
	edited.Version = 4
	disabled := testTrigger()
	disabled.Enabled, disabled.Version = false, 2
	moved := testTrigger()
	moved.Namespace, moved.Version = "private", 3
	cancelled := testTrigger()
	cancelled.CancelThrough, cancelled.Version = 1, 2 // the task matched revision 1
	cancelledEarlier := testTrigger()
	cancelledEarlier.CancelThrough, cancelledEarlier.Version = 0, 3 // a cancel before the trigger's first revision cancels nothing
	storeDown := errors.New("dial tcp 127.0.0.1:1: connection refused")

	tests := []struct {
		name     string
		triggers Triggers
		task     func(Task) Task
		status   record.Status
		class    string
		errText  string
		retry    bool
		delay    time.Duration
		attempt  int   // the task's attempt count after
		version  int64 // the record's trigger version
		sentTo   string
	}{
		{name: "unchanged", triggers: FixedTriggers(testTrigger()), status: record.Success, attempt: 1, version: 1, sentTo: "https://hooks.example.com/deploy?token=supersecret"},
		{name: "edited: the current URL, headers, format and secret", triggers: FixedTriggers(edited), status: record.Success, attempt: 1, version: 4, sentTo: "https://new.example.com/hook"},
		{name: "deleted", triggers: FixedTriggers(), status: record.Cancelled, class: record.ClassTriggerDeleted, errText: "trigger deleted"},
		{name: "never existed", triggers: FixedTriggers(), task: func(t Task) Task { t.Trigger.Version = 0; return t },
			status: record.Cancelled, class: record.ClassTriggerDeleted, errText: `no trigger named "deploy" exists`},
		{name: "now of another namespace", triggers: FixedTriggers(moved), status: record.Cancelled, class: record.ClassTriggerDeleted, errText: `now belongs to namespace "private"`},
		{name: "disabled", triggers: FixedTriggers(disabled), status: record.Skipped, class: record.ClassTriggerDisabled, errText: "trigger disabled", version: 2},
		{name: "queued work cancelled", triggers: FixedTriggers(cancelled), status: record.Cancelled, class: record.ClassCancelled, errText: "cancelled (revisions up to 1", version: 2},
		{name: "redelivered after the cancel", triggers: FixedTriggers(cancelled), task: func(t Task) Task { t.Attempt = 5; return t.Requeued(&cancelled) },
			status: record.Success, attempt: 1, version: 2, sentTo: "https://hooks.example.com/deploy?token=supersecret"},
		{name: "matched a revision after the cancel", triggers: FixedTriggers(cancelled), task: func(t Task) Task { t.Trigger.Version = 2; return t },
			status: record.Success, attempt: 1, version: 2, sentTo: "https://hooks.example.com/deploy?token=supersecret"},
		{name: "no cancel", triggers: FixedTriggers(cancelledEarlier), status: record.Success, attempt: 1, version: 3, sentTo: "https://hooks.example.com/deploy?token=supersecret"},
		{name: "a task of revision 0 with no cancel (a one-off send)", triggers: FixedTriggers(cancelledEarlier), task: func(t Task) Task { t.Trigger.Version = 0; return t },
			status: record.Success, attempt: 1, version: 3, sentTo: "https://hooks.example.com/deploy?token=supersecret"},
		{name: "store down: retried, attempt not counted", triggers: storeFunc(func(context.Context, string) (trigger.Trigger, error) { return trigger.Trigger{}, storeDown }),
			task: func(t Task) Task { t.Attempt = 2; return t }, status: record.Retrying, class: record.ClassStore, errText: "connection refused", retry: true, delay: 2 * time.Minute, attempt: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &fakeSender{resp: &outbound.Response{Status: 200}}
			sink := &memSink{}
			var logs bytes.Buffer
			e := newEngine(s, sink, &logs)
			e.Triggers = tt.triggers
			task := testTask()
			if tt.task != nil {
				task = tt.task(task)
			}
			out := e.Deliver(context.Background(), task)
			r := out.Record
			if r.Status != tt.status || r.ErrorClass != tt.class || out.Retry != tt.retry || out.Delay != tt.delay {
				t.Fatalf("status %s class %q retry %v delay %v (%s); want %s %q %v %v", r.Status, r.ErrorClass, out.Retry, out.Delay, r.Error, tt.status, tt.class, tt.retry, tt.delay)
			}
			if !strings.Contains(r.Error, tt.errText) {
				t.Errorf("error %q, want it to say %q", r.Error, tt.errText)
			}
			if out.Task.Attempt != tt.attempt || r.TriggerVersion != tt.version {
				t.Errorf("task attempt %d, record version %d; want %d, %d", out.Task.Attempt, r.TriggerVersion, tt.attempt, tt.version)
			}
			if s.url != tt.sentTo {
				t.Errorf("sent to %q, want %q", s.url, tt.sentTo)
			}
			if len(sink.recs) != 1 || r.Trigger != "deploy" || r.TaskID != "task-1" || r.Time.IsZero() {
				t.Errorf("records %+v", sink.recs)
			}
			if tt.retry && !r.NextAttemptAt.Equal(fixedNow.Add(tt.delay)) {
				t.Errorf("next attempt %v", r.NextAttemptAt)
			}
			if tt.sentTo == edited.URL {
				if s.header.Get("Authorization") != "Bearer rotated" || s.header.Get("Content-Type") != payload.ContentTypeCloudEvents {
					t.Errorf("edited trigger's headers and format not used: %v", s.header)
				}
			}
			assertNoSecrets(t, logs.String())
		})
	}
}

func TestStoppedWhileReadingTrigger(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var logs bytes.Buffer
	e := newEngine(&fakeSender{}, nil, &logs)
	e.Triggers = storeFunc(func(ctx context.Context, _ string) (trigger.Trigger, error) {
		cancel()
		return trigger.Trigger{}, ctx.Err()
	})
	task := testTask()
	task.Attempt = 3
	out := e.Deliver(ctx, task)
	if !out.Retry || out.Delay != 0 || out.Record.ErrorClass != record.ClassCanceled || out.Task.Attempt != 3 {
		t.Errorf("got retry=%v delay=%v class=%q attempt=%d", out.Retry, out.Delay, out.Record.ErrorClass, out.Task.Attempt)
	}
}

// TestTaskHoldsNoSecret: a task, as every queue encodes it, holds neither
// the URL nor a header value nor a secret of its trigger.
func TestTaskHoldsNoSecret(t *testing.T) {
	b, err := json.Marshal(testTask())
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{"hooks.example.com", "supersecret", "topsecret", testSecret, "Authorization"} {
		if bytes.Contains(b, []byte(leak)) {
			t.Errorf("task JSON holds %q: %s", leak, b)
		}
	}
	var back Task
	if err := json.Unmarshal(b, &back); err != nil || back.Trigger != (TriggerRef{Namespace: "public", Name: "deploy", Version: 1}) {
		t.Errorf("round trip: %+v, %v", back.Trigger, err)
	}
}

// TestLegacyTaskDecodes: a task queued before the reference contract, with
// the whole trigger embedded, decodes into its reference; encoding it again
// writes none of what it embedded.
func TestLegacyTaskDecodes(t *testing.T) {
	legacy := `{"id":"task-1","trigger":{"name":"deploy","description":"d","enabled":true,"actions":["pushImage"],` +
		`"namespace":"public","url":"https://hooks.example.com/deploy?token=supersecret",` +
		`"headers":{"Authorization":"Bearer topsecret"},"format":"tcr","secrets":["` + testSecret + `"],"version":7,` +
		`"updated_at":"2026-01-01T00:00:00Z"},"event":{"source":"tcr","action":"pushImage","namespace":"public",` +
		`"repository":"nginx","tag":"v1","digest":"sha256:abc","resource_url":"r","occurred_at":"2026-01-02T03:04:05Z","operator":"me"},` +
		`"attempt":2,"created_at":"2026-01-02T03:04:06Z"}`
	var task Task
	if err := json.Unmarshal([]byte(legacy), &task); err != nil {
		t.Fatal(err)
	}
	if task.Trigger != (TriggerRef{Namespace: "public", Name: "deploy", Version: 7}) || task.Attempt != 2 || task.CreatedAt != createdAt {
		t.Errorf("decoded %+v", task)
	}
	b, _ := json.Marshal(task)
	assertNoSecrets(t, string(b))
	if bytes.Contains(b, []byte("hooks.example.com")) {
		t.Errorf("re-encoded task keeps the URL: %s", b)
	}
	// It is delivered once, to the trigger as it is now.
	s := &fakeSender{resp: &outbound.Response{Status: 200}}
	var logs bytes.Buffer
	out := newEngine(s, nil, &logs).Deliver(context.Background(), task)
	if out.Record.Status != record.Success || out.Task.Attempt != 3 || s.header.Get("Authorization") != "Bearer topsecret" {
		t.Errorf("legacy delivery %+v", out.Record)
	}
}

func TestTriggerCache(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var reads atomic.Int32
	var fail atomic.Bool
	tr := testTrigger()
	store := storeFunc(func(_ context.Context, name string) (trigger.Trigger, error) {
		reads.Add(1)
		switch {
		case fail.Load():
			return trigger.Trigger{}, errors.New("store down")
		case name == tr.Name:
			return tr, nil
		}
		return trigger.Trigger{}, trigger.ErrNotFound
	})
	c := &TriggerCache{Triggers: store, TTL: 10 * time.Second, Now: func() time.Time { return now }}
	ctx := context.Background()
	get := func(name string) error { _, err := c.Get(ctx, name); return err }

	for range 3 {
		if err := get("deploy"); err != nil {
			t.Fatal(err)
		}
		if err := get("gone"); !errors.Is(err, trigger.ErrNotFound) {
			t.Fatalf("gone: %v", err)
		}
	}
	if n := reads.Load(); n != 2 {
		t.Errorf("%d reads for a burst of two names, want 2", n)
	}
	now = now.Add(10 * time.Second)
	fail.Store(true)
	if err := get("deploy"); err == nil || errors.Is(err, trigger.ErrNotFound) {
		t.Errorf("expired entry and a failing store: %v", err)
	}
	if err := get("deploy"); err == nil {
		t.Error("a failed read was cached")
	}
	fail.Store(false)
	if err := get("deploy"); err != nil || reads.Load() != 5 {
		t.Errorf("after the store is back: %v, %d reads", err, reads.Load())
	}
	c.Forget()
	if err := get("deploy"); err != nil || reads.Load() != 6 {
		t.Errorf("after Forget: %v, %d reads", err, reads.Load())
	}
	if err := get("gone"); !errors.Is(err, trigger.ErrNotFound) || reads.Load() != 7 {
		t.Errorf("gone after Forget: %v, %d reads", err, reads.Load())
	}
	// Drop forgets one name: the next Get of it reads, the others do not.
	c.Drop("deploy")
	if err := get("deploy"); err != nil || reads.Load() != 8 {
		t.Errorf("after Drop: %v, %d reads", err, reads.Load())
	}
	if err := get("gone"); !errors.Is(err, trigger.ErrNotFound) || reads.Load() != 8 {
		t.Errorf("Drop forgot another name: %v, %d reads", err, reads.Load())
	}
}
