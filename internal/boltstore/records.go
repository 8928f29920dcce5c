package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/regtrigger/regtrigger/internal/record"
)

var _ record.Store = (*Records)(nil)

// Records is the trigger log side of the store.
type Records struct{ s *Store }

// Records returns the store's record.Store.
func (s *Store) Records() *Records { return &Records{s} }

// purgeBatch bounds how much one purge transaction deletes.
const purgeBatch = 1000

// Put stores a record.
func (rs *Records) Put(ctx context.Context, r record.Record) error {
	s := rs.s
	if r.Time.IsZero() {
		r.Time = s.now().UTC()
	}
	return s.update(ctx, "store record", func(tx *bolt.Tx) error {
		recs := tx.Bucket(bRecords)
		seq, err := recs.NextSequence()
		if err != nil {
			return err
		}
		key := join(nanos(r.Time), u64(seq))
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := recs.Put(key, b); err != nil {
			return err
		}
		if err := tx.Bucket(bRecordsTrigger).Put(join([]byte(r.Trigger+"\x00"), key), nil); err != nil {
			return err
		}
		return tx.Bucket(bRecordsTask).Put(join([]byte(r.TaskID+"\x00"), key), nil)
	})
}

// List returns records newest first. A trigger or task filter walks its
// index; the others filter while walking.
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
		// keys yields record keys newest first.
		var c *bolt.Cursor
		var prefix []byte
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
			// Position after the last key with the prefix.
			end := append(append([]byte(nil), prefix[:len(prefix)-1]...), 0x01)
			if k, _ = c.Seek(end); k == nil {
				k, _ = c.Last()
			} else {
				k, _ = c.Prev()
			}
		}
		for ; k != nil && len(out) < limit; k, _ = c.Prev() {
			key := k
			if prefix != nil {
				if !bytes.HasPrefix(k, prefix) {
					break
				}
				key = k[len(prefix):]
			}
			if bytes.Compare(key[:8], floor) < 0 {
				break
			}
			v := recs.Get(key)
			if v == nil {
				continue
			}
			var r record.Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode record: %w", err)
			}
			if (q.Status != "" && r.Status != q.Status) || (q.Trigger != "" && r.Trigger != q.Trigger) || (q.TaskID != "" && r.TaskID != q.TaskID) {
				continue
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// Purge deletes records and finished tasks older than the retention, and
// expired duplicate keys, in batches. It returns how many records went.
func (s *Store) Purge(ctx context.Context) (int, error) {
	total := 0
	cutoff := nanos(s.now().Add(-s.retention))
	for {
		n := 0
		err := s.update(ctx, "purge records", func(tx *bolt.Tx) error {
			recs := tx.Bucket(bRecords)
			c := recs.Cursor()
			for k, v := c.First(); k != nil && n < purgeBatch && bytes.Compare(k[:8], cutoff) < 0; k, v = c.First() {
				var r record.Record
				if err := json.Unmarshal(v, &r); err == nil {
					_ = tx.Bucket(bRecordsTrigger).Delete(join([]byte(r.Trigger+"\x00"), k))
					_ = tx.Bucket(bRecordsTask).Delete(join([]byte(r.TaskID+"\x00"), k))
				}
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		total += n
		if err != nil || n < purgeBatch {
			if err == nil {
				err = s.purgeRest(ctx, cutoff)
			}
			return total, err
		}
	}
}

// purgeRest removes expired duplicate keys and old finished tasks.
func (s *Store) purgeRest(ctx context.Context, cutoff []byte) error {
	now := nanos(s.now())
	return s.update(ctx, "purge keys", func(tx *bolt.Tx) error {
		d := tx.Bucket(bDedupe).Cursor()
		for k, v := d.First(); k != nil; k, v = d.Next() {
			if bytes.Compare(v, now) <= 0 {
				if err := d.Delete(); err != nil {
					return err
				}
			}
		}
		a := tx.Bucket(bArchiveTime).Cursor()
		for k, _ := a.First(); k != nil && bytes.Compare(k[:8], cutoff) < 0; k, _ = a.First() {
			if err := tx.Bucket(bArchive).Delete(k[8:]); err != nil {
				return err
			}
			if err := a.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
}
