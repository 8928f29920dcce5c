package boltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The buckets of schema 1 that schema 2 replaced:
//
//	queue        id        -> item JSON {payload (base64), due, receives, leased}
//	queue_due    due id    -> (empty)
//	archive      id        -> payload of a finished task
//	archive_time time id   -> (empty)
//	dedupe       key       -> expiry (8 bytes of nanoseconds)
var (
	v1Queue       = []byte("queue")
	v1QueueDue    = []byte("queue_due")
	v1Archive     = []byte("archive")
	v1ArchiveTime = []byte("archive_time")
	v1Dedupe      = []byte("dedupe")
)

// v1Item is a schema 1 queue item.
type v1Item struct {
	Payload []byte    `json:"payload"`
	Due     time.Time `json:"due"`
	Leased  bool      `json:"leased,omitempty"`
}

// migrateV1 converts a schema 1 file in tx, whose schema 2 buckets exist:
//   - every queued item becomes a task and a pending entry, due when it
//     was (a leased one now: no process holds its lease); an item that
//     cannot be decoded becomes a dead letter;
//   - every finished task becomes a kept task, queued at the time it was
//     archived, and the records of its attempts name it (for redeliver);
//   - every live duplicate key moves to dedupe_expiry.
//
// The schema 1 buckets are deleted.
func migrateV1(tx *bolt.Tx, now time.Time) error {
	tasks, pending := tx.Bucket(bTasks), tx.Bucket(bPending)
	if q := tx.Bucket(v1Queue); q != nil {
		err := q.ForEach(func(id, v []byte) error {
			var it v1Item
			if err := json.Unmarshal(v, &it); err != nil {
				return deadLetter(tx, string(id), bytes.Clone(v), fmt.Errorf("undecodable schema 1 queue item: %w", err), now)
			}
			due := it.Due
			if it.Leased || due.IsZero() {
				due = now
			}
			k, err := newTaskKey(tasks, now)
			if err != nil {
				return err
			}
			if err := tasks.Put(k[:], it.Payload); err != nil {
				return err
			}
			return pending.Put(pendingKey(due, k), bytes.Clone(id))
		})
		if err != nil {
			return fmt.Errorf("queue: %w", err)
		}
	}
	if err := migrateArchive(tx); err != nil {
		return fmt.Errorf("finished tasks: %w", err)
	}
	if old := tx.Bucket(v1Dedupe); old != nil {
		err := old.ForEach(func(key, v []byte) error {
			if len(v) != 8 || !fromNanos(v).After(now) {
				return nil // expired (or unreadable): forgotten
			}
			return tx.Bucket(bDedupe).Put(expiryKey(int64(binary.BigEndian.Uint64(v)), hashKey(string(key))), nil)
		})
		if err != nil {
			return fmt.Errorf("duplicate keys: %w", err)
		}
	}
	for _, b := range [][]byte{v1Queue, v1QueueDue, v1Archive, v1ArchiveTime, v1Dedupe} {
		if tx.Bucket(b) == nil {
			continue
		}
		if err := tx.DeleteBucket(b); err != nil {
			return fmt.Errorf("delete bucket %s: %w", b, err)
		}
	}
	return nil
}

// migrateArchive keeps every archived task as a task queued at its archive
// time and points the records_task entries of its id at it.
func migrateArchive(tx *bolt.Tx) error {
	archive, byTime := tx.Bucket(v1Archive), tx.Bucket(v1ArchiveTime)
	if archive == nil || byTime == nil {
		return nil
	}
	tasks, byTask := tx.Bucket(bTasks), tx.Bucket(bRecordsTask)
	return byTime.ForEach(func(k, _ []byte) error {
		if len(k) <= 8 {
			return nil
		}
		id := k[8:]
		payload := archive.Get(id)
		if payload == nil {
			return nil
		}
		tk, err := newTaskKey(tasks, fromNanos(k[:8]))
		if err != nil {
			return err
		}
		if err := tasks.Put(tk[:], bytes.Clone(payload)); err != nil {
			return err
		}
		// Collect first: a bucket must not change under its cursor.
		prefix := join(id, []byte{0})
		var entries [][]byte
		c := byTask.Cursor()
		for ik, _ := c.Seek(prefix); ik != nil && bytes.HasPrefix(ik, prefix); ik, _ = c.Next() {
			entries = append(entries, bytes.Clone(ik))
		}
		for _, ik := range entries {
			if err := byTask.Put(ik, tk[:]); err != nil {
				return err
			}
		}
		return nil
	})
}
