package localqueue

import (
	"crypto/sha256"
	"time"
)

// KeyHash is what an embedded store keeps of a duplicate key: the first
// 16 bytes of its SHA-256. Registry fingerprints are 64 hex digits; 16
// bytes keep the memory per key small, and a collision (which would make
// one event pass for another's duplicate) takes about 2^64 keys.
type KeyHash [16]byte

// HashKey is key's KeyHash.
func HashKey(key string) KeyHash {
	sum := sha256.Sum256([]byte(key))
	return KeyHash(sum[:16])
}

// Claims are an embedded store's live duplicate keys in memory, each with
// its expiry in Unix nanoseconds, so that ClaimEnqueue decides whether a
// key is new without reading the store. The store guards it with its
// lock and keeps the keys on disk too.
type Claims map[KeyHash]int64

// Claim is a key claimed in memory and not yet committed: what to write
// (Hash, Expiry), and what to restore if the commit fails.
type Claim struct {
	Hash    KeyHash
	Expiry  int64
	prev    int64
	hadPrev bool
}

// Keep records a stored key (at Open), keeping the later expiry.
func (c Claims) Keep(h KeyHash, expiry int64) {
	if expiry > c[h] {
		c[h] = expiry
	}
}

// Claim reports whether key is new at now (absent or expired) and, if so,
// records it until now+ttl.
func (c Claims) Claim(key string, now time.Time, ttl time.Duration) (Claim, bool) {
	h := HashKey(key)
	prev, had := c[h]
	if had && prev > now.UnixNano() {
		return Claim{}, false
	}
	k := Claim{Hash: h, Expiry: now.Add(ttl).UnixNano(), prev: prev, hadPrev: had}
	c[h] = k.Expiry
	return k, true
}

// Undo restores what the claims of ks changed (their commit failed).
func (c Claims) Undo(ks []Claim) {
	for i := len(ks) - 1; i >= 0; i-- {
		k := ks[i]
		if c[k.Hash] != k.Expiry {
			continue // claimed again since: not ours to restore
		}
		if k.hadPrev {
			c[k.Hash] = k.prev
		} else {
			delete(c, k.Hash)
		}
	}
}
