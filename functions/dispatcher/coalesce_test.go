//go:build !scf

package main

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/record"
)

// gathering closes a coalesce window on the task's first attempt, which fails.
type gathering struct{}

func (gathering) Deliver(_ context.Context, t delivery.Task) delivery.Outcome {
	if t.Coalescing && t.Coalesced == nil {
		t.Coalesced = []event.Event{{Tag: "v1"}, {Tag: "v1.2"}}
	}
	t.Attempt++
	return delivery.Outcome{Retry: true, Delay: time.Minute, Task: t, Record: record.Record{Status: record.Retrying}}
}

// The retry of a task that closed its coalesce window is a new message
// carrying the window's events, not its message held: that one does not
// carry them. The next retry, whose message carries them, waits in it.
func TestRetryOfAWindowCarriesItsEvents(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantHeld bool
	}{
		{"first attempt: re-sent with the events", `{"id":"t1","coalescing":true}`, false},
		{"a later attempt: held", `{"id":"t1","coalescing":true,"coalesced":[{"tag":"v1"},{"tag":"v1.2"}]}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rq := &requeued{tasks: map[string]time.Duration{}}
			h := testHandler(nil, rq, &bytes.Buffer{})
			h.engine = gathering{}
			h.maxReceives, h.retention = 10, 96*time.Hour
			held := false
			h.hold = func(context.Context, string, time.Duration) error { held = true; return nil }
			m := msg("m1", tt.body, time.Time{})
			m.ReceiptHandle = "rh-1"
			m.Attributes = map[string]string{"ApproximateReceiveCount": "1", "SentTimestamp": strconv.FormatInt(now.UnixMilli(), 10)}
			if _, err := h.handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{m}}); err != nil {
				t.Fatal(err)
			}
			_, requeued := rq.tasks["t1"]
			if held != tt.wantHeld || requeued == tt.wantHeld {
				t.Errorf("held %v, requeued %v; want held %v", held, requeued, tt.wantHeld)
			}
		})
	}
}
