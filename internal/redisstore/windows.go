package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/regtrigger/regtrigger/internal/coalesce"
)

var _ coalesce.Store = (*Windows)(nil)

// Windows is the coalesce windows: one string per window key,
// {p}:coalesce:<key>, expiring ttl after its last write. An Update is
// WATCH, GET, then MULTI/EXEC of the SET (or DEL), tried again when
// another writer changed the key in between; one that changes nothing is
// the GET alone.
type Windows struct{ s *Store }

// Windows returns the store's coalesce windows.
func (s *Store) Windows() *Windows { return &Windows{s} }

// Update is coalesce.Store.Update under WATCH.
func (w *Windows) Update(ctx context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) error {
	k := w.s.key("coalesce", key)
	err := coalesce.CAS(ctx, func() (bool, error) {
		err := w.s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			old, err := tx.Get(ctx, k).Bytes()
			if errors.Is(err, redis.Nil) {
				old, err = nil, nil
			}
			if err != nil {
				return fmt.Errorf("read: %w", err)
			}
			doc, err := fn(old)
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				if doc == nil {
					p.Del(ctx, k)
				} else {
					p.Set(ctx, k, doc, max(ttl, time.Millisecond))
				}
				return nil
			})
			return err
		}, k)
		switch {
		case errors.Is(err, redis.TxFailedErr):
			return false, nil // another writer won: read again
		case errors.Is(err, coalesce.ErrUnchanged):
			return true, nil
		}
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("update coalesce window %s: %w", key, err)
	}
	return nil
}
