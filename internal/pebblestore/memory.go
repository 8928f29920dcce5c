package pebblestore

import (
	"container/heap"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/regtrigger/regtrigger/internal/localqueue"
)

// taskKey names a task's payload: when it was queued (8 bytes of
// nanoseconds) and the store's sequence (8 bytes).
type taskKey [16]byte

// entry is one queued task in memory.
type entry struct {
	id  string
	key taskKey
	// stored is the due time of its pending entry.
	stored time.Time
	// due is when the task may be leased: stored, or the end of its lease.
	due      time.Time
	receives int // leases since Open
	index    int // in schedule.due
	value    any // Item.Value until a lease takes it
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
	values   int
}

// maxValues bounds the entries holding a decoded value (Item.Value).
const maxValues = 16384

func newSchedule() *schedule {
	return &schedule{byID: map[string]*entry{}, byKey: map[taskKey]*entry{}, reserved: map[string]bool{}}
}

// queued reports whether id is queued or being queued.
func (q *schedule) queued(id string) bool { return q.byID[id] != nil || q.reserved[id] }

func (q *schedule) add(e *entry) {
	q.byID[e.id], q.byKey[e.key] = e, e
	heap.Push(&q.due, e)
}

// keepValue sets e's value while fewer than maxValues entries hold one.
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

// setDue moves e to due (stored as well).
func (q *schedule) setDue(e *entry, due time.Time) {
	e.stored, e.due = due, due
	if q.byID[e.id] == e {
		heap.Fix(&q.due, e.index)
	}
}

// lease takes up to max entries due at now and hides them until
// now+leaseFor, returning copies that carry the values.
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
		copies[i].value = q.takeValue(e)
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

// The live duplicate keys in memory are localqueue's Claims; the 'd'
// keys hold them, ordered by expiry. Store.mu guards them.
type (
	keyHash = localqueue.KeyHash
	claims  = localqueue.Claims
	claimed = localqueue.Claim
)

func hashKey(key string) keyHash { return localqueue.HashKey(key) }

// loadClaims reads the keys that have not expired at now.
func loadClaims(s *Store, c claims, now time.Time) error {
	return s.scan(bounds{key(kDedupe, now), prefixEnd([]byte{kDedupe})}, false, func(k, _ []byte) (bool, error) {
		if len(k) != 25 {
			return false, fmt.Errorf("duplicate key entry %x: %d bytes, want 25", k, len(k))
		}
		c.Keep(keyHash(k[9:]), int64(binary.BigEndian.Uint64(k[1:9])))
		return true, nil
	})
}

// expiryKey is a duplicate key's entry.
func expiryKey(expiry int64, h keyHash) []byte {
	return key(kDedupe, uint64(max(expiry, 0)), h[:])
}
