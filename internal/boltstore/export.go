package boltstore

import (
	"bytes"
	"context"

	bolt "go.etcd.io/bbolt"
)

// Export calls fn with every key and value of every bucket but meta,
// bucket by bucket in key order, once the journal is applied: for moving
// the store to another engine (pebblestore.MigrateBolt). k and v are valid
// only during the call.
func (s *Store) Export(ctx context.Context, fn func(bucket string, k, v []byte) error) error {
	if err := s.flush(ctx); err != nil {
		return err
	}
	return s.view(ctx, "export the store", func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if bytes.Equal(name, bMeta) {
				continue
			}
			err := tx.Bucket(name).ForEach(func(k, v []byte) error { return fn(string(name), k, v) })
			if err != nil {
				return err
			}
		}
		return nil
	})
}
