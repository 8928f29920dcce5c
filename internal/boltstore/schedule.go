package boltstore

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/regtrigger/regtrigger/internal/localqueue"
)

// taskKey names a task's payload in the tasks bucket: when it was queued
// (8 bytes of nanoseconds) and the bucket's sequence (8 bytes).
type taskKey = localqueue.TaskKey

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

// unapplied is what the store keeps beside a queued task in memory: its
// payload while the file does not have it yet (nil once the journaled
// write that set it, lsn, is applied).
type unapplied struct {
	payload []byte
	lsn     uint64
}

// The queue in memory (localqueue.Schedule). Store.mu guards it.
type (
	entry    = localqueue.Entry[unapplied]
	schedule = localqueue.Schedule[unapplied]
)

// maxValues bounds the entries holding a decoded value.
const maxValues = localqueue.MaxValues

func newSchedule() *schedule { return localqueue.NewSchedule[unapplied]() }

// loadSchedule reads the pending bucket into q.
func loadSchedule(q *schedule, tx *bolt.Tx) error {
	return tx.Bucket(bPending).ForEach(func(k, v []byte) error {
		if len(k) != 24 {
			return fmt.Errorf("pending entry %x: %d bytes, want 24", k, len(k))
		}
		e := &entry{ID: string(v), Stored: fromNanos(k[:8])}
		copy(e.Key[:], k[8:])
		e.Due = e.Stored
		q.Add(e)
		return nil
	})
}
