package pebblestore

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/regtrigger/regtrigger/internal/localqueue"
)

// taskKey names a task's payload: when it was queued (8 bytes of
// nanoseconds) and the store's sequence (8 bytes).
type taskKey = localqueue.TaskKey

// The queue in memory (localqueue.Schedule): every queued task by id, by
// task key and in due order. Store.mu guards it.
type (
	entry    = localqueue.Entry[struct{}]
	schedule = localqueue.Schedule[struct{}]
)

// maxValues bounds the entries holding a decoded value (Item.Value).
const maxValues = localqueue.MaxValues

func newSchedule() *schedule { return localqueue.NewSchedule[struct{}]() }

// The live duplicate keys in memory are localqueue's Claims; the 'd'
// keys hold them, ordered by expiry. Store.mu guards them.
type (
	keyHash = localqueue.KeyHash
	claims  = localqueue.Claims
	claimed = localqueue.Claim
)

func hashKey(key string) keyHash { return localqueue.HashKey(key) }

// loadClaims reads the keys that have not expired at now.
func loadClaims(s *Store, c claims, now time.Time) error {
	return s.scan(bounds{key(kDedupe, now), prefixEnd([]byte{kDedupe})}, false, func(k, _ []byte) (bool, error) {
		if len(k) != 25 {
			return false, fmt.Errorf("duplicate key entry %x: %d bytes, want 25", k, len(k))
		}
		c.Keep(keyHash(k[9:]), int64(binary.BigEndian.Uint64(k[1:9])))
		return true, nil
	})
}

// expiryKey is a duplicate key's entry.
func expiryKey(expiry int64, h keyHash) []byte {
	return key(kDedupe, uint64(max(expiry, 0)), h[:])
}
