package boltstore

import (
	"bytes"
	"context"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Claim records key until now+ttl and reports whether it was new: true if
// the key was absent or expired, false if it is live (a duplicate
// notification). Purge removes expired keys.
func (s *Store) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	fresh := false
	now := s.now()
	err := s.update(ctx, "claim duplicate key", func(tx *bolt.Tx) error {
		b := tx.Bucket(bDedupe)
		if v := b.Get([]byte(key)); v != nil && bytes.Compare(v, nanos(now)) > 0 {
			return nil
		}
		fresh = true
		return b.Put([]byte(key), nanos(now.Add(ttl)))
	})
	if err != nil {
		return false, err
	}
	return fresh, nil
}

// Release forgets key, so that the registry's retry of a notification whose
// tasks could not be enqueued is not taken for a duplicate.
func (s *Store) Release(ctx context.Context, key string) error {
	return s.update(ctx, "release duplicate key", func(tx *bolt.Tx) error {
		return tx.Bucket(bDedupe).Delete([]byte(key))
	})
}
