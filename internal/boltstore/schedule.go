package boltstore

import (
	"container/heap"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// taskKey names a task's payload in the tasks bucket: when it was queued
// (8 bytes of nanoseconds) and the bucket's sequence (8 bytes).
type taskKey [16]byte

// newTaskKey takes the tasks bucket's next sequence.
func newTaskKey(tasks *bolt.Bucket, at time.Time) (taskKey, error) {
	seq, err := tasks.NextSequence()
	if err != nil {
		return taskKey{}, err
	}
	var k taskKey
	copy(k[:8], nanos(at))
	binary.BigEndian.PutUint64(k[8:], seq)
	return k, nil
}

// pendingKey is a task's key in the pending bucket: due, then task key.
func pendingKey(due time.Time, k taskKey) []byte { return join(nanos(due), k[:]) }

// entry is one queued task in memory.
type entry struct {
	id  string
	key taskKey
	// stored is the due time in the pending bucket.
	stored time.Time
	// due is when the task may be leased: stored, or the end of its lease.
	due time.Time
	// receives counts the leases since Open.
	receives int
	index    int // in schedule.due
	// payload is the task's payload while the file does not have it yet
	// (nil once the journaled write that set it, lsn, is applied).
	payload []byte
	lsn     uint64
	// value is Item.Value until a lease takes it.
	value any
	// settling: a Finish, Reschedule or DeadLetter of it is under way.
	settling bool
}

// schedule is the queue in memory: every queued task by id, by task key
// and in due order, and the ids being queued by a write not committed
// yet. Store.mu guards it.
type schedule struct {
	byID     map[string]*entry
	byKey    map[taskKey]*entry
	due      dueHeap
	reserved map[string]bool
	values   int // entries holding a value
}

// maxValues bounds the entries holding a decoded value (Item.Value), so
// that a long queue keeps only payloads' worth of memory.
const maxValues = 16384

func newSchedule() *schedule {
	return &schedule{byID: map[string]*entry{}, byKey: map[taskKey]*entry{}, reserved: map[string]bool{}}
}

// load reads the pending bucket.
func (q *schedule) load(tx *bolt.Tx) error {
	return tx.Bucket(bPending).ForEach(func(k, v []byte) error {
		if len(k) != 24 {
			return fmt.Errorf("pending entry %x: %d bytes, want 24", k, len(k))
		}
		e := &entry{id: string(v), stored: fromNanos(k[:8])}
		copy(e.key[:], k[8:])
		e.due = e.stored
		q.add(e)
		return nil
	})
}

// queued reports whether id is queued or being queued.
func (q *schedule) queued(id string) bool { return q.byID[id] != nil || q.reserved[id] }

func (q *schedule) add(e *entry) {
	q.byID[e.id], q.byKey[e.key] = e, e
	heap.Push(&q.due, e)
}

// keepValue sets e's value (replacing any), while fewer than maxValues
// entries hold one.
func (q *schedule) keepValue(e *entry, v any) {
	q.takeValue(e)
	if v != nil && q.values < maxValues {
		e.value = v
		q.values++
	}
}

// takeValue returns e's value and forgets it.
func (q *schedule) takeValue(e *entry) any {
	v := e.value
	if v != nil {
		e.value = nil
		q.values--
	}
	return v
}

// remove forgets e (if it is still the entry of its id).
func (q *schedule) remove(e *entry) {
	if q.byID[e.id] != e {
		return
	}
	q.takeValue(e)
	delete(q.byID, e.id)
	delete(q.byKey, e.key)
	heap.Remove(&q.due, e.index)
}

// setDue moves e to due (stored in the file as well).
func (q *schedule) setDue(e *entry, due time.Time) {
	e.stored, e.due = due, due
	if q.byID[e.id] == e {
		heap.Fix(&q.due, e.index)
	}
}

// lease takes up to max entries due at now and hides them until
// now+leaseFor, returning copies.
func (q *schedule) lease(now time.Time, max int, leaseFor time.Duration) []entry {
	var out []*entry
	for len(out) < max && q.due.Len() > 0 && !q.due[0].due.After(now) {
		out = append(out, heap.Pop(&q.due).(*entry))
	}
	copies := make([]entry, len(out))
	for i, e := range out {
		e.due = now.Add(leaseFor)
		e.receives++
		heap.Push(&q.due, e)
		copies[i] = *e
		copies[i].value = q.takeValue(e) // a later lease decodes the payload
	}
	return copies
}

// next is when the earliest entry is due.
func (q *schedule) next() (time.Time, bool) {
	if q.due.Len() == 0 {
		return time.Time{}, false
	}
	return q.due[0].due, true
}

// dueHeap orders entries by due time, then by task key (queue order).
type dueHeap []*entry

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return string(h[i].key[:]) < string(h[j].key[:])
}
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *dueHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.index = -1
	return e
}
