package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/regtrigger/regtrigger/internal/localqueue"
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

// Put stores a record; a zero Time is now. The record of an attempt of a
// queued task names the task's payload (see keptTask). It returns once the
// record is in the journal.
func (rs *Records) Put(ctx context.Context, r record.Record) error {
	const what = "store record"
	s := rs.s
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	rec, err := localqueue.EncodeRecord(&r, s.now())
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	o := &op{kind: opRecord, rec: rec}
	s.mu.Lock()
	if e := s.queue.ByID[r.TaskID]; e != nil && r.TaskID != "" {
		o.task, o.hasTask = e.Key, true
	}
	w := s.submitLocked(o)
	s.mu.Unlock()
	err = w.Wait()
	s.mu.Lock()
	s.settleLocked(o, err)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
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
	if err := s.flush(ctx); err != nil {
		return nil, fmt.Errorf("list records: %w", err)
	}
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

// Purge deletes records (with their index entries) and kept tasks older
// than the retention, expired duplicate keys and coalesce windows, each in transactions of
// at most purgeBatch entries. It returns how many records went. The caller
// runs it periodically; it is cheap when nothing has expired.
func (s *Store) Purge(ctx context.Context) (int, error) {
	if err := s.flush(ctx); err != nil {
		return 0, fmt.Errorf("purge records: %w", err)
	}
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
	for {
		n, err := s.purgeClaims(ctx, now)
		if err != nil {
			return total, err
		}
		if n < purgeBatch {
			break
		}
	}
	for {
		n, err := s.purgeWindows(ctx, now)
		if err != nil {
			return total, err
		}
		if n < purgeBatch {
			break
		}
	}
	for from := []byte{}; from != nil; {
		var err error
		if from, err = s.purgeTasks(ctx, from, cutoff); err != nil {
			return total, err
		}
	}
	return total, nil
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
		if n = len(keys); n == 0 {
			return errUnchanged
		}
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}

// purgeClaims deletes up to purgeBatch duplicate keys expired at now, on
// disk and in memory.
func (s *Store) purgeClaims(ctx context.Context, now time.Time) (int, error) {
	var gone [][]byte
	err := s.update(ctx, "purge duplicate keys", func(tx *bolt.Tx) error {
		gone = gone[:0]
		b := tx.Bucket(bDedupe)
		c := b.Cursor()
		// Keys start with their expiry; a shorter one (a damaged file)
		// sorts first and goes too.
		for k, _ := c.First(); k != nil && len(gone) < purgeBatch && bytes.Compare(k[:min(len(k), 8)], nanos(now)) <= 0; k, _ = c.Next() {
			gone = append(gone, bytes.Clone(k))
		}
		for _, k := range gone {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		if len(gone) == 0 {
			return errUnchanged
		}
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	for _, k := range gone {
		if len(k) != 24 {
			continue
		}
		h := keyHash(k[8:])
		if exp, ok := s.claims[h]; ok && exp <= now.UnixNano() {
			delete(s.claims, h)
		}
	}
	s.mu.Unlock()
	return len(gone), nil
}

// purgeTasks looks at up to purgeBatch kept tasks queued before cutoff,
// from from on, deletes those that are not queued any more, and returns
// where to go on (nil at the end). A task still queued (retrying for
// longer than the retention) stays.
func (s *Store) purgeTasks(ctx context.Context, from, cutoff []byte) ([]byte, error) {
	var next []byte
	err := s.update(ctx, "purge finished tasks", func(tx *bolt.Tx) error {
		next = nil
		tasks := tx.Bucket(bTasks)
		var gone [][]byte
		c := tasks.Cursor()
		seen := 0
		k, _ := c.Seek(from)
		s.mu.Lock()
		for ; k != nil && seen < purgeBatch && bytes.Compare(k, cutoff) < 0; k, _ = c.Next() {
			seen++
			if len(k) != len(taskKey{}) || s.queue.ByKey[taskKey(k)] == nil {
				gone = append(gone, bytes.Clone(k))
			}
		}
		s.mu.Unlock()
		if k != nil && bytes.Compare(k, cutoff) < 0 {
			next = bytes.Clone(k)
		}
		for _, k := range gone {
			if err := tasks.Delete(k); err != nil {
				return err
			}
		}
		if len(gone) == 0 {
			return errUnchanged
		}
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return next, nil
	}
	return next, err
}
