package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/regtrigger/regtrigger/internal/receiver"
)

var _ receiver.Dedupe = (*Store)(nil)

// Claim records key for ttl and reports whether it was new: one SET NX PX,
// so of racing claims exactly one wins, and Redis expires the key.
func (s *Store) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ok, err := s.rdb.SetNX(ctx, s.key("dedupe", key), "1", max(ttl, time.Millisecond)).Result()
	if err != nil {
		return false, fmt.Errorf("claim duplicate key: %w", err)
	}
	return ok, nil
}

// Release forgets key, so the next Claim of it wins.
func (s *Store) Release(ctx context.Context, key string) error {
	if err := s.rdb.Del(ctx, s.key("dedupe", key)).Err(); err != nil {
		return fmt.Errorf("release duplicate key: %w", err)
	}
	return nil
}
