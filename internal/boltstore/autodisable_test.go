package boltstore

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/outbound"
	"github.com/regtrigger/regtrigger/internal/payload"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// scripted answers each request with the status its function gives for
// the time since the test started.
type scripted struct {
	clock *clock
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
func TestAutoDisableAfter(t *testing.T) {
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
