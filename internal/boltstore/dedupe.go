package boltstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/regtrigger/regtrigger/internal/localqueue"
)

// The live duplicate keys in memory are localqueue's Claims; the
// dedupe_expiry bucket holds them on disk, ordered by expiry, so that
// writing one appends and Purge deletes from the front.
type (
	keyHash = localqueue.KeyHash
	claims  = localqueue.Claims
	claimed = localqueue.Claim
)

func hashKey(key string) keyHash { return localqueue.HashKey(key) }

// loadClaims reads the keys that have not expired at now.
func loadClaims(tx *bolt.Tx, c claims, now time.Time) error {
	cur := tx.Bucket(bDedupe).Cursor()
	for k, _ := cur.Seek(nanos(now)); k != nil; k, _ = cur.Next() {
		if len(k) != 24 {
			return fmt.Errorf("duplicate key entry %x: %d bytes, want 24", k, len(k))
		}
		c.Keep(keyHash(k[8:]), int64(binary.BigEndian.Uint64(k[:8])))
	}
	return nil
}

// expiryKey is a key's entry in the dedupe_expiry bucket.
func expiryKey(expiry int64, h keyHash) []byte {
	if expiry < 0 {
		expiry = 0
	}
	return join(u64(uint64(expiry)), h[:])
}

// putClaims writes claimed keys.
func putClaims(tx *bolt.Tx, ks []claimed) error {
	b := appending(tx, bDedupe)
	for _, k := range ks {
		if err := b.Put(expiryKey(k.Expiry, k.Hash), nil); err != nil {
			return err
		}
	}
	return nil
}

// Claim records key until now+ttl and reports whether it was new: true if
// the key was absent or expired, false if it is live (a duplicate
// notification). Purge removes expired keys.
func (s *Store) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	fresh, err := s.claimEnqueue(ctx, "claim duplicate key", []Claimed{{Key: key, TTL: ttl}})
	if err != nil {
		return false, err
	}
	return fresh[0], nil
}

// Release forgets key, so that the registry's retry of a notification whose
// tasks could not be enqueued is not taken for a duplicate.
func (s *Store) Release(ctx context.Context, key string) error {
	h := hashKey(key)
	s.mu.Lock()
	expiry, ok := s.claims[h]
	s.mu.Unlock()
	if !ok {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("release duplicate key: %w", err)
		}
		return nil
	}
	if err := s.flush(ctx); err != nil {
		return fmt.Errorf("release duplicate key: %w", err)
	}
	err := s.update(ctx, "release duplicate key", func(tx *bolt.Tx) error {
		return tx.Bucket(bDedupe).Delete(expiryKey(expiry, h))
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.claims[h] == expiry {
		delete(s.claims, h)
	}
	s.mu.Unlock()
	return nil
}
