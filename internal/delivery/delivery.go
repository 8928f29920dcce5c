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
type Task struct {
	ID      string          `json:"id"`
	Trigger trigger.Trigger `json:"trigger"`
	Event   event.Event     `json:"event"`
	// Raw is the registry's original body, kept only for the raw format.
	Raw []byte `json:"raw,omitempty"`
	// Attempt counts the attempts already made.
	Attempt int `json:"attempt"`
	// CreatedAt is when the receiver accepted the notification.
	CreatedAt time.Time `json:"created_at"`
}

// NewTask builds a task, keeping the raw body only when the trigger needs it.
func NewTask(id string, t trigger.Trigger, ev event.Event, now time.Time) Task {
	task := Task{ID: id, Trigger: t, Event: ev, CreatedAt: now.UTC()}
	if t.Format == payload.Raw {
		task.Raw = ev.Raw
	}
	return task
}

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

// Engine delivers tasks. The zero value is not usable; fill Sender at least.
type Engine struct {
	Sender Sender
	Policy Policy
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
func (e *Engine) Deliver(ctx context.Context, t Task) Outcome {
	now := e.now()
	t.Attempt++
	rec := record.FromEvent(t.ID, t.Trigger.Name, t.Event)
	rec.Attempt = t.Attempt
	rec.Target = targetHost(t.Trigger.URL)

	out := e.attempt(ctx, t, &rec, now)
	out.Task = t
	out.Record = rec
	e.finish(ctx, &out)
	return out
}

// attempt sends the request and classifies the answer into rec.
func (e *Engine) attempt(ctx context.Context, t Task, rec *record.Record, now time.Time) Outcome {
	ev := t.Event
	ev.Raw = t.Raw
	body, ctype, err := payload.Render(t.Trigger.Format, ev, payload.Meta{TaskID: t.ID, Trigger: t.Trigger.Name, Time: now})
	if err != nil {
		rec.Status, rec.ErrorClass, rec.Error = record.Failed, record.ClassPayload, err.Error()
		return Outcome{}
	}
	header, err := e.header(t, ctype, now, body)
	if err != nil {
		rec.Status, rec.ErrorClass, rec.Error = record.Failed, record.ClassPayload, err.Error()
		return Outcome{}
	}

	actx, cancel := context.WithTimeout(ctx, t.Trigger.Deadline())
	defer cancel()
	start := time.Now()
	resp, err := e.Sender.Post(actx, t.Trigger.URL, header, body)
	rec.Latency = time.Since(start)
	if err != nil {
		return e.classifyError(ctx, t, rec, err)
	}
	rec.HTTPStatus = resp.Status
	switch s := resp.Status; {
	case s >= 200 && s < 300:
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

func (e *Engine) classifyError(ctx context.Context, t Task, rec *record.Record, err error) Outcome {
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
		return e.retry(t, rec, record.ClassTimeout, fmt.Sprintf("no answer within %v", t.Trigger.Deadline()), 0)
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
	rnd := e.Rand
	if rnd == nil {
		rnd = defaultRand
	}
	d := p.Delay(t.Attempt, retryAfter, rnd)
	rec.Status = record.Retrying
	rec.NextAttemptAt = e.now().Add(d).UTC()
	return Outcome{Retry: true, Delay: d}
}

// finish stamps, logs and stores the record.
func (e *Engine) finish(ctx context.Context, out *Outcome) {
	if out.Record.Status == record.Retrying && out.Record.ErrorClass == record.ClassCanceled {
		out.Task.Attempt--
	}
	out.Record.Time = e.now().UTC()
	l := e.Logger
	if l == nil {
		l = slog.Default()
	}
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
)

// header builds the request headers: the trigger's own, then the ones
// regtrigger owns (which validation forbids triggers to set). It gives
// what Header.Set of each would, with all values in one backing array.
func (e *Engine) header(t Task, ctype string, now time.Time, body []byte) (http.Header, error) {
	n := len(t.Trigger.Headers) + 5
	h := make(http.Header, n)
	vals := make([]string, 0, n)
	set := func(key, v string) { // key is canonical
		vals = append(vals, v)
		// Capped at its one value: an Add to it copies rather than
		// overwriting the next header's value.
		h[key] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	for k, v := range t.Trigger.Headers {
		set(http.CanonicalHeaderKey(k), v)
	}
	set("Content-Type", ctype)
	if e.UserAgent != "" {
		set("User-Agent", e.UserAgent)
	}
	set(keyID, t.ID)
	set(keyTimestamp, strconv.FormatInt(now.Unix(), 10))
	if len(t.Trigger.Secrets) > 0 {
		var buf [2]signature.Secret // a rotation's two, on the stack
		secrets := buf[:0]
		for _, s := range t.Trigger.Secrets {
			sec, err := signature.ParseSecret(s)
			if err != nil {
				return nil, fmt.Errorf("trigger secret: %w", err)
			}
			secrets = append(secrets, sec)
		}
		set(keySignature, signature.Sign(secrets, t.ID, now, body))
	}
	return h, nil
}

func (e *Engine) policy() Policy {
	if e.Policy.MaxAttempts == 0 {
		return DefaultPolicy()
	}
	return e.Policy
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
