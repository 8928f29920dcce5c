// Package record defines the trigger log: one Record per delivery attempt,
// and one per trigger an event did not fire ("untriggered"), with the sink
// interface stores implement.
//
// A Record never holds a secret: no header values, no signing secrets, no
// URL query strings or userinfo — only the target's host.
package record

import (
	"context"
	"log/slog"
	"time"

	"github.com/regtrigger/regtrigger/internal/event"
)

// Status is what became of one attempt.
type Status string

// The statuses.
const (
	Success     Status = "success"     // the target answered 2xx
	Retrying    Status = "retrying"    // failed, another attempt is scheduled
	Failed      Status = "failed"      // failed for good (final 4xx, redirect, attempts exhausted)
	Blocked     Status = "blocked"     // the outbound guard refused the target
	Untriggered Status = "untriggered" // the trigger did not fire for the event
	Skipped     Status = "skipped"     // the trigger was disabled when the task came due: nothing sent
	Cancelled   Status = "cancelled"   // the trigger was deleted, or its queued work cancelled: nothing sent
	Coalesced   Status = "coalesced"   // the event went out in another task's delivery (a coalesce window): nothing sent by this task
)

// Statuses lists every status.
var Statuses = []Status{Success, Retrying, Failed, Blocked, Untriggered, Skipped, Cancelled, Coalesced}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	for _, k := range Statuses {
		if s == k {
			return true
		}
	}
	return false
}

// Error classes: why an attempt did not succeed.
const (
	ClassTimeout  = "timeout"  // the deadline passed
	ClassNetwork  = "network"  // connect, DNS, TLS or transport error
	ClassBlocked  = "blocked"  // the outbound guard refused the URL or address
	ClassRedirect = "redirect" // a 3xx: redirects are not followed
	ClassHTTP4xx  = "http_4xx" // a final client error
	ClassHTTP408  = "http_408" // request timeout: retried
	ClassHTTP429  = "http_429" // too many requests: retried
	ClassHTTP5xx  = "http_5xx" // server error: retried
	ClassPayload  = "payload"  // the payload could not be rendered (permanent)
	ClassCanceled = "canceled" // the dispatcher was stopping: retried

	ClassStore              = "store"               // the trigger could not be read: retried
	ClassTriggerDeleted     = "trigger_deleted"     // the task's trigger no longer exists: cancelled
	ClassTriggerDisabled    = "trigger_disabled"    // the task's trigger is disabled: skipped
	ClassCancelled          = "cancelled"           // the trigger's queued work was cancelled
	ClassUndecodable        = "undecodable"         // the queued task could not be read: dead-lettered
	ClassPlatform           = "platform"            // a chat platform answered 2xx with an error code: final
	ClassPlatformLimit      = "platform_limit"      // a chat platform said it was sent too often: retried
	ClassCircuitOpen        = "circuit_open"        // the target's circuit is open: held back, nothing sent, not an attempt
	ClassAutoDisabled       = "auto_disabled"       // every delivery failed for auto-disable-after: the trigger was disabled
	ClassRateLimited        = "rate_limited"        // over the trigger's rate: held back, nothing sent, not an attempt
	ClassConcurrencyLimited = "concurrency_limited" // the trigger's max-concurrency requests are in flight: held back, not an attempt
	ClassCoalesceWait       = "coalesce_wait"       // received before its coalesce window's time is up: held back, not an attempt
)

// Record is one line of the trigger log.
type Record struct {
	TaskID     string       `json:"task_id"`
	Trigger    string       `json:"trigger"`
	Source     string       `json:"source,omitempty"`
	Action     event.Action `json:"action"`
	Namespace  string       `json:"namespace"`
	Repository string       `json:"repository"`
	Tag        string       `json:"tag,omitempty"`
	Digest     string       `json:"digest,omitempty"`
	// Target is the webhook's host[:port] — never its path query or userinfo.
	Target string `json:"target,omitempty"`
	// TriggerVersion is the revision of the trigger the attempt used (the
	// trigger as it was when the attempt ran, not when the event matched).
	TriggerVersion int64         `json:"trigger_version,omitempty"`
	Status         Status        `json:"status"`
	HTTPStatus     int           `json:"http_status,omitempty"`
	Latency        time.Duration `json:"latency_ns,omitempty"`
	Attempt        int           `json:"attempt,omitempty"`
	ErrorClass     string        `json:"error_class,omitempty"`
	// Error is a short, redacted description of the failure.
	Error string `json:"error,omitempty"`
	// Location is the redirect target of a 3xx, redacted like Target.
	Location string `json:"location,omitempty"`
	// Reason is why an untriggered trigger did not fire.
	Reason string `json:"reason,omitempty"`
	// Events is how many events a coalesced delivery carried (0: one);
	// CoalescedInto, for a coalesced task, is the task that carried it.
	Events        int    `json:"events,omitempty"`
	CoalescedInto string `json:"coalesced_into,omitempty"`
	// NextAttemptAt is when a retrying task goes out again.
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	Time          time.Time `json:"time"`
}

// Sink keeps records. Stores implement it; it must be safe for concurrent use.
type Sink interface {
	Put(ctx context.Context, r Record) error
}

// FromEvent starts a record with the event's fields.
func FromEvent(taskID, trigger string, ev event.Event) Record {
	return Record{
		TaskID: taskID, Trigger: trigger, Source: ev.Source, Action: ev.Action,
		Namespace: ev.Namespace, Repository: ev.Repository, Tag: ev.Tag, Digest: ev.Digest,
	}
}

// UntriggeredRecord is the record of a trigger that did not fire, with the reason.
func UntriggeredRecord(id, trigger string, ev event.Event, reason string, at time.Time) Record {
	r := FromEvent(id, trigger, ev)
	r.Status, r.Reason, r.Time = Untriggered, reason, at.UTC()
	return r
}

// UndecodableRecord is the record of a queued task that could not be read
// and was set aside for the dead-letter path: it names no trigger, since
// the task could not say which.
func UndecodableRecord(taskID string, err error, at time.Time) Record {
	return Record{TaskID: taskID, Status: Failed, ErrorClass: ClassUndecodable, Error: err.Error(), Time: at.UTC()}
}

// Level is the log level a record deserves.
func (r Record) Level() slog.Level {
	switch r.Status {
	case Failed, Blocked, Cancelled:
		return slog.LevelWarn
	case Untriggered:
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// Attrs are the record's fields as log attributes, empty ones left out.
func (r Record) Attrs() []slog.Attr {
	return r.AppendAttrs(make([]slog.Attr, 0, maxAttrs))
}

// maxAttrs is the most attributes AppendAttrs appends.
const maxAttrs = 21

// AppendAttrs appends the record's fields as log attributes to dst, empty
// ones left out, so a caller can build them in a buffer of its own.
func (r Record) AppendAttrs(dst []slog.Attr) []slog.Attr {
	add := func(k, v string) {
		if v != "" {
			dst = append(dst, slog.String(k, v))
		}
	}
	add("task_id", r.TaskID)
	add("trigger", r.Trigger)
	add("source", r.Source)
	add("action", string(r.Action))
	add("namespace", r.Namespace)
	add("repository", r.Repository)
	add("tag", r.Tag)
	add("digest", r.Digest)
	add("target", r.Target)
	if r.TriggerVersion != 0 {
		dst = append(dst, slog.Int64("trigger_version", r.TriggerVersion))
	}
	add("status", string(r.Status))
	if r.HTTPStatus != 0 {
		dst = append(dst, slog.Int("http_status", r.HTTPStatus))
	}
	if r.Latency != 0 {
		dst = append(dst, slog.Float64("latency_ms", float64(r.Latency.Microseconds())/1000))
	}
	if r.Attempt != 0 {
		dst = append(dst, slog.Int("attempt", r.Attempt))
	}
	add("error_class", r.ErrorClass)
	add("error", r.Error)
	add("location", r.Location)
	add("reason", r.Reason)
	if r.Events != 0 {
		dst = append(dst, slog.Int("events", r.Events))
	}
	add("coalesced_into", r.CoalescedInto)
	if !r.NextAttemptAt.IsZero() {
		dst = append(dst, slog.Time("next_attempt_at", r.NextAttemptAt))
	}
	return dst
}

// Log writes the record as one structured log line. The attrs, such as
// the id of the request that made the record, come first, as they would
// from Logger.With.
func Log(ctx context.Context, l *slog.Logger, r Record, attrs ...slog.Attr) {
	msg := "delivery"
	if r.Status == Untriggered {
		msg = "untriggered"
	}
	// Untriggered records are debug lines, dropped at the usual level:
	// build their attributes only when they are written.
	if !l.Enabled(ctx, r.Level()) {
		return
	}
	// The attributes are built on the stack: slog copies them into its
	// Record and does not keep the slice.
	var buf [4 + maxAttrs]slog.Attr
	l.LogAttrs(ctx, r.Level(), msg, r.AppendAttrs(append(buf[:0], attrs...))...)
}
