package boltstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// keyHash is what the store keeps of a duplicate key: the first 16 bytes
// of its SHA-256. Registry fingerprints are 64 hex digits; 16 bytes keep
// the memory per key small, and a collision (which would make one event
// pass for another's duplicate) takes about 2^64 keys.
type keyHash [16]byte

func hashKey(key string) keyHash {
	sum := sha256.Sum256([]byte(key))
	return keyHash(sum[:16])
}

// claims are the live duplicate keys in memory, each with its expiry in
// Unix nanoseconds; the dedupe_expiry bucket holds them on disk, ordered
// by expiry, so that writing one appends and Purge deletes from the front.
// Store.mu guards it.
type claims map[keyHash]int64

// claimed is a key claimed in memory and not yet committed: what to
// write, and what to restore if the commit fails.
type claimed struct {
	h       keyHash
	expiry  int64
	prev    int64
	hadPrev bool
}

// load reads the keys that have not expired at now.
func (c claims) load(tx *bolt.Tx, now time.Time) error {
	cur := tx.Bucket(bDedupe).Cursor()
	for k, _ := cur.Seek(nanos(now)); k != nil; k, _ = cur.Next() {
		if len(k) != 24 {
			return fmt.Errorf("duplicate key entry %x: %d bytes, want 24", k, len(k))
		}
		h, exp := keyHash(k[8:]), int64(binary.BigEndian.Uint64(k[:8]))
		if exp > c[h] {
			c[h] = exp
		}
	}
	return nil
}

// claim reports whether key is new at now (absent or expired) and, if so,
// records it until now+ttl.
func (c claims) claim(key string, now time.Time, ttl time.Duration) (claimed, bool) {
	h := hashKey(key)
	prev, had := c[h]
	if had && prev > now.UnixNano() {
		return claimed{}, false
	}
	k := claimed{h: h, expiry: now.Add(ttl).UnixNano(), prev: prev, hadPrev: had}
	c[h] = k.expiry
	return k, true
}

// undo restores what claims of ks changed (their commit failed).
func (c claims) undo(ks []claimed) {
	for i := len(ks) - 1; i >= 0; i-- {
		k := ks[i]
		if c[k.h] != k.expiry {
			continue // claimed again since: not ours to restore
		}
		if k.hadPrev {
			c[k.h] = k.prev
		} else {
			delete(c, k.h)
		}
	}
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
		if err := b.Put(expiryKey(k.expiry, k.h), nil); err != nil {
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
