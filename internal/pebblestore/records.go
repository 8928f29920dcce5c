package pebblestore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/regtrigger/regtrigger/internal/localqueue"
	"github.com/regtrigger/regtrigger/internal/record"
)

var _ record.Store = (*Records)(nil)

// Records is the trigger log side of the store (a record.Store).
//
// A record's key is 'r', its time and the store's next sequence, so keys
// are unique and in time order: newest first is a reverse walk that stops
// at the retention (or Since) floor. The 'g' (trigger) and 'a' (task)
// index keys let those two filters walk only their own entries; the
// status filter is applied while walking.
type Records struct{ s *Store }

// Records returns the store's record.Store.
func (s *Store) Records() *Records { return &Records{s} }

// purgeBatch bounds how many entries one Purge batch deletes.
const purgeBatch = 1000

// storedRecord is a record as the store keeps it (localqueue.StoredRecord).
type storedRecord = localqueue.StoredRecord

// putRecord adds r (nothing for nil) and its index keys to b; task, when
// not nil, is the task key its 'a' entry names.
func (s *Store) putRecord(b *pebble.Batch, r *storedRecord, task []byte) error {
	if r == nil {
		return nil
	}
	k := key(r.At, s.seq.Add(1))
	err := b.Set(key(kRecord, k), r.JSON, nil)
	if r.Trigger != "" {
		err = errors.Join(err, b.Set(key(kRecTrigger, r.Trigger, byte(0), k), nil, nil))
	}
	if r.TaskID != "" {
		err = errors.Join(err, b.Set(key(kRecTask, r.TaskID, byte(0), k), task, nil))
	}
	return err
}

// Put stores a record; a zero Time is now. The record of an attempt of a
// queued task names the task's payload (see keptTask).
func (rs *Records) Put(ctx context.Context, r record.Record) error {
	const what = "store record"
	s := rs.s
	rec, err := localqueue.EncodeRecord(&r, s.now())
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	var task []byte
	s.mu.Lock()
	if e := s.queue.ByID[r.TaskID]; e != nil && r.TaskID != "" {
		task = e.Key[:]
	}
	s.mu.Unlock()
	return s.commit(ctx, what, func(b *pebble.Batch) error { return s.putRecord(b, rec, task) })
}

// List returns records newest first. A task or trigger filter walks its
// index (the task one when both are given); the others filter while
// walking. Records older than the retention are never returned.
func (rs *Records) List(ctx context.Context, q record.Query) ([]record.Record, error) {
	s := rs.s
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list records: %w", err)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = record.DefaultLimit
	}
	oldest := s.now().Add(-s.retention)
	if q.Since.After(oldest) {
		oldest = q.Since
	}
	floor := nanos(oldest)
	var prefix []byte // index keys are prefix + record key
	switch {
	case q.TaskID != "":
		prefix = key(kRecTask, q.TaskID, byte(0))
	case q.Trigger != "":
		prefix = key(kRecTrigger, q.Trigger, byte(0))
	default:
		prefix = []byte{kRecord}
	}
	var out []record.Record
	err := s.scan(bounds{key(prefix, floor), prefixEnd(prefix)}, true, func(k, v []byte) (bool, error) {
		if prefix[0] != kRecord {
			var err error
			switch v, err = s.get(key(kRecord, k[len(prefix):])); {
			case errors.Is(err, pebble.ErrNotFound):
				return true, nil // an index entry whose record Purge could not decode
			case err != nil:
				return false, err
			}
		}
		var r record.Record
		if err := json.Unmarshal(v, &r); err != nil {
			return false, fmt.Errorf("decode record: %w", err)
		}
		if (q.Status == "" || r.Status == q.Status) && (q.Trigger == "" || r.Trigger == q.Trigger) {
			out = append(out, r)
		}
		return len(out) < limit, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list records: %w", err)
	}
	return out, nil
}

// Purge deletes records (with their index keys) and kept tasks older than
// the retention, expired duplicate keys and coalesce windows, in batches of at most
// purgeBatch entries. It returns how many records went. The caller runs it
// periodically; it is cheap when nothing has expired.
func (s *Store) Purge(ctx context.Context) (int, error) {
	now := s.now()
	cutoff := now.Add(-s.retention)
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
	if err := s.purgeClaims(ctx, now); err != nil {
		return total, err
	}
	if err := s.purgeWindows(ctx, now); err != nil {
		return total, err
	}
	for from := key(kTask); from != nil; {
		var err error
		if from, err = s.purgeTasks(ctx, from, cutoff); err != nil {
			return total, err
		}
	}
	return total, nil
}

// purgeRecords deletes up to purgeBatch of the oldest records before cutoff.
func (s *Store) purgeRecords(ctx context.Context, cutoff time.Time) (int, error) {
	n := 0
	err := s.commit(ctx, "purge records", func(b *pebble.Batch) error {
		return s.scan(bounds{[]byte{kRecord}, key(kRecord, cutoff)}, false, func(k, v []byte) (bool, error) {
			n++
			rk := k[1:]
			err := b.Delete(k, nil)
			var r record.Record
			if json.Unmarshal(v, &r) == nil {
				if r.Trigger != "" {
					err = errors.Join(err, b.Delete(key(kRecTrigger, r.Trigger, byte(0), rk), nil))
				}
				if r.TaskID != "" {
					err = errors.Join(err, b.Delete(key(kRecTask, r.TaskID, byte(0), rk), nil))
				}
			} // else its index entries (if any) stay; List skips them
			return n < purgeBatch, err
		})
	})
	return n, err
}

// purgeClaims deletes the duplicate keys expired at now, in the store (one
// range deletion: they are ordered by expiry) and in memory.
func (s *Store) purgeClaims(ctx context.Context, now time.Time) error {
	err := s.commit(ctx, "purge duplicate keys", func(b *pebble.Batch) error {
		return b.DeleteRange([]byte{kDedupe}, key(kDedupe, now.Add(time.Nanosecond)), nil)
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	for h, exp := range s.claims {
		if exp <= now.UnixNano() {
			delete(s.claims, h)
		}
	}
	s.mu.Unlock()
	return nil
}

// purgeTasks looks at up to purgeBatch kept tasks queued before cutoff,
// from from on, deletes those that are not queued any more, and returns
// where to go on (nil at the end). A task still queued (retrying for
// longer than the retention) stays.
func (s *Store) purgeTasks(ctx context.Context, from []byte, cutoff time.Time) ([]byte, error) {
	var next []byte
	err := s.commit(ctx, "purge finished tasks", func(b *pebble.Batch) error {
		seen := 0
		var gone [][]byte
		err := s.scan(bounds{from, key(kTask, cutoff)}, false, func(k, _ []byte) (bool, error) {
			if seen == purgeBatch {
				next = bytes.Clone(k)
				return false, nil
			}
			seen++
			gone = append(gone, bytes.Clone(k))
			return true, nil
		})
		if err != nil {
			return err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, k := range gone {
			if len(k) != 17 || s.queue.ByKey[taskKey(k[1:])] == nil {
				err = errors.Join(err, b.Delete(k, nil))
			}
		}
		return err
	})
	return next, err
}
