package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/regtrigger/regtrigger/internal/record"
)

// Records is a record.Store (not *Store itself: trigger.Store has a List
// method too, with other arguments).
var _ record.Store = (*Records)(nil)

// Records is the trigger log side of the store.
//
// A record's key is its time (8 bytes, big-endian nanoseconds) and the
// records bucket's next sequence (8 bytes), so keys are unique and in time
// order: newest first is a reverse cursor walk that stops at the retention
// (or Since) floor. records_trigger and records_task hold name 0x00 key for
// the two selective filters, so those queries walk only their own entries;
// the status filter is applied while walking.
type Records struct{ s *Store }

// Records returns the store's record.Store.
func (s *Store) Records() *Records { return &Records{s} }

// purgeBatch bounds how many entries one Purge transaction deletes (or, for
// duplicate keys, looks at), so Purge never holds the write lock for long.
const purgeBatch = 1000

// Put stores a record; a zero Time is now.
func (rs *Records) Put(ctx context.Context, r record.Record) error {
	if r.Time.IsZero() {
		r.Time = rs.s.now().UTC()
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("store record: encode record: %w", err)
	}
	// Batch may run this again after a rollback; the sequence (and so the
	// key) is then taken again in the new transaction.
	return rs.s.batch(ctx, "store record", func(tx *bolt.Tx) error { return putEncodedRecord(tx, r, b) })
}

// putRecord writes a record and its index entries.
func putRecord(tx *bolt.Tx, r record.Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode record: %w", err)
	}
	return putEncodedRecord(tx, r, b)
}

// putEncodedRecord writes a record encoded as b and its index entries.
func putEncodedRecord(tx *bolt.Tx, r record.Record, b []byte) error {
	recs := tx.Bucket(bRecords)
	seq, err := recs.NextSequence()
	if err != nil {
		return err
	}
	key := join(nanos(r.Time), u64(seq))
	if err := recs.Put(key, b); err != nil {
		return err
	}
	if r.Trigger != "" {
		if err := tx.Bucket(bRecordsTrigger).Put(indexKey(r.Trigger, key), nil); err != nil {
			return err
		}
	}
	if r.TaskID != "" {
		if err := tx.Bucket(bRecordsTask).Put(indexKey(r.TaskID, key), nil); err != nil {
			return err
		}
	}
	return nil
}

// indexKey is the records_trigger / records_task key of a record.
func indexKey(name string, key []byte) []byte { return join([]byte(name), []byte{0}, key) }

// List returns records newest first. A task or trigger filter walks its
// index (the task one when both are given); the others filter while walking.
// Records older than the retention are never returned.
func (rs *Records) List(ctx context.Context, q record.Query) ([]record.Record, error) {
	s := rs.s
	limit := q.Limit
	if limit <= 0 {
		limit = record.DefaultLimit
	}
	oldest := s.now().Add(-s.retention)
	if q.Since.After(oldest) {
		oldest = q.Since
	}
	floor := nanos(oldest)
	var out []record.Record
	err := s.view(ctx, "list records", func(tx *bolt.Tx) error {
		recs := tx.Bucket(bRecords)
		var c *bolt.Cursor
		var prefix []byte // index entries are prefix + record key
		switch {
		case q.TaskID != "":
			c, prefix = tx.Bucket(bRecordsTask).Cursor(), []byte(q.TaskID+"\x00")
		case q.Trigger != "":
			c, prefix = tx.Bucket(bRecordsTrigger).Cursor(), []byte(q.Trigger+"\x00")
		default:
			c = recs.Cursor()
		}
		var k []byte
		if prefix == nil {
			k, _ = c.Last()
		} else {
			// Seek to the first key after the prefix's range (name 0x01),
			// then step back to the prefix's newest entry.
			end := join(prefix[:len(prefix)-1], []byte{1})
			if k, _ = c.Seek(end); k == nil {
				k, _ = c.Last()
			} else {
				k, _ = c.Prev()
			}
		}
		for ; k != nil && len(out) < limit; k, _ = c.Prev() {
			key, v := k, []byte(nil)
			if prefix != nil {
				if !bytes.HasPrefix(k, prefix) {
					break
				}
				key = k[len(prefix):]
			}
			if len(key) < 8 || bytes.Compare(key[:8], floor) < 0 {
				break
			}
			if v = recs.Get(key); v == nil {
				continue // an index entry whose record Purge could not decode
			}
			var r record.Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode record: %w", err)
			}
			if (q.Status != "" && r.Status != q.Status) || (q.Trigger != "" && r.Trigger != q.Trigger) {
				continue
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Purge deletes records (with their index entries) and finished tasks
// older than the retention, and expired duplicate keys, each in
// transactions of at most purgeBatch entries. It returns how many records
// went. The caller runs it periodically.
func (s *Store) Purge(ctx context.Context) (int, error) {
	now := s.now()
	cutoff := nanos(now.Add(-s.retention))
	total := 0
	for {
		n, err := s.purgeRecords(ctx, cutoff)
		total += n
		if err != nil {
			return total, err
		}
		if n < purgeBatch {
			break
		}
	}
	for from := []byte{}; from != nil; {
		var err error
		if from, err = s.purgeKeys(ctx, from, nanos(now)); err != nil {
			return total, err
		}
	}
	for {
		n, err := s.purgeArchive(ctx, cutoff)
		if err != nil {
			return total, err
		}
		if n < purgeBatch {
			return total, nil
		}
	}
}

// purgeRecords deletes up to purgeBatch of the oldest records before cutoff.
func (s *Store) purgeRecords(ctx context.Context, cutoff []byte) (int, error) {
	n := 0
	err := s.update(ctx, "purge records", func(tx *bolt.Tx) error {
		recs := tx.Bucket(bRecords)
		byTrigger, byTask := tx.Bucket(bRecordsTrigger), tx.Bucket(bRecordsTask)
		var keys [][]byte
		c := recs.Cursor()
		for k, v := c.First(); k != nil && len(keys) < purgeBatch && bytes.Compare(k, cutoff) < 0; k, v = c.Next() {
			key := bytes.Clone(k)
			keys = append(keys, key)
			var r record.Record
			if err := json.Unmarshal(v, &r); err != nil {
				continue // its index entries (if any) stay; List skips them
			}
			if r.Trigger != "" {
				if err := byTrigger.Delete(indexKey(r.Trigger, key)); err != nil {
					return err
				}
			}
			if r.TaskID != "" {
				if err := byTask.Delete(indexKey(r.TaskID, key)); err != nil {
					return err
				}
			}
		}
		for _, k := range keys {
			if err := recs.Delete(k); err != nil {
				return err
			}
		}
		n = len(keys)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// purgeKeys looks at up to purgeBatch duplicate keys from from on, deletes
// the expired ones and returns where to go on (nil at the end).
func (s *Store) purgeKeys(ctx context.Context, from, now []byte) ([]byte, error) {
	var next []byte
	err := s.update(ctx, "purge duplicate keys", func(tx *bolt.Tx) error {
		b := tx.Bucket(bDedupe)
		var expired [][]byte
		c := b.Cursor()
		seen := 0
		k, v := c.Seek(from)
		for ; k != nil && seen < purgeBatch; k, v = c.Next() {
			seen++
			if bytes.Compare(v, now) <= 0 {
				expired = append(expired, bytes.Clone(k))
			}
		}
		if k != nil {
			next = bytes.Clone(k)
		}
		for _, k := range expired {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	return next, err
}

// purgeArchive deletes up to purgeBatch of the oldest finished tasks
// archived before cutoff.
func (s *Store) purgeArchive(ctx context.Context, cutoff []byte) (int, error) {
	n := 0
	err := s.update(ctx, "purge finished tasks", func(tx *bolt.Tx) error {
		byTime, archive := tx.Bucket(bArchiveTime), tx.Bucket(bArchive)
		var keys [][]byte
		c := byTime.Cursor()
		for k, _ := c.First(); k != nil && len(keys) < purgeBatch && bytes.Compare(k, cutoff) < 0; k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			if err := archive.Delete(k[8:]); err != nil {
				return err
			}
			if err := byTime.Delete(k); err != nil {
				return err
			}
		}
		n = len(keys)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
