// Package delivery turns one task — an event for one trigger — into one
// guarded HTTP POST and one log record, and decides what happens next:
// done, retry after a delay, or failed for good.
//
// It is the heart of the dispatcher; queues and stores call it through the
// small interfaces defined here and in package record.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/regtrigger/regtrigger/internal/coalesce"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/outbound"
	"github.com/regtrigger/regtrigger/internal/payload"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/signature"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// Task is one delivery of one event to one trigger's webhook. Its ID is
// unique and stays the same across retries: it goes out as webhook-id, so
// receivers can drop duplicates.
//
// A task refers to its trigger; it never copies it. No URL, header value or
// signing secret is in a task, so none is in a queue message, a journal, a
// dead letter or an archive: the Engine reads the trigger as it is when it
// sends (Engine.Triggers). See docs/delivery.md, "The task contract".
type Task struct {
	ID string `json:"id"`
	// Trigger names the trigger the event matched. Tasks written before the
	// reference contract embedded the whole trigger under this key;
	// decoding one keeps only the reference's fields (namespace, name,
	// version), so the URL, headers and secrets it carried are dropped on
	// read and never written again.
	Trigger TriggerRef  `json:"trigger"`
	Event   event.Event `json:"event"`
	// Raw is the registry's original body, kept only when the trigger's
	// format was raw at match time.
	Raw []byte `json:"raw,omitempty"`
	// Attempt counts the attempts already made.
	Attempt int `json:"attempt"`
	// CreatedAt is when the receiver accepted the notification.
	CreatedAt time.Time `json:"created_at"`
	// NotBefore is when the task may go out (a coalesce window's end);
	// a queue that can delay a message delays it until then, and the
	// Engine holds one that comes earlier. Zero: at once.
	NotBefore time.Time `json:"not_before,omitzero"`
	// Coalescing is set when the receiver added the event to its
	// trigger's coalesce window (package coalesce): the task asks the
	// window, when it comes due, whether it delivers the window's events or
	// was coalesced into another task's delivery.
	Coalescing bool `json:"coalescing,omitempty"`
	// Coalesced are the events the task delivers, its own included, once
	// it closed its window (in arrival order); nil for one event.
	Coalesced []event.Event `json:"coalesced,omitempty"`
}

// TriggerRef is the key of a trigger (its namespace and name) and the
// revision a task was matched against.
type TriggerRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Version is the trigger's stored revision (trigger.Trigger.Version)
	// when the event matched it; 0 only in a task no receiver made.
	Version int64 `json:"version,omitempty"`
}

// RefOf is the reference to t.
func RefOf(t *trigger.Trigger) TriggerRef {
	return TriggerRef{Namespace: t.Namespace, Name: t.Name, Version: t.Version}
}

// NewTask builds a task for trigger t, keeping the raw body only when the
// trigger needs it.
func NewTask(id string, t *trigger.Trigger, ev event.Event, now time.Time) Task {
	now = now.UTC()
	task := Task{ID: id, Trigger: RefOf(t), Event: ev, CreatedAt: now}
	task.Event.Raw = nil // not encoded; kept below only where it is used
	if t.Format == payload.Raw {
		task.Raw = ev.Raw
	}
	return task
}

// Requeued is t put on the queue again by hand (redeliver) for the
// trigger as it is now, t: a fresh attempt count, and the reference moved
// to t's current revision, so that queued work cancelled before it
// (CancelThrough) does not cancel it.
//
// A task coalesced into another's delivery is sent alone; one that
// delivered a window sends its events again.
func (task Task) Requeued(t *trigger.Trigger) Task {
	task.Attempt = 0
	task.Trigger = RefOf(t)
	task.Coalescing, task.NotBefore = false, time.Time{}
	return task
}

// Triggers reads a task's trigger as it is now. trigger.Store satisfies
// it; TriggerCache wraps one where a read costs a request.
type Triggers interface {
	Get(ctx context.Context, name string) (trigger.Trigger, error)
}

var _ Triggers = (trigger.Store)(nil)

// Sender makes one HTTP POST to a user-supplied URL. *outbound.Client is the
// production Sender.
type Sender interface {
	Post(ctx context.Context, rawURL string, header http.Header, body []byte) (*outbound.Response, error)
}

var _ Sender = (*outbound.Client)(nil)

// Outcome is the result of one attempt.
type Outcome struct {
	// Record is the attempt's log record (already handed to the sink).
	Record record.Record
	// Retry is true when the task should be attempted again after Delay.
	Retry bool
	Delay time.Duration
	// Task is the task as it stands after the attempt (Attempt incremented).
	Task Task
}

// Engine delivers tasks. The zero value is not usable; fill Sender and
// Triggers at least.
type Engine struct {
	Sender Sender
	// Triggers reads each task's trigger when it is sent.
	Triggers Triggers
	Policy   Policy
	// Health keeps each target's circuit and each trigger's failures
	// (see Circuit); nil means no circuit breaker.
	Health Health
	// Circuit tunes the circuit breaker.
	Circuit Circuit
	// Limits enforces each trigger's max-concurrency and rate in this
	// process; nil enforces none.
	Limits *Limits
	// Disable writes a trigger the dispatcher disables (a trigger's
	// auto-disable-after, tracked in Health); nil never disables one.
	Disable TriggerWriter
	// Windows keeps the coalesce windows the receiver adds events to;
	// nil sends every task alone.
	Windows coalesce.Store
	// Sink receives every record; nil keeps them only in the log.
	Sink record.Sink
	// Logger receives one line per attempt; nil means slog.Default().
	Logger *slog.Logger
	// UserAgent is sent on every request (regtrigger/<version>).
	UserAgent string
	// Now and Rand are the clock and jitter source; nil means the real ones.
	Now  func() time.Time
	Rand func() float64
}

// Deliver makes the next attempt of t and reports the outcome. It never
// returns an error: every failure is an outcome with a record. A sink that
// cannot store the record is logged, not fatal — the delivery happened.
//
// The trigger is read first, as it is now: a deleted one (or one now of
// another namespace) cancels the task, a disabled one skips it, one whose
// CancelThrough covers the revision the task matched cancels it; none of these makes
// a request or counts an attempt. A store that cannot be read retries the
// task later without counting an attempt either.
func (e *Engine) Deliver(ctx context.Context, t Task) Outcome {
	now := e.now()
	rec := record.FromEvent(t.ID, t.Trigger.Name, t.Event)
	var out Outcome
	if wait := t.NotBefore.Sub(now); wait > 0 {
		// A queue that did not delay it: wait on the queue.
		rec.Status, rec.ErrorClass = record.Retrying, record.ClassCoalesceWait
		rec.Error = "waits for its coalesce window"
		rec.NextAttemptAt = t.NotBefore.UTC()
		out = Outcome{Retry: true, Delay: wait}
	} else if tr, ok := e.resolve(ctx, t, &rec, &out); ok && e.gather(ctx, &t, &rec, &out, now) {
		rec.Target = targetHost(tr.URL)
		rec.TriggerVersion = tr.Version
		release, held := e.limit(ctx, t, &tr, &rec)
		defer release()
		var g gate
		if held == nil {
			now = e.now() // a limit may have waited
			g, held = e.admit(ctx, t, &tr, &rec, now)
			if held != nil {
				release()
			}
		}
		if held != nil {
			out = *held // the circuit is open: not sent, not an attempt
			if g.read && e.autoDisable(ctx, g.state, &tr, &rec, now) {
				out = Outcome{} // failing for too long, held or not
			}
		} else {
			t.Attempt++
			rec.Attempt = t.Attempt
			out = e.attempt(ctx, t, &tr, &rec, now)
			if rec.ErrorClass == record.ClassCanceled {
				t.Attempt-- // the dispatcher stopped: not the target's failure
			}
			if st, counted := e.report(ctx, g, &tr, &rec, now); counted && e.autoDisable(ctx, st, &tr, &rec, now) {
				out = Outcome{} // the trigger is disabled: no retry
			}
		}
	}
	out.Task = t
	out.Record = rec
	e.finish(ctx, &out)
	return out
}

// gather asks the task's coalesce window, once, whether the task
// delivers it: then t carries the window's events (Coalesced). It reports
// false, with rec filled (and out, for a retry), when the task was
// coalesced into another's delivery or the window could not be read.
func (e *Engine) gather(ctx context.Context, t *Task, rec *record.Record, out *Outcome, now time.Time) bool {
	if !t.Coalescing || t.Coalesced != nil || e.Windows == nil {
		return true
	}
	c, err := coalesce.Windows{Store: e.Windows}.Close(ctx, coalesce.Key(t.Trigger.Name, t.Event), t.ID, now)
	switch {
	case err != nil && ctx.Err() != nil:
		rec.Status, rec.ErrorClass, rec.Error = record.Retrying, record.ClassCanceled, "dispatcher stopped while reading the coalesce window"
		*out = Outcome{Retry: true}
		return false
	case err != nil:
		d := e.policy().Delay(max(t.Attempt, 1), 0, e.rand())
		rec.Status, rec.ErrorClass, rec.Error = record.Retrying, record.ClassStore, err.Error()
		rec.NextAttemptAt = e.now().Add(d).UTC()
		*out = Outcome{Retry: true, Delay: d}
		return false
	case !c.Found:
		return true // the window is gone: the event goes alone
	case c.By != t.ID:
		rec.Status, rec.CoalescedInto = record.Coalesced, c.By
		rec.Error = fmt.Sprintf("coalesced: task %s delivers the %d events of its window", c.By, c.Count)
		return false
	}
	if len(c.Events) > 1 {
		t.Coalesced = c.Events
	}
	return true
}

// limit takes the task's slot of its trigger's max-concurrency and rate.
// When the task must wait on the queue it fills rec and returns the retry
// outcome, which counts no attempt.
func (e *Engine) limit(ctx context.Context, t Task, tr *trigger.Trigger, rec *record.Record) (func(), *Outcome) {
	if e.Limits == nil {
		return func() {}, nil
	}
	release, wait, class := e.Limits.acquire(ctx, tr, t.ID)
	switch class {
	case "":
		return release, nil
	case record.ClassCanceled:
		rec.Status, rec.ErrorClass, rec.Error = record.Retrying, record.ClassCanceled, "dispatcher stopped while the task waited for its trigger's limit"
		return func() {}, &Outcome{Retry: true}
	}
	return func() {}, limited(rec, tr, class, wait, e.now())
}

// resolve reads the task's trigger. When the task must not be sent it
// fills rec (and out, for a retry) and reports false.
func (e *Engine) resolve(ctx context.Context, t Task, rec *record.Record, out *Outcome) (trigger.Trigger, bool) {
	ref := t.Trigger
	if e.Triggers == nil {
		rec.Status, rec.ErrorClass, rec.Error = record.Failed, record.ClassStore, "no trigger store to read the task's trigger from"
		return trigger.Trigger{}, false
	}
	tr, err := e.Triggers.Get(ctx, ref.Name)
	switch {
	case errors.Is(err, trigger.ErrNotFound) && ref.Version > 0:
		rec.Status, rec.ErrorClass, rec.Error = record.Cancelled, record.ClassTriggerDeleted, "trigger deleted"
		return tr, false
	case errors.Is(err, trigger.ErrNotFound):
		rec.Status, rec.ErrorClass, rec.Error = record.Cancelled, record.ClassTriggerDeleted, fmt.Sprintf("no trigger named %q exists", ref.Name)
		return tr, false
	case err != nil && ctx.Err() != nil:
		rec.Status, rec.ErrorClass, rec.Error = record.Retrying, record.ClassCanceled, "dispatcher stopped while reading the trigger"
		*out = Outcome{Retry: true}
		return tr, false
	case err != nil:
		// The store is down or slow: the task is still wanted. Try again
		// later without counting an attempt against the target.
		d := e.policy().Delay(max(t.Attempt, 1), 0, e.rand())
		rec.Status, rec.ErrorClass = record.Retrying, record.ClassStore
		rec.Error = "read the trigger: " + err.Error()
		rec.NextAttemptAt = e.now().Add(d).UTC()
		*out = Outcome{Retry: true, Delay: d}
		return tr, false
	case tr.Namespace != ref.Namespace:
		// A trigger is keyed by namespace and name: this is not the trigger
		// the event matched, and an event of one namespace never goes to
		// another's webhook.
		rec.Status, rec.ErrorClass = record.Cancelled, record.ClassTriggerDeleted
		rec.Error = fmt.Sprintf("trigger deleted: %q now belongs to namespace %q, the event to %q", ref.Name, tr.Namespace, ref.Namespace)
		return tr, false
	case !tr.Enabled:
		rec.Status, rec.ErrorClass, rec.Error = record.Skipped, record.ClassTriggerDisabled, "trigger disabled"
		if tr.DisabledReason != "" {
			rec.Error += ": " + tr.DisabledReason
		}
		rec.TriggerVersion = tr.Version
		return tr, false
	case tr.CancelThrough > 0 && ref.Version <= tr.CancelThrough:
		rec.Status, rec.ErrorClass = record.Cancelled, record.ClassCancelled
		rec.Error = fmt.Sprintf("queued work of the trigger cancelled (revisions up to %d; this task matched %d)", tr.CancelThrough, ref.Version)
		rec.TriggerVersion = tr.Version
		return tr, false
	}
	return tr, true
}

// attempt sends the request for trigger tr and classifies the answer into rec.
func (e *Engine) attempt(ctx context.Context, t Task, tr *trigger.Trigger, rec *record.Record, now time.Time) Outcome {
	ev := t.Event
	if n := len(t.Coalesced); n > 1 {
		ev = t.Coalesced[n-1] // the last to arrive, for the formats of one event
		rec.Events = n
	}
	ev.Raw = t.Raw
	if tr.Format == payload.Raw && t.Raw == nil {
		rec.Status, rec.ErrorClass = record.Failed, record.ClassPayload
		rec.Error = "the trigger's format is now raw, but the registry body was not kept: the format was another when the event matched"
		return Outcome{}
	}
	meta := payload.Meta{TaskID: t.ID, Trigger: tr.Name, Time: now, Events: t.Coalesced}
	if tr.Format.Signing() == payload.FeishuBody && len(tr.Secrets) > 0 {
		meta.Secret = tr.Secrets[0]
	}
	if tr.Format == payload.Template {
		tm, err := templates.get(tr.Template, tr.ContentType)
		if err != nil {
			rec.Status, rec.ErrorClass, rec.Error = record.Failed, record.ClassPayload, err.Error()
			return Outcome{}
		}
		meta.Template = tm
	}
	body, ctype, err := payload.Render(tr.Format, ev, meta)
	if err != nil {
		rec.Status, rec.ErrorClass, rec.Error = record.Failed, record.ClassPayload, err.Error()
		return Outcome{}
	}
	header, err := e.header(t.ID, tr, ctype, now, body)
	if err != nil {
		rec.Status, rec.ErrorClass, rec.Error = record.Failed, record.ClassPayload, err.Error()
		return Outcome{}
	}
	target := tr.URL
	if tr.Format.Signing() == payload.DingTalkQuery && len(tr.Secrets) > 0 {
		if target, err = payload.DingTalkURL(tr.URL, tr.Secrets[0], now); err != nil {
			rec.Status, rec.ErrorClass, rec.Error = record.Failed, record.ClassPayload, err.Error()
			return Outcome{}
		}
	}

	actx, cancel := context.WithTimeout(ctx, tr.Deadline())
	defer cancel()
	start := time.Now()
	resp, err := e.Sender.Post(actx, target, header, body)
	rec.Latency = time.Since(start)
	if err != nil {
		return e.classifyError(ctx, t, tr, rec, err)
	}
	rec.HTTPStatus = resp.Status
	if s := resp.Status; s >= 400 {
		defer func() { // the platform's reason, for the chat formats
			if why := payload.RefusalText(tr.Format, resp.Body); why != "" {
				rec.Error += ": " + why
			}
		}()
	}
	switch s := resp.Status; {
	case s >= 200 && s < 300:
		var pe *payload.PlatformError
		switch err := payload.CheckAnswer(tr.Format, resp.Body); {
		case errors.As(err, &pe) && pe.Retryable:
			return e.retry(t, rec, record.ClassPlatformLimit, pe.Error(), RetryAfter(resp.Header, now))
		case err != nil:
			rec.Status, rec.ErrorClass, rec.Error = record.Failed, record.ClassPlatform, err.Error()
			return Outcome{}
		}
		rec.Status = record.Success
		return Outcome{}
	case s >= 300 && s < 400:
		rec.Status, rec.ErrorClass = record.Failed, record.ClassRedirect
		rec.Location = outbound.Redact(resp.Location)
		rec.Error = fmt.Sprintf("HTTP %d: redirects are not followed", s)
		return Outcome{}
	case s == http.StatusRequestTimeout:
		return e.retry(t, rec, record.ClassHTTP408, fmt.Sprintf("HTTP %d", s), RetryAfter(resp.Header, now))
	case s == http.StatusTooManyRequests:
		return e.retry(t, rec, record.ClassHTTP429, fmt.Sprintf("HTTP %d", s), RetryAfter(resp.Header, now))
	case s >= 500:
		return e.retry(t, rec, record.ClassHTTP5xx, fmt.Sprintf("HTTP %d", s), RetryAfter(resp.Header, now))
	default:
		rec.Status, rec.ErrorClass = record.Failed, record.ClassHTTP4xx
		rec.Error = fmt.Sprintf("HTTP %d: final, not retried", s)
		return Outcome{}
	}
}

func (e *Engine) classifyError(ctx context.Context, t Task, tr *trigger.Trigger, rec *record.Record, err error) Outcome {
	var ne net.Error
	switch {
	case errors.Is(err, outbound.ErrBlocked):
		rec.Status, rec.ErrorClass, rec.Error = record.Blocked, record.ClassBlocked, err.Error()
		return Outcome{}
	case ctx.Err() != nil:
		// The dispatcher is stopping, not the target failing: try again soon,
		// and do not count this attempt against the target.
		rec.Status, rec.ErrorClass, rec.Error = record.Retrying, record.ClassCanceled, "dispatcher stopped during the attempt"
		return Outcome{Retry: true, Delay: 0}
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return e.retry(t, rec, record.ClassTimeout, fmt.Sprintf("no answer within %v", tr.Deadline()), 0)
	default:
		return e.retry(t, rec, record.ClassNetwork, err.Error(), 0)
	}
}

// retry schedules another attempt, or fails the task when none is left.
func (e *Engine) retry(t Task, rec *record.Record, class, msg string, retryAfter time.Duration) Outcome {
	rec.ErrorClass, rec.Error = class, msg
	p := e.policy()
	if t.Attempt >= p.MaxAttempts {
		rec.Status = record.Failed
		rec.Error = fmt.Sprintf("%s; gave up after %d attempts", msg, t.Attempt)
		return Outcome{}
	}
	d := p.Delay(t.Attempt, retryAfter, e.rand())
	rec.Status = record.Retrying
	rec.NextAttemptAt = e.now().Add(d).UTC()
	return Outcome{Retry: true, Delay: d}
}

// finish stamps, logs and stores the record.
func (e *Engine) finish(ctx context.Context, out *Outcome) {
	out.Record.Time = e.now().UTC()
	l := e.logger()
	record.Log(ctx, l, out.Record)
	if e.Sink != nil {
		// Store the record even if ctx is ending: the attempt happened.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := e.Sink.Put(sctx, out.Record); err != nil {
			l.LogAttrs(ctx, slog.LevelError, "store delivery record", slog.String("task_id", out.Record.TaskID), slog.String("error", err.Error()))
		}
	}
}

// The canonical forms of the signature headers, as Header.Set would make
// them on every call.
var (
	keyID        = http.CanonicalHeaderKey(signature.HeaderID)
	keyTimestamp = http.CanonicalHeaderKey(signature.HeaderTimestamp)
	keySignature = http.CanonicalHeaderKey(signature.HeaderSignature)
	keyFlux      = http.CanonicalHeaderKey(payload.FluxHeader)
)

// header builds the request headers: the trigger's own, then the ones
// regtrigger owns (which validation forbids triggers to set). It gives
// what Header.Set of each would, with all values in one backing array.
func (e *Engine) header(id string, tr *trigger.Trigger, ctype string, now time.Time, body []byte) (http.Header, error) {
	n := len(tr.Headers) + 5
	h := make(http.Header, n)
	vals := make([]string, 0, n)
	set := func(key, v string) { // key is canonical
		vals = append(vals, v)
		// Capped at its one value: an Add to it copies rather than
		// overwriting the next header's value.
		h[key] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	for k, v := range tr.Headers {
		set(http.CanonicalHeaderKey(k), v)
	}
	set("Content-Type", ctype)
	if e.UserAgent != "" {
		set("User-Agent", e.UserAgent)
	}
	set(keyID, id)
	set(keyTimestamp, strconv.FormatInt(now.Unix(), 10))
	switch sg := tr.Format.Signing(); {
	case sg == payload.FluxHMAC && len(tr.Secrets) > 0:
		set(keyFlux, payload.FluxSignature(tr.Secrets[0], body))
	case sg == payload.StandardWebhooks && len(tr.Secrets) > 0:
		var buf [2]signature.Secret // a rotation's two, on the stack
		secrets := buf[:0]
		for _, s := range tr.Secrets {
			sec, err := signature.ParseSecret(s)
			if err != nil {
				return nil, fmt.Errorf("trigger secret: %w", err)
			}
			secrets = append(secrets, sec)
		}
		set(keySignature, signature.Sign(secrets, id, now, body))
	}
	return h, nil
}

func (e *Engine) logger() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.Default()
}

func (e *Engine) policy() Policy {
	if e.Policy.MaxAttempts == 0 {
		return DefaultPolicy()
	}
	return e.Policy
}

func (e *Engine) rand() func() float64 {
	if e.Rand != nil {
		return e.Rand
	}
	return defaultRand
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// targetHost is the host[:port] of a webhook URL: what a record may show.
func targetHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}
