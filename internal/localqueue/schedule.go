package localqueue

import (
	"container/heap"
	"time"
)

// TaskKey names a task's payload in an embedded store: when it was queued
// (8 bytes of nanoseconds) and the store's sequence (8 bytes).
type TaskKey [16]byte

// Entry is one queued task in an embedded store's memory; X is what the
// store keeps beside it (boltstore: the payload until its file has it).
type Entry[X any] struct {
	ID  string
	Key TaskKey
	// Stored is the due time the store holds.
	Stored time.Time
	// Due is when the task may be leased: Stored, or the end of its lease.
	Due time.Time
	// Receives counts the leases since the store was opened.
	Receives int
	// Value is Item.Value until a lease takes it.
	Value any
	// Settling: a Finish, Reschedule or DeadLetter of it is under way.
	Settling bool
	X        X
	index    int // in Schedule.due
}

// Schedule is an embedded store's queue in memory: every queued task by
// id, by task key and in due order, and the ids being queued by a write not
// committed yet (Reserved). The store's lock guards it.
type Schedule[X any] struct {
	ByID     map[string]*Entry[X]
	ByKey    map[TaskKey]*Entry[X]
	Reserved map[string]bool
	due      dueHeap[X]
	values   int // entries holding a value
}

// MaxValues bounds the entries holding a decoded value (Item.Value), so
// that a long queue keeps only payloads' worth of memory.
const MaxValues = 16384

// NewSchedule is an empty schedule.
func NewSchedule[X any]() *Schedule[X] {
	return &Schedule[X]{ByID: map[string]*Entry[X]{}, ByKey: map[TaskKey]*Entry[X]{}, Reserved: map[string]bool{}}
}

// Queued reports whether id is queued or being queued.
func (q *Schedule[X]) Queued(id string) bool { return q.ByID[id] != nil || q.Reserved[id] }

// Add queues e.
func (q *Schedule[X]) Add(e *Entry[X]) {
	q.ByID[e.ID], q.ByKey[e.Key] = e, e
	heap.Push(&q.due, e)
}

// Values is how many entries hold a value.
func (q *Schedule[X]) Values() int { return q.values }

// KeepValue sets e's value (replacing any), while fewer than MaxValues
// entries hold one.
func (q *Schedule[X]) KeepValue(e *Entry[X], v any) {
	q.TakeValue(e)
	if v != nil && q.values < MaxValues {
		e.Value = v
		q.values++
	}
}

// TakeValue returns e's value and forgets it.
func (q *Schedule[X]) TakeValue(e *Entry[X]) any {
	v := e.Value
	if v != nil {
		e.Value = nil
		q.values--
	}
	return v
}

// Remove forgets e (if it is still the entry of its id).
func (q *Schedule[X]) Remove(e *Entry[X]) {
	if q.ByID[e.ID] != e {
		return
	}
	q.TakeValue(e)
	delete(q.ByID, e.ID)
	delete(q.ByKey, e.Key)
	heap.Remove(&q.due, e.index)
}

// SetDue moves e to due (stored as well).
func (q *Schedule[X]) SetDue(e *Entry[X], due time.Time) {
	e.Stored, e.Due = due, due
	if q.ByID[e.ID] == e {
		heap.Fix(&q.due, e.index)
	}
}

// Lease takes up to max entries due at now and hides them until
// now+leaseFor, returning copies that carry the values (a later lease
// decodes the payload).
func (q *Schedule[X]) Lease(now time.Time, max int, leaseFor time.Duration) []Entry[X] {
	var out []*Entry[X]
	for len(out) < max && q.due.Len() > 0 && !q.due[0].Due.After(now) {
		out = append(out, heap.Pop(&q.due).(*Entry[X]))
	}
	copies := make([]Entry[X], len(out))
	for i, e := range out {
		e.Due = now.Add(leaseFor)
		e.Receives++
		heap.Push(&q.due, e)
		copies[i] = *e
		copies[i].Value = q.TakeValue(e)
	}
	return copies
}

// Next is when the earliest entry is due.
func (q *Schedule[X]) Next() (time.Time, bool) {
	if q.due.Len() == 0 {
		return time.Time{}, false
	}
	return q.due[0].Due, true
}

// Len is the number of queued entries.
func (q *Schedule[X]) Len() int { return len(q.ByID) }

// dueHeap orders entries by due time, then by task key (queue order).
type dueHeap[X any] []*Entry[X]

func (h dueHeap[X]) Len() int { return len(h) }
func (h dueHeap[X]) Less(i, j int) bool {
	if !h[i].Due.Equal(h[j].Due) {
		return h[i].Due.Before(h[j].Due)
	}
	return string(h[i].Key[:]) < string(h[j].Key[:])
}
func (h dueHeap[X]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *dueHeap[X]) Push(x any) {
	e := x.(*Entry[X])
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *dueHeap[X]) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.index = -1
	return e
}
