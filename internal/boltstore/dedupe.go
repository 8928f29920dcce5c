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
	var fresh bool
	now := s.now()
	err := s.batch(ctx, "claim duplicate key", func(tx *bolt.Tx) error {
		// Batch may run this again after a rollback: decide afresh.
		var err error
		fresh, err = claim(tx, key, now, ttl)
		return err
	})
	if err != nil {
		return false, err
	}
	return fresh, nil
}

// claim records key until now+ttl in tx and reports whether it was new.
func claim(tx *bolt.Tx, key string, now time.Time, ttl time.Duration) (bool, error) {
	b := tx.Bucket(bDedupe)
	if v := b.Get([]byte(key)); v != nil && bytes.Compare(v, nanos(now)) > 0 {
		return false, nil
	}
	return true, b.Put([]byte(key), nanos(now.Add(ttl)))
}

// Release forgets key, so that the registry's retry of a notification whose
// tasks could not be enqueued is not taken for a duplicate.
func (s *Store) Release(ctx context.Context, key string) error {
	return s.update(ctx, "release duplicate key", func(tx *bolt.Tx) error {
		return tx.Bucket(bDedupe).Delete([]byte(key))
	})
}
