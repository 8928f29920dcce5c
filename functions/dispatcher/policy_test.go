//go:build !scf

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/config"
	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// TestAutoDisableOnDynamoDB: the dispatcher function on DynamoDB and SQS
// delivers one task of a trigger per step of a clock the test moves
// (MAX_ATTEMPTS=1: each failed task is done at once, so no retry waits on
// the queue) to a loopback target, and disables the trigger when all its
// deliveries have failed for its auto-disable-after: at that step, not
// before; a full period after the first failure that follows a success;
// at a task the open circuit holds back; never with 0. The disabled
// trigger is in the triggers table with its reason, the disabling task's
// record says why, the function logs it and emits its metric, `regtrigger
// triggers get` and `logs` show it, and a later task is skipped unsent.
func TestAutoDisableOnDynamoDB(t *testing.T) {
	period := func(d time.Duration) *trigger.Duration { v := trigger.Duration(d); return &v }
	always := func(status int) func(time.Duration) int { return func(time.Duration) int { return status } }
	const never = -1
	tests := []struct {
		name   string
		after  *trigger.Duration // nil: the default (5 days)
		step   time.Duration
		steps  int                     // tasks delivered, at most
		status func(time.Duration) int // the target's answer at this time since the start
		since  time.Duration           // the first failure the clock counts from
		last   string                  // the last failure, as the reason quotes it ("": HTTP <status>)
		want   time.Duration           // disabled at this time since the start (never: not in the steps)
	}{
		{name: "down all along", after: period(2 * time.Second), step: 500 * time.Millisecond, steps: 8, status: always(http.StatusServiceUnavailable),
			want: 2 * time.Second},
		{name: "final 4xx count too", after: period(2 * time.Second), step: 500 * time.Millisecond, steps: 8, status: always(http.StatusNotFound),
			want: 2 * time.Second},
		// Failures at 0–1 s, a success at 1.5 s, failures from 2 s: not
		// disabled at 2 s, but 2 s after the first failure after the success.
		{name: "one success inside the period", after: period(2 * time.Second), step: 500 * time.Millisecond, steps: 12, status: func(at time.Duration) int {
			if at == 1500*time.Millisecond {
				return http.StatusOK
			}
			return http.StatusServiceUnavailable
		}, since: 2 * time.Second, want: 4 * time.Second},
		// Five 503s (0–2 s) open the target's circuit for a minute: the
		// tasks at 2.5 s and 3 s are held back, unsent, and the one at 3 s
		// disables the trigger.
		{name: "at a task the open circuit holds", after: period(3 * time.Second), step: 500 * time.Millisecond, steps: 10, status: always(http.StatusServiceUnavailable),
			last: "circuit open: 127.0.0.1", want: 3 * time.Second},
		{name: "0 is never, even past the default", after: period(0), step: 12 * time.Hour, steps: 13, status: always(http.StatusServiceUnavailable),
			want: never},
		{name: "the default is 5 days", step: 24 * time.Hour, steps: 8, status: always(http.StatusServiceUnavailable),
			want: 5 * 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newCloudRig(t)
			ctx := context.Background()
			clk := &testClock{}
			var start time.Time
			wh := r.newWebhook(t, func([]hit, bool) int { return tt.status(clk.Now().Sub(start)) })
			tr := r.addTrigger(t, "flaky", wh.URL+"/hook", func(tr *trigger.Trigger) { tr.AutoDisableAfter = tt.after })
			start = time.Now().UTC().Truncate(time.Millisecond) // after the trigger's updated_at
			clk.set(start)
			c := r.start(t, map[string]string{config.EnvMaxAttempts: "1"})
			c.h.now, c.engine.Now = clk.Now, clk.Now

			disabledAt := time.Duration(never)
			var disabling record.Record
			sent := 0 // tasks that made their attempt
			for i := 0; i < tt.steps && disabledAt == never; i++ {
				at := time.Duration(i) * tt.step
				clk.set(start.Add(at))
				id := fmt.Sprintf("tsk_autodisable_%02d", i)
				r.enqueue(t, tr, id)
				if n := r.poll(t, c); n != 1 {
					t.Fatalf("step %v: %d messages received, want the new task's", at, n)
				}
				recs := r.records(t, record.Query{TaskID: id})
				if len(recs) != 1 {
					t.Fatalf("step %v: records %+v, want one", at, recs)
				}
				rec := recs[0]
				if rec.Attempt > 0 {
					sent++
				}
				switch {
				case rec.ErrorClass == record.ClassAutoDisabled:
					disabledAt, disabling = at, rec
				case rec.ErrorClass == record.ClassCircuitOpen && rec.Status == record.Retrying && rec.Attempt == 0:
				case rec.Status == record.Success || rec.Status == record.Failed:
				default:
					t.Fatalf("step %v: task ended %s (%s): %s", at, rec.Status, rec.ErrorClass, rec.Error)
				}
			}
			if disabledAt != tt.want {
				t.Fatalf("disabled at %v, want %v (-1ns: never)", disabledAt, tt.want)
			}
			if got := len(wh.requests()); got != sent {
				t.Errorf("the target got %d requests for %d attempts", got, sent)
			}
			stored, err := r.Store.Triggers().Get(ctx, "flaky")
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == never {
				if !stored.Enabled || stored.DisabledReason != "" || !stored.DisabledAt.IsZero() {
					t.Errorf("stored trigger: enabled %v, reason %q, at %v", stored.Enabled, stored.DisabledReason, stored.DisabledAt)
				}
				if n := c.metrics.count(`"TriggersAutoDisabled"`); n != 0 {
					t.Errorf("%d TriggersAutoDisabled metrics", n)
				}
				return
			}

			// The triggers table holds it disabled, with why and when.
			after := tr.DisableAfter()
			last := tt.last
			if last == "" {
				last = fmt.Sprintf("HTTP %d", tt.status(tt.want))
			}
			prefix := fmt.Sprintf("auto-disabled: every delivery failed since %s (%v, auto-disable-after %v); the last: %s",
				start.Add(tt.since).Format(time.RFC3339), tt.want-tt.since, after, last)
			if stored.Enabled || !strings.HasPrefix(stored.DisabledReason, prefix) || !stored.DisabledAt.Equal(start.Add(tt.want)) {
				t.Fatalf("stored trigger: enabled %v, reason %q, at %v; want disabled at %v with a reason starting %q",
					stored.Enabled, stored.DisabledReason, stored.DisabledAt, start.Add(tt.want), prefix)
			}
			why := stored.DisabledReason
			// The disabling task's record says why; the function logs it
			// and emits one metric.
			if disabling.Status != record.Failed || disabling.Error != "trigger "+why || !disabling.NextAttemptAt.IsZero() {
				t.Errorf("the disabling record: %+v", disabling)
			}
			if n := c.logs.count(`"msg":"trigger auto-disabled"`); n != 1 || !strings.Contains(c.logs.String(), `"reason":"`+why+`"`) {
				t.Errorf("%d trigger auto-disabled log lines, want one with the reason", n)
			}
			if n := c.metrics.count(`"TriggersAutoDisabled":1`); n != 1 {
				t.Errorf("%d TriggersAutoDisabled metrics, want 1", n)
			}

			// A later task of the trigger is skipped, saying why, unsent.
			before := len(wh.requests())
			r.enqueue(t, tr, "tsk_autodisable_later")
			if n := r.poll(t, c); n != 1 {
				t.Fatalf("%d messages received, want the later task's", n)
			}
			if recs := r.records(t, record.Query{TaskID: "tsk_autodisable_later"}); len(recs) != 1 || recs[0].Status != record.Skipped ||
				recs[0].ErrorClass != record.ClassTriggerDisabled || !strings.Contains(recs[0].Error, why) {
				t.Errorf("the later task's records %+v, want one skipped with the reason", recs)
			}
			if got := len(wh.requests()); got != before {
				t.Errorf("the disabled trigger's later task was sent")
			}

			// What the CLI shows, from the tables.
			var got trigger.Trigger
			if err := json.Unmarshal([]byte(r.cli(t, "triggers", "get", "flaky", "-o", "json")), &got); err != nil {
				t.Fatal(err)
			}
			if got.Enabled || got.DisabledReason != why || !got.DisabledAt.Equal(stored.DisabledAt) {
				t.Errorf("triggers get -o json: enabled %v, disabled_reason %q, disabled_at %v", got.Enabled, got.DisabledReason, got.DisabledAt)
			}
			if table := r.cli(t, "triggers", "get", "flaky"); !strings.Contains(table, "disabled:") || !strings.Contains(table, why) {
				t.Errorf("triggers get does not say why it is disabled:\n%s", table)
			}
			if logs := r.cli(t, "logs", "--trigger", "flaky", "--status", "failed"); !strings.Contains(logs, "auto_disabled") {
				t.Errorf("logs --status failed lacks the auto_disabled record:\n%s", logs)
			}
		})
	}
}

// TestOpenCircuitOnSQS: two dispatcher containers share a target's circuit
// through DynamoDB while its tasks wait on a fauxqs queue. The target is a
// loopback server (allowed through ALLOW_PRIVATE_CIDRS) shared by two
// triggers — one scheme, host and port, one circuit — that answers 503
// until a request reaches it while its circuit is open, and 200 after
// that one. The circuit is scaled down (threshold 3, cool-down 2 s doubling
// to 4 s), and so is the retry backoff (1 s); each container delivers one
// task at a time, and the test polls for them in turn.
//
//   - Container A makes the first attempts of three tasks of trigger
//     deploy-a: each is held in its message for the retry, and the third
//     failure opens the circuit.
//   - Container B, which has seen no failure, receives three tasks of
//     deploy-b and sends none: each is held back (a circuit_open record
//     counting no attempt, a CircuitOpen metric) and re-sent to the queue,
//     due after the cool-down.
//   - Polling on, the tasks come back; after each cool-down one of them is
//     the circuit's probe. The first probe fails (the circuit opens again,
//     for 4 s); the second succeeds and closes it; then every task is
//     delivered, each exactly once: one 2xx per webhook-id and no request
//     after it, and the queue ends empty.
//
// The requests made while the circuit is open are the probes: at most one
// per cool-down window that ended while it was open, plus one. Without the
// circuit the six tasks would be retried every second.
func TestOpenCircuitOnSQS(t *testing.T) {
	const (
		threshold   = 3
		coolDown    = 2 * time.Second
		maxCoolDown = 4 * time.Second
	)
	r := newCloudRig(t)
	ctx := context.Background()
	wh := r.newWebhook(t, func(hits []hit, open bool) int {
		for _, h := range hits {
			if h.open {
				return http.StatusOK // back up after a request while open: the first probe
			}
		}
		return http.StatusServiceUnavailable
	})
	ta := r.addTrigger(t, "deploy-a", wh.URL+"/a", nil)
	tb := r.addTrigger(t, "deploy-b", wh.URL+"/b", nil)
	start := func() *container {
		c := r.start(t, map[string]string{config.EnvConcurrency: "1"})
		c.engine.Circuit = delivery.Circuit{Threshold: threshold, CoolDown: coolDown, MaxCoolDown: maxCoolDown}
		c.engine.Policy.Backoff = []time.Duration{time.Second}
		return c
	}
	a, b := start(), start()
	health := r.Store.Health()
	key := delivery.TargetKey(wh.URL)
	circuit := func() delivery.TargetState {
		st, err := health.Read(ctx, key, "")
		if err != nil {
			t.Fatal(err)
		}
		return st.Target
	}
	pollUntil := func(c *container, what string, done func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !done(); {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 30 s; the target got %+v", what, wh.requests())
			}
			r.poll(t, c)
		}
	}

	// A's three failures open the circuit.
	r.enqueue(t, ta, "tsk_circuit_a1", "tsk_circuit_a2", "tsk_circuit_a3")
	pollUntil(a, "three attempts by A", func() bool { return len(wh.requests()) >= threshold })
	opened := circuit()
	if !opened.Open() || opened.Failures != threshold {
		t.Fatalf("after %d failures the circuit is %+v, want open", threshold, opened)
	}
	openedAt := opened.OpenUntil.Add(-coolDown)
	for _, h := range wh.requests() {
		if h.open || h.status != http.StatusServiceUnavailable {
			t.Errorf("a request before the circuit opened: %+v", h)
		}
	}

	// B holds deploy-b's tasks back without sending one.
	heldB := func() int {
		n := 0
		for _, id := range []string{"tsk_circuit_b1", "tsk_circuit_b2", "tsk_circuit_b3"} {
			if recs := r.records(t, record.Query{TaskID: id}); len(recs) > 0 {
				n++
			}
		}
		return n
	}
	r.enqueue(t, tb, "tsk_circuit_b1", "tsk_circuit_b2", "tsk_circuit_b3")
	pollUntil(b, "B receives deploy-b's tasks", func() bool { return heldB() == 3 })
	if time.Now().After(opened.OpenUntil) {
		t.Fatalf("B received the tasks %v after the circuit opened, past its cool-down of %v: too slow a machine for this test", time.Since(openedAt), coolDown)
	}
	if n := len(wh.requests()); n != threshold {
		t.Errorf("the target got %d requests, want only A's %d: B sent while the circuit was open", n, threshold)
	}
	for _, rec := range r.records(t, record.Query{Trigger: "deploy-b"}) {
		if rec.ErrorClass != record.ClassCircuitOpen || rec.Status != record.Retrying || rec.Attempt != 0 || rec.NextAttemptAt.Before(opened.OpenUntil) {
			t.Errorf("B's record %+v: want held back (circuit_open, no attempt) until the cool-down ends", rec)
		}
	}
	if n := b.metrics.count(`"CircuitOpen":1`); n < 3 {
		t.Errorf("%d CircuitOpen metrics from B, want one per held task", n)
	}

	// Polling on until every task is delivered and the queue is empty.
	ids := []string{"tsk_circuit_a1", "tsk_circuit_a2", "tsk_circuit_a3", "tsk_circuit_b1", "tsk_circuit_b2", "tsk_circuit_b3"}
	delivered := func() bool {
		ok := map[string]bool{}
		for _, h := range wh.requests() {
			if h.status == http.StatusOK {
				ok[h.id] = true
			}
		}
		return len(ok) == len(ids)
	}
	for i, deadline := 0, time.Now().Add(60*time.Second); !delivered() || r.queued(t) > 0; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("not every task delivered within 60 s: the target got %+v; %d messages queued", wh.requests(), r.queued(t))
		}
		r.poll(t, []*container{a, b}[i%2])
	}

	hits := wh.requests()
	var whileOpen []hit
	closedAt := time.Time{}
	for _, h := range hits {
		if h.open {
			whileOpen = append(whileOpen, h)
			if h.status == http.StatusOK {
				closedAt = h.at
			}
		}
	}
	if closedAt.IsZero() {
		t.Fatalf("no request succeeded while the circuit was open: no probe closed it (%+v)", hits)
	}
	// Probes are at least one cool-down apart, the cool-down doubling
	// after each failed one: count the windows that ended while it was open.
	windows, w := 0, coolDown
	for end := openedAt.Add(w); !end.After(closedAt); end = end.Add(w) {
		windows++
		w = min(2*w, maxCoolDown)
	}
	bound := windows + 1
	if len(whileOpen) > bound || len(whileOpen) < 2 {
		t.Errorf("%d requests while the circuit was open (%v): want the failed probe and the one that closed it, at most %d (%d cool-down windows ended, +1)",
			len(whileOpen), closedAt.Sub(openedAt).Round(time.Millisecond), bound, windows)
	}
	if st := circuit(); st != (delivery.TargetState{}) {
		t.Errorf("the circuit after the successful probe: %+v, want closed and forgotten", st)
	}
	// Each task delivered exactly once: one 2xx, and nothing after it.
	for _, id := range ids {
		var got []int
		for _, h := range hits {
			if h.id == id {
				got = append(got, h.status)
			}
		}
		if n := len(got); n == 0 || got[n-1] != http.StatusOK || slices.Index(got, http.StatusOK) != n-1 {
			t.Errorf("task %s: the target answered %v, want one 200, last", id, got)
		}
	}
	if n := len(hits); n > threshold+bound+len(ids)-1 {
		t.Errorf("%d requests in all, want at most %d (%d to open, %d while open, one per other task)", n, threshold+bound+len(ids)-1, threshold, bound)
	}

	// What the records, the logs and the metrics say.
	held := 0
	for _, rec := range r.records(t, record.Query{}) {
		switch {
		case rec.ErrorClass == record.ClassCircuitOpen:
			held++
			if rec.Status != record.Retrying || rec.Attempt != 0 || rec.HTTPStatus != 0 {
				t.Errorf("circuit_open record %+v: want retrying, unsent, no attempt", rec)
			}
		case rec.Status != record.Success && rec.Status != record.Retrying:
			t.Errorf("record %+v: no task may fail", rec)
		}
	}
	if metrics := a.metrics.count(`"CircuitOpen":1`) + b.metrics.count(`"CircuitOpen":1`); metrics != held || held < 3 {
		t.Errorf("%d CircuitOpen metrics for %d circuit_open records", metrics, held)
	}
	logs := a.logs.String() + b.logs.String()
	if opens, closes := strings.Count(logs, `"msg":"circuit opened"`), strings.Count(logs, `"msg":"circuit closed"`); opens != 2 || closes != 1 {
		t.Errorf("%d circuit opened and %d circuit closed log lines, want 2 (the failures, the failed probe) and 1", opens, closes)
	}
	if out := r.cli(t, "logs", "--trigger", "deploy-b"); !strings.Contains(out, "circuit_open") {
		t.Errorf("regtrigger logs lacks the circuit_open records:\n%s", out)
	}
	t.Logf("%d requests to the target: %d to open the circuit, %d while open for %v (bound %d), %d after; %d tasks held %d times; done in %v",
		len(hits), threshold, len(whileOpen), closedAt.Sub(openedAt).Round(time.Millisecond), bound, len(hits)-threshold-len(whileOpen), len(ids), held, time.Since(openedAt).Round(time.Millisecond))
}
