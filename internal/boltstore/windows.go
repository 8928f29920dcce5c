package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/regtrigger/regtrigger/internal/coalesce"
)

// Windows is the store's coalesce.Store: the coalesce bucket, key ->
// expiry (8 bytes, Unix nanoseconds) and the key's document. Each Update
// is one bbolt transaction on the file (nothing journaled touches the
// bucket), so only triggers with a coalesce window pay for one; Purge
// deletes the documents whose expiry passed.
type Windows struct{ s *Store }

var _ coalesce.Store = (*Windows)(nil)

// Windows returns the store's coalesce windows.
func (s *Store) Windows() *Windows { return &Windows{s} }

// Update is coalesce.Store.Update in one transaction.
func (w *Windows) Update(ctx context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) error {
	err := w.s.update(ctx, "update coalesce window "+key, func(tx *bolt.Tx) error {
		b := tx.Bucket(bCoalesce)
		var old []byte
		if v := b.Get([]byte(key)); len(v) >= 8 && binary.BigEndian.Uint64(v) > uint64(w.s.now().UnixNano()) {
			old = v[8:]
		}
		doc, err := fn(old)
		switch {
		case err != nil:
			return err // coalesce.ErrUnchanged too: nothing written
		case doc == nil:
			return b.Delete([]byte(key))
		}
		return b.Put([]byte(key), append(nanos(w.s.now().Add(ttl)), doc...))
	})
	if errors.Is(err, coalesce.ErrUnchanged) {
		return nil
	}
	return err
}

// purgeWindows deletes up to purgeBatch window documents expired at now.
func (s *Store) purgeWindows(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := s.update(ctx, "purge coalesce windows", func(tx *bolt.Tx) error {
		b := tx.Bucket(bCoalesce)
		var gone [][]byte
		c := b.Cursor()
		for k, v := c.First(); k != nil && len(gone) < purgeBatch; k, v = c.Next() {
			if len(v) < 8 || bytes.Compare(v[:8], nanos(now)) <= 0 {
				gone = append(gone, bytes.Clone(k))
			}
		}
		for _, k := range gone {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		if n = len(gone); n == 0 {
			return errUnchanged
		}
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return 0, nil
	}
	return n, err
}
