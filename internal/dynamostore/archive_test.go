package dynamostore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/payload"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

func archivedTask(id string, raw []byte) delivery.Task {
	tr := trigger.Trigger{Name: "deploy", Enabled: true, Actions: []event.Action{event.PushImage}, Namespace: "public",
		URL: "https://example.com/hook", Format: payload.Raw, Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}
	ev := event.Event{Source: "tcr", Action: event.PushImage, Namespace: "public", Repository: "nginx", Tag: "v1",
		OccurredAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Raw: raw}
	t := delivery.NewTask(id, &tr, ev, time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC))
	t.Attempt = 3
	return t
}

func TestArchive(t *testing.T) {
	ctx := context.Background()
	c := newClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := newStore(t, c, 24*time.Hour)
	rs := s.Records()
	want := archivedTask("tsk_a", []byte(`{"type":"pushImage"}`))
	if err := rs.Archive(ctx, want); err != nil {
		t.Fatal(err)
	}
	// A record of the same task, so List has something to (not) mix up.
	if err := rs.Put(ctx, record.Record{TaskID: "tsk_a", Trigger: "deploy", Status: record.Success, Time: c.now()}); err != nil {
		t.Fatal(err)
	}

	got, err := rs.Archived(ctx, "tsk_a")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != want.ID || got.Attempt != 3 || got.Trigger != want.Trigger || string(got.Raw) != string(want.Raw) {
		t.Errorf("archived task %+v", got)
	}

	for _, q := range []record.Query{{}, {TaskID: "tsk_a"}, {Trigger: "deploy"}, {Status: record.Success}} {
		recs, err := rs.List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1 || recs[0].Status != record.Success {
			t.Errorf("List(%+v) = %+v: the archive must stay out of the log", q, recs)
		}
	}

	tests := []struct {
		name string
		id   string
		wait time.Duration
	}{
		{"unknown task", "tsk_nope", 0},
		{"past the retention", "tsk_a", 25 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.add(tt.wait)
			if _, err := rs.Archived(ctx, tt.id); !errors.Is(err, ErrNotArchived) {
				t.Errorf("err = %v, want ErrNotArchived", err)
			}
		})
	}
}

func TestArchiveTooLarge(t *testing.T) {
	s := newStore(t, newClock(time.Now()), 0)
	big := archivedTask("tsk_big", []byte(strings.Repeat("x", 400<<10)))
	if err := s.Records().Archive(context.Background(), big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("err = %v, want ErrTooLarge", err)
	}
}
