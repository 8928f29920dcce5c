package pebblestore

import (
	"context"
	"encoding/binary"
	"errors"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/regtrigger/regtrigger/internal/coalesce"
)

// Windows is the store's coalesce.Store: 'w' key -> expiry (8 bytes, Unix
// nanoseconds) and the key's document. One process owns the directory, so
// a mutex makes each Update's read and synced write one step; Purge
// deletes the documents whose expiry passed. Only triggers with a
// coalesce window write here.
type Windows struct{ s *Store }

var _ coalesce.Store = (*Windows)(nil)

// Windows returns the store's coalesce windows.
func (s *Store) Windows() *Windows { return &Windows{s} }

// Update is coalesce.Store.Update under the store's window lock.
func (w *Windows) Update(ctx context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) error {
	w.s.windowMu.Lock()
	defer w.s.windowMu.Unlock()
	k := windowKey(key)
	v, err := w.s.get(k)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		v = nil
	case err != nil:
		return err
	}
	now := w.s.now()
	var old []byte
	if len(v) >= 8 && binary.BigEndian.Uint64(v) > uint64(now.UnixNano()) {
		old = v[8:]
	}
	doc, err := fn(old)
	switch {
	case errors.Is(err, coalesce.ErrUnchanged):
		return nil
	case err != nil:
		return err
	}
	return w.s.commit(ctx, "update coalesce window "+key, func(b *pebble.Batch) error {
		if doc == nil {
			return b.Delete(k, nil)
		}
		return b.Set(k, append(nanos(now.Add(ttl)), doc...), nil)
	})
}

func windowKey(k string) []byte { return key(kWindow, k) }

// purgeWindows deletes the window documents expired at now.
func (s *Store) purgeWindows(ctx context.Context, now time.Time) error {
	s.windowMu.Lock()
	defer s.windowMu.Unlock()
	return s.commit(ctx, "purge coalesce windows", func(b *pebble.Batch) error {
		return s.scan(span(kWindow), false, func(k, v []byte) (bool, error) {
			if len(v) < 8 || binary.BigEndian.Uint64(v) <= uint64(now.UnixNano()) {
				return true, b.Delete(k, nil)
			}
			return true, nil
		})
	})
}
