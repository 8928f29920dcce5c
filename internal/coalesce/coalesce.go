// Package coalesce turns a burst of registry events into one delivery: a
// trigger's `coalesce: 10s` option.
//
// A multi-arch push sends one notification per platform manifest and one
// for the index; a pipeline tags one digest v1.2.3, v1.2, v1 and latest.
// For a trigger with a coalesce window, the receiver adds each event it
// matches to a window of the trigger, the repository and the action, and
// queues the event's task as usual, due when the window's time is up
// (Task.NotBefore). The first of the window's tasks to come due closes the
// window and delivers every event in it; the others find it closed and
// are recorded as coalesced into that delivery. Every event keeps a task
// of its own, so losing the window's state loses no event: a task whose
// window cannot be found is delivered alone.
//
// Which window an event joins: a window is open for its span after its
// first event arrived, until one of its tasks closes it. An event joins
// the newest open window of its key that has its digest or one of its
// tags; failing that, an event without a tag (a platform manifest, pushed
// by digest) joins the newest open window, and a tagged event the newest
// open window that has no tag yet (the platform manifests its index
// follows). Otherwise it opens a window of its own: two unrelated pushes
// to one repository within the span stay two deliveries.
//
// The windows of one key (trigger, action, namespace/repository) are one
// small document in a Store, changed by compare-and-swap: the embedded
// store, DynamoDB, Redis. So the window holds across receiver instances,
// dispatcher instances and restarts.
package coalesce

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/regtrigger/regtrigger/internal/event"
)

// Store keeps one document per key, changed atomically.
type Store interface {
	// Update reads the document at key (nil when there is none), calls fn
	// with it and stores what fn returns, as one atomic step against
	// every other Update of key, in any process. fn may be called more
	// than once (a conflicting write made the store try again) and must
	// have no other effect. fn returning ErrUnchanged writes nothing;
	// Update then returns nil. ttl is how long the store may keep the
	// document after the write.
	Update(ctx context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) error
}

// ErrUnchanged, returned by an Update's fn, leaves the document as it is.
var ErrUnchanged = errors.New("coalesce: unchanged")

// ErrConflict is what a Store returns when other writers kept changing a
// key for longer than it tries.
var ErrConflict = errors.New("coalesce: the window kept changing under concurrent writers")

// Limits on one key's document, so that it stays small (a DynamoDB item
// holds 400 KB): an event past them is delivered alone.
const (
	MaxMembers = 100 // events in one window
	MaxWindows = 32  // windows of one key kept at once
)

// Keep is how long a window stays in its key's document after it was
// closed, so that its members' tasks, due up to one span after the
// closing one, still find who delivered them; and Abandon is how long an
// open window waits for one of its tasks (a queue outage) before it is
// dropped. A member that comes due later is delivered alone.
const (
	Keep    = time.Hour
	Abandon = 24 * time.Hour
)

// Member is one event in a window: its task and when it arrived.
type Member struct {
	Task  string      `json:"task"`
	At    time.Time   `json:"at"`
	Event event.Event `json:"event"`
}

// window is one burst.
type window struct {
	Opened   time.Time     `json:"opened"`
	Span     time.Duration `json:"span"`
	Members  []Member      `json:"members"`
	ClosedBy string        `json:"closed_by,omitempty"`
	Closed   time.Time     `json:"closed,omitzero"`
}

// doc is a key's document.
type doc struct {
	Windows []window `json:"windows"`
}

// Key names the windows of trigger for ev's action and repository: a
// hash, so that it is short and safe in every store.
func Key(trigger string, ev event.Event) string {
	sum := sha256.Sum256([]byte(trigger + "\x00" + string(ev.Action) + "\x00" + ev.Namespace + "\x00" + ev.Repository))
	return "co_" + hex.EncodeToString(sum[:16])
}

// TTL is how long a store keeps a key's document after a write: longer
// than any window stays in it.
const TTL = Abandon + time.Hour

// Windows adds events to windows and closes them, in a Store.
type Windows struct {
	Store Store
}

// Join adds the members, events of one key arriving at now, to its
// windows, each with the trigger's span. joined[i] reports whether
// members[i] is in a window (it is false past MaxWindows open windows: that
// event is delivered alone, at once). A member already in a window (a
// registry sending a notification again) stays where it is.
func (w Windows) Join(ctx context.Context, key string, span time.Duration, members []Member, now time.Time) (joined []bool, err error) {
	err = w.Store.Update(ctx, key, TTL, func(old []byte) ([]byte, error) {
		d, err := decode(old)
		if err != nil {
			return nil, err
		}
		d.prune(now)
		joined = make([]bool, len(members))
		for i, m := range members {
			joined[i] = d.join(m, span, now)
		}
		return json.Marshal(d)
	})
	if err != nil {
		return nil, fmt.Errorf("join coalesce window %s: %w", key, err)
	}
	return joined, nil
}

// Closed is what Close found.
type Closed struct {
	// Found is false when the task is in no window: deliver it alone.
	Found bool
	// By is the task that delivers the window: the one asked about, or
	// the one it was coalesced into.
	By string
	// Events are the window's events in arrival order, when By is the
	// task asked about.
	Events []event.Event
	// Count is the number of events in the window.
	Count int
}

// Close is asked by the task when it comes due: the first of a window's
// tasks to ask closes it and delivers its events; the others (and every
// later ask) learn which task that was. The task that closed a window gets
// the same events again when it asks again (its retry, a crash before it
// settled).
func (w Windows) Close(ctx context.Context, key, task string, now time.Time) (Closed, error) {
	var c Closed
	err := w.Store.Update(ctx, key, TTL, func(old []byte) ([]byte, error) {
		c = Closed{}
		d, err := decode(old)
		if err != nil {
			return nil, err
		}
		i := d.find(task)
		if i < 0 {
			return nil, ErrUnchanged
		}
		win := &d.Windows[i]
		c.Found, c.Count = true, len(win.Members)
		changed := false
		if win.ClosedBy == "" {
			win.ClosedBy, win.Closed, changed = task, now.UTC(), true
		}
		c.By = win.ClosedBy
		if c.By == task {
			c.Events = make([]event.Event, len(win.Members))
			for j, m := range win.Members {
				c.Events[j] = m.Event
			}
		}
		if !changed {
			return nil, ErrUnchanged
		}
		return json.Marshal(d)
	})
	if err != nil {
		return Closed{}, fmt.Errorf("close coalesce window %s: %w", key, err)
	}
	return c, nil
}

func decode(b []byte) (doc, error) {
	var d doc
	if len(b) == 0 {
		return d, nil
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("decode the windows: %w", err)
	}
	return d, nil
}

// prune drops the windows closed more than Keep ago and the open ones
// older than Abandon, then the oldest closed ones past MaxWindows.
func (d *doc) prune(now time.Time) {
	d.Windows = slices.DeleteFunc(d.Windows, func(w window) bool {
		if w.ClosedBy != "" {
			return now.Sub(w.Closed) > Keep
		}
		return now.Sub(w.Opened) > Abandon
	})
	for len(d.Windows) > MaxWindows {
		i := slices.IndexFunc(d.Windows, func(w window) bool { return w.ClosedBy != "" })
		if i < 0 {
			break // every one is open: join opens no more
		}
		d.Windows = slices.Delete(d.Windows, i, i+1)
	}
}

// find is the index of the window task is a member of, or -1.
func (d *doc) find(task string) int {
	for i, w := range d.Windows {
		for _, m := range w.Members {
			if m.Task == task {
				return i
			}
		}
	}
	return -1
}

// join adds m to the window it belongs to (see the package doc) or a new
// one; false when it cannot be kept.
func (d *doc) join(m Member, span time.Duration, now time.Time) bool {
	if d.find(m.Task) >= 0 {
		return true
	}
	m.At = now.UTC()
	m.Event.Raw = nil
	open := func(w *window) bool {
		return w.ClosedBy == "" && now.Before(w.Opened.Add(w.Span)) && len(w.Members) < MaxMembers
	}
	pick := -1
	for i := len(d.Windows) - 1; i >= 0 && pick < 0; i-- { // newest first
		if w := &d.Windows[i]; open(w) && w.shares(m.Event) {
			pick = i
		}
	}
	for i := len(d.Windows) - 1; i >= 0 && pick < 0; i-- {
		if w := &d.Windows[i]; open(w) && (m.Event.Tag == "" || !w.tagged()) {
			pick = i
		}
	}
	if pick >= 0 {
		d.Windows[pick].Members = append(d.Windows[pick].Members, m)
		return true
	}
	n := 0
	for i := range d.Windows {
		if d.Windows[i].ClosedBy == "" {
			n++
		}
	}
	if n >= MaxWindows {
		return false
	}
	d.Windows = append(d.Windows, window{Opened: now.UTC(), Span: span, Members: []Member{m}})
	d.prune(now)
	return true
}

// shares reports whether the window has ev's digest or its tag.
func (w *window) shares(ev event.Event) bool {
	for _, m := range w.Members {
		if (ev.Digest != "" && m.Event.Digest == ev.Digest) || (ev.Tag != "" && m.Event.Tag == ev.Tag) {
			return true
		}
	}
	return false
}

// tagged reports whether any of the window's events has a tag.
func (w *window) tagged() bool {
	for _, m := range w.Members {
		if m.Event.Tag != "" {
			return true
		}
	}
	return false
}

// Tries bounds the compare-and-swap rounds of a Store's Update (CAS).
const Tries = 16

// CAS runs round until it reports done (its write went through, or there
// was nothing to write), at most Tries times, pausing after each lost
// round a little longer, with jitter so that racing writers fall out of
// step. It returns round's error, or ErrConflict after the last round.
func CAS(ctx context.Context, round func() (done bool, err error)) error {
	for try := 0; try < Tries; try++ {
		if try > 0 {
			pause := time.Duration(float64(min(try, 10)) * float64(2*time.Millisecond) * (0.5 + rand.Float64()))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(pause):
			}
		}
		done, err := round()
		if err != nil || done {
			return err
		}
	}
	return fmt.Errorf("%w (%d tries)", ErrConflict, Tries)
}
