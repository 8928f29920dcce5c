//go:build !scf

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/emf"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/sqsqueue"
)

// scripted answers each task by its id.
type scripted map[string]delivery.Outcome

func (s scripted) Deliver(_ context.Context, t delivery.Task) delivery.Outcome {
	out := s[t.ID]
	out.Task = t
	out.Task.Attempt++
	return out
}

type requeued struct {
	mu       sync.Mutex
	tasks    map[string]time.Duration
	archived []string
	err      error
}

func (r *requeued) archive(_ context.Context, t delivery.Task) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.archived = append(r.archived, t.ID)
	return errors.New("archive is down: never fatal")
}

func (r *requeued) requeue(_ context.Context, t delivery.Task, d time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.tasks[t.ID] = d
	return nil
}

var now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func msg(id, body string, notBefore time.Time) events.SQSMessage {
	m := events.SQSMessage{MessageId: id, Body: body, MessageAttributes: map[string]events.SQSMessageAttribute{}}
	if !notBefore.IsZero() {
		s := notBefore.Format(time.RFC3339)
		m.MessageAttributes["not_before"] = events.SQSMessageAttribute{StringValue: &s, DataType: "String"}
	}
	return m
}

func testHandler(eng scripted, rq *requeued, metrics *bytes.Buffer) *handler {
	return &handler{
		engine: eng,
		decode: func(body string) (delivery.Task, error) {
			var t delivery.Task
			if err := json.Unmarshal([]byte(body), &t); err != nil || t.ID == "" {
				return t, errors.New("not a task")
			}
			return t, nil
		},
		notBefore: func(m events.SQSMessage) time.Time {
			if a, ok := m.MessageAttributes["not_before"]; ok && a.StringValue != nil {
				t, _ := time.Parse(time.RFC3339, *a.StringValue)
				return t
			}
			return time.Time{}
		},
		requeue: rq.requeue, archive: rq.archive, concurrency: 3, logger: slog.New(slog.DiscardHandler), metrics: emf.New(metrics),
		now: func() time.Time { return now },
	}
}

func TestHandleBatch(t *testing.T) {
	eng := scripted{
		"ok":    {Record: record.Record{Status: record.Success}},
		"retry": {Retry: true, Delay: 2 * time.Minute, Record: record.Record{Status: record.Retrying}},
		"final": {Record: record.Record{Status: record.Failed}},
	}
	rq := &requeued{tasks: map[string]time.Duration{}}
	var metrics bytes.Buffer
	h := testHandler(eng, rq, &metrics)
	ev := events.SQSEvent{Records: []events.SQSMessage{
		msg("m1", `{"id":"ok"}`, time.Time{}),
		msg("m2", `{"id":"retry"}`, time.Time{}),
		msg("m3", `{"id":"final"}`, time.Time{}),
		msg("m4", `garbage`, time.Time{}),
		msg("m5", `{"id":"early"}`, now.Add(time.Hour)),
	}}
	resp, err := h.handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "m4" {
		t.Errorf("failures %+v: only the undecodable message should be reported", resp.BatchItemFailures)
	}
	if rq.tasks["retry"] != 2*time.Minute || rq.tasks["early"] != time.Hour || len(rq.tasks) != 2 {
		t.Errorf("requeued %v", rq.tasks)
	}
	sort.Strings(rq.archived)
	if strings.Join(rq.archived, ",") != "final,ok" {
		t.Errorf("archived %v: only finished tasks are kept", rq.archived)
	}
	if strings.Count(metrics.String(), `"Deliveries":1`) != 3 || !strings.Contains(metrics.String(), `"Undecodable":1`) {
		t.Errorf("metrics:\n%s", metrics.String())
	}
}

func TestRequeueFailureReportsTheMessage(t *testing.T) {
	eng := scripted{"retry": {Retry: true, Delay: time.Minute}}
	rq := &requeued{tasks: map[string]time.Duration{}, err: errors.New("queue down")}
	var metrics bytes.Buffer
	resp, _ := testHandler(eng, rq, &metrics).handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{msg("m1", `{"id":"retry"}`, time.Time{})}})
	if len(resp.BatchItemFailures) != 1 {
		t.Errorf("a retry that cannot be requeued must leave the message to SQS: %+v", resp)
	}
}

// recordSink keeps records.
type recordSink struct {
	mu   sync.Mutex
	recs []record.Record
}

func (s *recordSink) Put(_ context.Context, r record.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, r)
	return nil
}

// TestUndecodableIsRecordedOnce: an undecodable message is left to the
// redrive policy (the dead-letter queue) without holding up the batch, and
// gets one failed record, at its first receive, whatever its body holds.
func TestUndecodableIsRecordedOnce(t *testing.T) {
	rq := &requeued{tasks: map[string]time.Duration{}}
	var metrics bytes.Buffer
	h := testHandler(scripted{"ok": {Record: record.Record{Status: record.Success}}}, rq, &metrics)
	sink := &recordSink{}
	h.records = sink
	received := func(id, body, count string) events.SQSMessage {
		m := msg(id, body, time.Time{})
		m.Attributes = map[string]string{"ApproximateReceiveCount": count}
		return m
	}
	for _, count := range []string{"1", "2", "3"} {
		resp, err := h.handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
			received("m1", `not json Bearer sekrit-token`, count),
			received("m2", `{"id":"ok"}`, count),
		}})
		if err != nil || len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "m1" {
			t.Fatalf("receive %s: %+v, %v", count, resp, err)
		}
	}
	if len(sink.recs) != 1 {
		t.Fatalf("%d records for one undecodable message received three times, want 1", len(sink.recs))
	}
	r := sink.recs[0]
	if r.TaskID != "m1" || r.Status != record.Failed || r.ErrorClass != record.ClassUndecodable || !strings.Contains(r.Error, "dead-letter queue") || r.Time != now {
		t.Errorf("record %+v", r)
	}
	if strings.Contains(r.Error, "sekrit") {
		t.Errorf("the record quotes the body: %q", r.Error)
	}
}

// attemptsSeen is an engine answering every task with one outcome and
// keeping the attempt count each task arrived with.
type attemptsSeen struct {
	mu  sync.Mutex
	out delivery.Outcome
	got map[string]int
	// uncounted: the outcome counts no attempt (the trigger could not be read).
	uncounted bool
}

func (e *attemptsSeen) Deliver(_ context.Context, t delivery.Task) delivery.Outcome {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got[t.ID] = t.Attempt
	out := e.out
	out.Task = t
	if !e.uncounted {
		out.Task.Attempt++
	}
	return out
}

// TestRetryWaitsInItsMessage: a retry holds its message (visibility = the
// delay) and reports it as a batch item failure, so nothing is re-sent;
// the attempt count comes from the receives. Waits the message cannot
// cover — over 12 h, past the retention, too many receives, a failed hold —
// are new messages; an early not_before message is held, never re-sent.
func TestRetryWaitsInItsMessage(t *testing.T) {
	type held struct {
		receipt string
		d       time.Duration
	}
	tests := []struct {
		name        string
		delay       time.Duration // the engine's retry delay; 0 = success
		bodyAttempt int
		receives    string
		sent        time.Time
		notBefore   time.Time
		holdErr     error
		legacy      bool          // a message of contract v1, which embedded the trigger
		uncounted   bool          // the engine made no attempt (the trigger store was down)
		wantAttempt int           // the attempt count the engine saw (-1: not delivered)
		wantHold    time.Duration // 0: not held
		wantRequeue time.Duration // -1: not requeued
		wantFailure bool          // reported as a batch item failure
	}{
		{name: "first retry is held", delay: 2 * time.Minute, receives: "1", sent: now,
			wantAttempt: 0, wantHold: 2 * time.Minute, wantRequeue: -1, wantFailure: true},
		{name: "attempts from the receive count", delay: time.Hour, bodyAttempt: 1, receives: "4", sent: now.Add(-3 * time.Hour),
			wantAttempt: 4, wantHold: time.Hour, wantRequeue: -1, wantFailure: true},
		{name: "success is deleted", receives: "3", sent: now,
			wantAttempt: 2, wantRequeue: -1},
		{name: "over 12 h is a new message", delay: 15 * time.Hour, receives: "7", sent: now.Add(-9 * time.Hour),
			wantAttempt: 6, wantRequeue: 15 * time.Hour},
		{name: "past the retention is a new message", delay: 2 * time.Hour, receives: "2", sent: now.Add(-95 * time.Hour),
			wantAttempt: 1, wantRequeue: 2 * time.Hour},
		{name: "too close to maxReceiveCount is a new message", delay: time.Minute, receives: "9", sent: now,
			wantAttempt: 8, wantRequeue: time.Minute},
		{name: "no SentTimestamp is a new message", delay: time.Minute, receives: "1",
			wantAttempt: 0, wantRequeue: time.Minute},
		{name: "a failed hold is a new message", delay: time.Minute, receives: "1", sent: now, holdErr: errors.New("receipt handle expired"),
			wantAttempt: 0, wantHold: time.Minute, wantRequeue: time.Minute},
		{name: "early long retry is held, no attempt", bodyAttempt: 6, receives: "1", sent: now.Add(-15 * time.Minute), notBefore: now.Add(3 * time.Hour),
			wantAttempt: -1, wantHold: 3 * time.Hour, wantRequeue: -1, wantFailure: true},
		{name: "early by more than 12 h is held 12 h", bodyAttempt: 6, receives: "1", sent: now, notBefore: now.Add(20 * time.Hour),
			wantAttempt: -1, wantHold: 12 * time.Hour, wantRequeue: -1, wantFailure: true},
		{name: "a legacy message's retry is a new message: it never stays on the queue", delay: 2 * time.Minute, receives: "1", sent: now, legacy: true,
			wantAttempt: 0, wantRequeue: 2 * time.Minute},
		{name: "an early legacy message is re-sent, not held", bodyAttempt: 6, receives: "1", sent: now, notBefore: now.Add(3 * time.Hour), legacy: true,
			wantAttempt: -1, wantRequeue: 3 * time.Hour},
		{name: "a retry without an attempt is a new message, so the next receive counts none", delay: 30 * time.Second, bodyAttempt: 2, receives: "1", sent: now, uncounted: true,
			wantAttempt: 2, wantRequeue: 30 * time.Second},
		{name: "due long retry counts the body's attempts only", delay: time.Minute, bodyAttempt: 6, receives: "3", sent: now.Add(-15 * time.Hour), notBefore: now.Add(-time.Second),
			wantAttempt: 6, wantRequeue: time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eng := &attemptsSeen{got: map[string]int{}, uncounted: tt.uncounted}
			if tt.delay > 0 {
				eng.out = delivery.Outcome{Retry: true, Delay: tt.delay, Record: record.Record{Status: record.Retrying}}
			} else {
				eng.out = delivery.Outcome{Record: record.Record{Status: record.Success}}
			}
			rq := &requeued{tasks: map[string]time.Duration{}}
			var metrics bytes.Buffer
			h := testHandler(nil, rq, &metrics)
			h.engine = eng
			var holds []held
			h.hold = func(_ context.Context, receipt string, d time.Duration) error {
				holds = append(holds, held{receipt, d})
				return tt.holdErr
			}
			h.retention, h.maxReceives = 96*time.Hour, 10
			body := fmt.Sprintf(`{"id":"task","attempt":%d}`, tt.bodyAttempt)
			if tt.legacy {
				body = fmt.Sprintf(`{"v":1,"task":{"id":"task","trigger":{"name":"t","url":"https://x.example.com/?token=secret"},"attempt":%d}}`, tt.bodyAttempt)
				h.decode = sqsqueue.Decode
			}
			m := msg("m1", body, tt.notBefore)
			m.ReceiptHandle = "rh-1"
			m.Attributes = map[string]string{"ApproximateReceiveCount": tt.receives}
			if !tt.sent.IsZero() {
				m.Attributes["SentTimestamp"] = fmt.Sprint(tt.sent.UnixMilli())
			}
			resp, err := h.handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{m}})
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := eng.got["task"]; tt.wantAttempt < 0 && ok || tt.wantAttempt >= 0 && (!ok || got != tt.wantAttempt) {
				t.Errorf("engine saw attempt %d (delivered %v), want %d", got, ok, tt.wantAttempt)
			}
			if tt.wantHold == 0 && len(holds) != 0 || tt.wantHold != 0 && (len(holds) != 1 || holds[0] != held{"rh-1", tt.wantHold}) {
				t.Errorf("holds %+v, want %v", holds, tt.wantHold)
			}
			d, requeued := rq.tasks["task"]
			if tt.wantRequeue < 0 && requeued || tt.wantRequeue >= 0 && (!requeued || d != tt.wantRequeue) {
				t.Errorf("requeued %v (%v), want %v", d, requeued, tt.wantRequeue)
			}
			if failed := len(resp.BatchItemFailures) == 1; failed != tt.wantFailure {
				t.Errorf("batch item failures %+v, want failure %v", resp.BatchItemFailures, tt.wantFailure)
			}
		})
	}
}

// A task the circuit holds back made no attempt: it goes back as a new
// message (its receive was not an attempt) and is counted as CircuitOpen;
// an auto-disabled trigger is counted too.
func TestCircuitOpenIsRequeuedAndCounted(t *testing.T) {
	eng := scripted{
		"held":     {Retry: true, Delay: time.Minute, Record: record.Record{Status: record.Retrying, ErrorClass: record.ClassCircuitOpen}},
		"disabled": {Record: record.Record{Status: record.Failed, ErrorClass: record.ClassAutoDisabled}},
	}
	rq := &requeued{tasks: map[string]time.Duration{}}
	var metrics bytes.Buffer
	held := false
	h := testHandler(eng, rq, &metrics)
	h.hold = func(context.Context, string, time.Duration) error { held = true; return nil }
	resp, _ := h.handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{msg("m1", `{"id":"held"}`, time.Time{}), msg("m2", `{"id":"disabled"}`, time.Time{})}})
	if len(resp.BatchItemFailures) != 0 || held || rq.tasks["held"] != time.Minute {
		t.Errorf("failures %+v, held %v, requeued %v: want a new message due in 1m", resp.BatchItemFailures, held, rq.tasks)
	}
	if !strings.Contains(metrics.String(), `"CircuitOpen":1`) || !strings.Contains(metrics.String(), `"TriggersAutoDisabled":1`) {
		t.Errorf("metrics:\n%s", metrics.String())
	}
}
