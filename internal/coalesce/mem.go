package coalesce

import (
	"context"
	"errors"
	"sync"
	"time"
)

// MemStore is a Store in this process's memory: for one process that
// keeps nothing across a restart, and for tests.
type MemStore struct {
	mu   sync.Mutex
	docs map[string][]byte
}

var _ Store = (*MemStore)(nil)

// Update is Store.Update under one lock; ttl is not kept (the windows
// inside expire by themselves).
func (s *MemStore) Update(ctx context.Context, key string, _ time.Duration, fn func(old []byte) ([]byte, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := fn(s.docs[key])
	switch {
	case errors.Is(err, ErrUnchanged):
		return nil
	case err != nil:
		return err
	}
	if s.docs == nil {
		s.docs = map[string][]byte{}
	}
	if b == nil {
		delete(s.docs, key)
	} else {
		s.docs[key] = b
	}
	return nil
}
