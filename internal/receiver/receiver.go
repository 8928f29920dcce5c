// Package receiver is the first stage of regtrigger: it takes one registry
// notification, authenticates it, parses it into events, matches the
// namespace's triggers and enqueues one delivery task per (trigger, event).
// An event that fires no trigger costs nothing but the log: no duplicate
// key is claimed and no record stored (near misses are in the answer, the
// Debug log and `regtrigger match`; Service.SampleUntriggered keeps a
// sample of them in the store if asked to).
//
// It is platform-neutral: `regtrigger serve`, the Lambda function and the
// SCF function translate their requests into a Request and a Response back,
// and differ only in the adapters they hand to Service.
package receiver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/regtrigger/regtrigger/internal/coalesce"
	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/matcher"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/registry"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// MaxBody is the largest notification accepted (413 above it).
const MaxBody = 1 << 20

// DefaultDedupeWindow is how long a re-sent notification is recognised.
const DefaultDedupeWindow = 10 * time.Minute

// Triggers loads the triggers of one namespace. trigger.Store satisfies it.
type Triggers interface {
	Namespace(ctx context.Context, namespace string) ([]trigger.Trigger, error)
}

// Queue accepts delivery tasks. Enqueue is all or nothing from the caller's
// point of view: on error no task may be considered accepted.
type Queue interface {
	Enqueue(ctx context.Context, tasks []delivery.Task) error
}

// Dedupe remembers which events were already accepted.
type Dedupe interface {
	// Claim records key for ttl and reports whether it was new.
	Claim(ctx context.Context, key string, ttl time.Duration) (bool, error)
	// Release forgets key, so a retry of a failed notification is not lost.
	Release(ctx context.Context, key string) error
}

// ClaimQueue is a Queue that keeps the duplicate keys of a Dedupe in its
// own store and can claim them together with enqueueing the tasks they
// guard, in one step (one transaction of the embedded store, instead of a
// Claim and an Enqueue). Service uses it when Queue is a ClaimQueue that
// owns Service.Dedupe; otherwise it calls Dedupe.Claim and Queue.Enqueue.
type ClaimQueue interface {
	Queue
	// ClaimEnqueue claims each claim's key for its TTL (as Dedupe.Claim)
	// and enqueues the tasks of the claims whose key was new, all or
	// nothing: on error no key is claimed and no task accepted. fresh[i]
	// reports whether claim i's key was new (true for a claim without a key).
	ClaimEnqueue(ctx context.Context, claims []Claim) (fresh []bool, err error)
	// OwnsDedupe reports whether d's keys are the ones ClaimEnqueue claims.
	OwnsDedupe(d Dedupe) bool
}

// Claim is one event's duplicate key and the tasks it guards.
type Claim struct {
	Key   string // "" claims nothing: the tasks are enqueued regardless
	TTL   time.Duration
	Tasks []delivery.Task
}

// Request is one received notification, already read by the adapter.
type Request struct {
	ID     string      // the platform's request id, for logs
	Body   []byte      // at most MaxBody bytes; the adapter answers 413 above
	Header http.Header // as received
	// Source forces a registry format (the /v1/notify/{source} path); "" detects.
	Source string
	// Sender is who authenticated (a configured registry name), for logs.
	Sender string
	// Remote is the client's address, for logs ("" when unknown).
	Remote string
	// MaxAge > 0 refuses events whose registry time is further than this
	// from now (replayed signed bodies, see checkAge); 0 checks nothing.
	MaxAge time.Duration
}

// Response is what the adapter sends back. Every adapter sends Header too
// (Content-Type is always application/json and is not in it).
type Response struct {
	Status int
	Header http.Header // extra response headers; nil for none
	Body   []byte      // JSON
}

// Service is the receiver. Fill the adapters; Dedupe and Records are optional.
type Service struct {
	Triggers Triggers
	Queue    Queue
	Dedupe   Dedupe // nil: no duplicate suppression
	// Records receives a sample of the untriggered records, one in every
	// SampleUntriggered (0, the default: none; 1: all). Every untriggered
	// record is a Debug log line either way. A stored near miss is a write
	// per trigger that did not fire, paid for the notifications no one
	// asked for, so none are stored by default.
	Records           record.Sink
	SampleUntriggered int
	Logger            *slog.Logger
	// DedupeWindow defaults to DefaultDedupeWindow.
	DedupeWindow time.Duration
	// Windows keeps the coalesce windows of the triggers that have one
	// (package coalesce); nil sends every event of them alone.
	Windows coalesce.Store
	Now     func() time.Time

	matchers matcherCache
	missed   atomic.Uint64 // untriggered records seen, for the sample
}

// Accepted is the 202 answer.
type Accepted struct {
	RequestID string          `json:"request_id,omitempty"`
	Source    string          `json:"source"`
	Events    []AcceptedEvent `json:"events"`
	Tasks     int             `json:"tasks"`
}

// AcceptedEvent is one event of the answer with the tasks it caused.
type AcceptedEvent struct {
	Action     event.Action `json:"action"`
	Namespace  string       `json:"namespace"`
	Repository string       `json:"repository"`
	Tag        string       `json:"tag,omitempty"`
	Digest     string       `json:"digest,omitempty"`
	// Duplicate is true when the same event was accepted within the dedupe
	// window: no new task was made.
	Duplicate bool      `json:"duplicate,omitempty"`
	Tasks     []TaskRef `json:"tasks"`
	Skipped   []SkipRef `json:"untriggered,omitempty"`
}

// TaskRef names one enqueued task.
type TaskRef struct {
	ID      string `json:"id"`
	Trigger string `json:"trigger"`
}

// SkipRef names one trigger of the namespace that did not fire.
type SkipRef struct {
	Trigger string `json:"trigger"`
	Reason  string `json:"reason"`
}

// Problem is the body of every error answer.
type Problem struct {
	Status int    `json:"status"`
	Error  string `json:"error"`
	Detail string `json:"detail,omitempty"`
}

// ErrorResponse builds an error answer; adapters use it for the failures
// they detect themselves (401, 413, ...).
func ErrorResponse(status int, msg, detail string) Response {
	b, _ := json.Marshal(Problem{Status: status, Error: msg, Detail: detail})
	return Response{Status: status, Body: b}
}

// Receive handles one authenticated notification.
func (s *Service) Receive(ctx context.Context, req Request) Response {
	log := requestLog{l: s.logger(), id: req.ID, sender: req.Sender, remote: req.Remote}
	now := s.now()
	evs, err := registry.Parse(registry.Notification{Body: req.Body, Header: req.Header, ReceivedAt: now}, req.Source)
	if err != nil {
		status := http.StatusBadRequest
		switch {
		case errors.Is(err, registry.ErrUnknownSource):
			status = http.StatusNotFound
		case errors.Is(err, registry.ErrUnknownFormat):
			status = http.StatusUnsupportedMediaType
		case errors.Is(err, registry.ErrMalformed), errors.Is(err, registry.ErrUnsupportedEvent):
			status = http.StatusUnprocessableEntity
		}
		log.LogAttrs(ctx, slog.LevelWarn, "notification refused", slog.Int("status", status), slog.String("error", err.Error()), slog.Int("bytes", len(req.Body)))
		return ErrorResponse(status, http.StatusText(status), err.Error())
	}
	if err := checkAge(evs, now, req.MaxAge); err != nil {
		log.LogAttrs(ctx, slog.LevelWarn, "notification refused", slog.Int("status", StaleStatus), slog.String("error", err.Error()))
		return ErrorResponse(StaleStatus, "stale notification", err.Error())
	}
	source := req.Source
	if len(evs) > 0 {
		source = evs[0].Source
	}

	// Match every event first; what is claimed and enqueued is decided
	// in one step below, so a failure before it has claimed nothing.
	ps := make([]pending, 0, len(evs))
	var joins []join               // the tasks of triggers with a coalesce window
	var results [16]matcher.Result // for every event in turn; more triggers move it to the heap
	for _, ev := range evs {
		m, err := s.matcherFor(ctx, ev.Namespace)
		if err != nil {
			log.LogAttrs(ctx, slog.LevelError, "load triggers", slog.String("namespace", ev.Namespace), slog.String("error", err.Error()))
			return ErrorResponse(http.StatusServiceUnavailable, "trigger store unavailable", "the notification was not accepted; retry later")
		}
		rs := m.AppendMatch(results[:0], ev)
		fired := 0
		for _, r := range rs {
			if r.Fired() {
				fired++
			}
		}
		p := pending{ae: AcceptedEvent{Action: ev.Action, Namespace: ev.Namespace, Repository: ev.Repository, Tag: ev.Tag, Digest: ev.Digest, Tasks: make([]TaskRef, 0, fired)}}
		if fired > 0 {
			p.claim.Tasks = make([]delivery.Task, 0, fired)
		}
		if missed := len(rs) - fired; missed > 0 {
			p.ae.Skipped = make([]SkipRef, 0, missed)
			p.missed = make([]matcher.Result, 0, missed)
		}
		p.fp = Fingerprint(ev)
		// Only an event that makes a task claims its duplicate key: a
		// re-sent notification that fires nothing has nothing to repeat.
		if s.Dedupe != nil && fired > 0 {
			p.claim.Key, p.claim.TTL = p.fp, claimTTL(ev, now, req.MaxAge, s.window())
		}
		for _, r := range rs {
			if !r.Fired() {
				p.ae.Skipped = append(p.ae.Skipped, SkipRef{Trigger: r.Trigger.Name, Reason: string(r.Reason)})
				p.missed = append(p.missed, r)
				continue
			}
			t := delivery.NewTask(TaskID(p.fp, r.Trigger.Name), r.Trigger, ev, now)
			if span := time.Duration(r.Trigger.Coalesce); span > 0 && s.Windows != nil {
				joins = append(joins, join{event: len(ps), task: len(p.claim.Tasks), key: coalesce.Key(r.Trigger.Name, ev), span: span})
			}
			p.claim.Tasks = append(p.claim.Tasks, t)
			p.ae.Tasks = append(p.ae.Tasks, TaskRef{ID: t.ID, Trigger: r.Trigger.Name})
		}
		ps = append(ps, p)
	}
	if err := s.join(ctx, ps, joins, now); err != nil {
		log.LogAttrs(ctx, slog.LevelError, "join coalesce windows", slog.String("error", err.Error()))
		return ErrorResponse(http.StatusServiceUnavailable, "store unavailable", "the notification was not accepted; retry later")
	}
	fresh, refused := s.accept(ctx, log, ps)
	if refused != nil {
		return *refused
	}

	ans := Accepted{RequestID: req.ID, Source: source, Events: make([]AcceptedEvent, 0, len(evs))}
	duplicates := 0
	for i, p := range ps {
		if !fresh[i] {
			duplicates++
			ans.Events = append(ans.Events, AcceptedEvent{Action: p.ae.Action, Namespace: p.ae.Namespace, Repository: p.ae.Repository,
				Tag: p.ae.Tag, Digest: p.ae.Digest, Duplicate: true, Tasks: []TaskRef{}})
			continue
		}
		ans.Events = append(ans.Events, p.ae)
		ans.Tasks += len(p.claim.Tasks)
		ev := evs[i] // ps[i] is evs[i]'s
		for _, r := range p.missed {
			rec := record.UntriggeredRecord(TaskID(p.fp, r.Trigger.Name), r.Trigger.Name, ev, r.Explain(ev), now)
			log.Record(ctx, rec)
			if s.sampled() {
				if err := s.Records.Put(ctx, rec); err != nil {
					log.LogAttrs(ctx, slog.LevelError, "store untriggered record", slog.String("error", err.Error()))
				}
			}
		}
	}
	if duplicates > 0 {
		// Say why there are fewer tasks: the registry sent these events
		// again within the dedupe window.
		log.LogAttrs(ctx, slog.LevelInfo, "notification accepted", slog.String("source", source), slog.Int("events", len(evs)), slog.Int("tasks", ans.Tasks),
			slog.Int("duplicates", duplicates), slog.String("note", "duplicate events (sent again within the dedupe window) make no task"))
	} else {
		log.LogAttrs(ctx, slog.LevelInfo, "notification accepted", slog.String("source", source), slog.Int("events", len(evs)), slog.Int("tasks", ans.Tasks))
	}
	// The capacity fits the answer for one event and ten triggers, and
	// the newline ServeHTTP adds.
	return Response{Status: http.StatusAccepted, Body: ans.appendJSON(make([]byte, 0, 1024))}
}

// pending is one event of a notification between matching and acceptance:
// its answer if it is new, the key it claims and the tasks it makes, and
// the triggers it did not fire, whose untriggered records are made only
// once the event is accepted as new.
type pending struct {
	ae     AcceptedEvent
	claim  Claim
	fp     string // Fingerprint of the event
	missed []matcher.Result
}

// join is one task of a trigger with a coalesce window: ps[event]'s
// claim.Tasks[task].
type join struct {
	event, task int
	key         string
	span        time.Duration
}

// join adds the tasks of js to their coalesce windows, one Update per
// window key, and makes each task that joined one wait for its window's
// time (NotBefore) and ask the window when it comes due. It runs before
// anything is claimed: on error the notification is refused, and a task's
// event left in a window without its task is delivered by the window's
// other tasks, or by the task the registry's next try makes.
func (s *Service) join(ctx context.Context, ps []pending, js []join, now time.Time) error {
	for len(js) > 0 {
		key := js[0].key
		var members []coalesce.Member
		var same, rest []join
		for _, j := range js {
			if j.key != key {
				rest = append(rest, j)
				continue
			}
			t := &ps[j.event].claim.Tasks[j.task]
			same = append(same, j)
			members = append(members, coalesce.Member{Task: t.ID, Event: t.Event})
		}
		joined, err := coalesce.Windows{Store: s.Windows}.Join(ctx, key, same[0].span, members, now)
		if err != nil {
			return err
		}
		for i, j := range same {
			if joined[i] {
				t := &ps[j.event].claim.Tasks[j.task]
				t.Coalescing, t.NotBefore = true, now.Add(j.span).UTC()
			}
		}
		js = rest
	}
	return nil
}

// accept claims the duplicate keys of ps and enqueues the tasks of the new
// ones; fresh[i] reports whether ps[i] is new. On failure nothing stays
// claimed or enqueued and refused is the 503 answer.
func (s *Service) accept(ctx context.Context, log requestLog, ps []pending) (fresh []bool, refused *Response) {
	unavailable := func(msg string) *Response {
		r := ErrorResponse(http.StatusServiceUnavailable, msg, "the notification was not accepted; retry later")
		return &r
	}
	fresh = make([]bool, len(ps))
	work := false
	for i, p := range ps {
		fresh[i] = true
		work = work || p.claim.Key != "" || len(p.claim.Tasks) > 0
	}
	if !work {
		return fresh, nil
	}
	if cq, ok := s.Queue.(ClaimQueue); ok && s.Dedupe != nil && cq.OwnsDedupe(s.Dedupe) {
		claims := make([]Claim, len(ps))
		n := 0
		for i, p := range ps {
			claims[i] = p.claim
			n += len(p.claim.Tasks)
		}
		f, err := cq.ClaimEnqueue(ctx, claims)
		if err == nil && len(f) != len(ps) {
			err = fmt.Errorf("%d answers for %d claims", len(f), len(ps))
		}
		if err != nil {
			log.LogAttrs(ctx, slog.LevelError, "claim and enqueue tasks", slog.Int("tasks", n), slog.String("error", err.Error()))
			return nil, unavailable("queue unavailable")
		}
		return f, nil
	}

	var claimed []string
	release := func() {
		for _, k := range claimed {
			if err := s.Dedupe.Release(context.WithoutCancel(ctx), k); err != nil {
				log.LogAttrs(ctx, slog.LevelError, "release duplicate key", slog.String("error", err.Error()))
			}
		}
	}
	var tasks []delivery.Task
	for i, p := range ps {
		if p.claim.Key != "" {
			ok, err := s.Dedupe.Claim(ctx, p.claim.Key, p.claim.TTL)
			if err != nil {
				release()
				log.LogAttrs(ctx, slog.LevelError, "claim duplicate key", slog.String("error", err.Error()))
				return nil, unavailable("store unavailable")
			}
			if fresh[i] = ok; !ok {
				continue
			}
			claimed = append(claimed, p.claim.Key)
		}
		tasks = append(tasks, p.claim.Tasks...)
	}
	if len(tasks) > 0 {
		if err := s.Queue.Enqueue(ctx, tasks); err != nil {
			release()
			log.LogAttrs(ctx, slog.LevelError, "enqueue tasks", slog.Int("tasks", len(tasks)), slog.String("error", err.Error()))
			return nil, unavailable("queue unavailable")
		}
	}
	return fresh, nil
}

// Fingerprint identifies "the same event" for duplicate suppression: the
// registry format, action, namespace, repository, tag, digest, resource URL
// and the registry's own timestamp. A registry re-sending a notification
// sends the same body, so every one of these is equal; a new push of the
// same tag differs at least in its timestamp (or digest).
func Fingerprint(ev event.Event) string {
	// The fields joined with NUL bytes, in a buffer on the stack for
	// ordinary events (append moves a longer one to the heap).
	var buf [512]byte
	b := buf[:0]
	for _, s := range [...]string{ev.Source, string(ev.Action), ev.Namespace, ev.Repository, ev.Tag, ev.Digest, ev.ResourceURL} {
		b = append(b, s...)
		b = append(b, 0)
	}
	b = strconv.AppendInt(b, ev.OccurredAt.UnixNano(), 10)
	b = append(b, 0)
	sum := sha256.Sum256(b)
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], sum[:])
	return string(out[:])
}

// TaskID is the stable id of the task of one event for one trigger. It is
// derived, not random, so a duplicate that slips past dedupe still carries
// the same webhook-id and receivers can drop it.
func TaskID(fingerprint, triggerName string) string {
	var buf [192]byte // a fingerprint, a NUL and a trigger name (at most 64)
	b := append(buf[:0], fingerprint...)
	b = append(b, 0)
	b = append(b, triggerName...)
	sum := sha256.Sum256(b)
	const prefix = "tsk_"
	var out [len(prefix) + 32]byte
	copy(out[:], prefix)
	hex.Encode(out[len(prefix):], sum[:16])
	return string(out[:])
}

// sampled reports whether this untriggered record is one to store.
func (s *Service) sampled() bool {
	if s.Records == nil || s.SampleUntriggered <= 0 {
		return false
	}
	return (s.missed.Add(1)-1)%uint64(s.SampleUntriggered) == 0
}

func (s *Service) window() time.Duration {
	if s.DedupeWindow > 0 {
		return s.DedupeWindow
	}
	return DefaultDedupeWindow
}

// StaleStatus answers a signed notification whose event time is outside
// its registry's max age (checkAge). It is 403 Forbidden: the sender is
// authenticated and the body understood, and it is refused by policy. Not
// 401, which would send an operator rotating a secret that is fine; not
// 400 or 422, which here mean a body regtrigger cannot read or that lacks
// what an event needs. Re-sending the same body cannot succeed (it only gets
// older), and the detail gives the event time, its age and the max age, so
// a registry with a wrong clock is easy to tell from a replay.
const StaleStatus = http.StatusForbidden

// checkAge refuses a notification when the registry's own time of an
// event is more than maxAge before now, or after it (a clock far ahead
// would otherwise let a replay outlive its duplicate key). An event without
// a registry time is not checked: a zero OccurredAt (GHCR sometimes sends
// 0001-01-01), or a format without a time, whose events carry the time they
// were received. maxAge <= 0 checks nothing.
func checkAge(evs []event.Event, now time.Time, maxAge time.Duration) error {
	if maxAge <= 0 {
		return nil
	}
	for _, ev := range evs {
		if ev.OccurredAt.IsZero() {
			continue
		}
		at := ev.OccurredAt.UTC().Format(time.RFC3339)
		switch age := now.Sub(ev.OccurredAt); {
		case age > maxAge:
			return fmt.Errorf("the event time %s is %v old, more than this registry's max age of %v: a replayed notification, or the registry's clock is wrong", at, age.Round(time.Second), maxAge)
		case -age > maxAge:
			return fmt.Errorf("the event time %s is %v ahead of this server's clock, more than this registry's max age of %v: check the registry's clock", at, (-age).Round(time.Second), maxAge)
		}
	}
	return nil
}

// claimTTL is how long the duplicate key of an event is kept: the dedupe
// window, or, under a max age, until the event is too old to be accepted,
// whichever is later. A replay is then always a duplicate or refused as
// stale, never new, whatever the max age and the registry's clock.
func claimTTL(ev event.Event, now time.Time, maxAge, window time.Duration) time.Duration {
	if maxAge <= 0 || ev.OccurredAt.IsZero() {
		return window
	}
	if until := ev.OccurredAt.Add(maxAge).Sub(now); until > window {
		return until
	}
	return window
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// requestLog writes the log lines of one request, each with the request's
// id and, once known, its sender. It gives the lines Logger.With would,
// without building a new handler (formatting both attributes) for every
// request: most requests write one line.
type requestLog struct {
	l      *slog.Logger
	id     string
	remote string // the client's address; "" when unknown
	sender string // "" until the sender is authenticated
}

// LogAttrs is Logger.LogAttrs with the request's attributes first. It
// reports its caller as the source, as slog's own methods do.
func (r requestLog) LogAttrs(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	h := r.l.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	var pcs [1]uintptr
	runtime.Callers(2, pcs[:]) // skip runtime.Callers and LogAttrs
	rec := slog.NewRecord(time.Now(), level, msg, pcs[0])
	rec.AddAttrs(r.attrs(make([]slog.Attr, 0, 3))...)
	rec.AddAttrs(attrs...)
	_ = h.Handle(ctx, rec)
}

// Record logs a record of the request (record.Log).
func (r requestLog) Record(ctx context.Context, rec record.Record) {
	record.Log(ctx, r.l, rec, r.attrs(make([]slog.Attr, 0, 3))...)
}

// attrs appends the request's attributes to dst.
func (r requestLog) attrs(dst []slog.Attr) []slog.Attr {
	dst = append(dst, slog.String("request_id", r.id))
	if r.remote != "" {
		dst = append(dst, slog.String("remote", r.remote))
	}
	if r.sender != "" {
		dst = append(dst, slog.String("sender", r.sender))
	}
	return dst
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// String helps debugging.
func (a AcceptedEvent) String() string {
	return fmt.Sprintf("%s %s/%s:%s (%d tasks)", a.Action, a.Namespace, a.Repository, a.Tag, len(a.Tasks))
}
