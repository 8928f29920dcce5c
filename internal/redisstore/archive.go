package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/regtrigger/regtrigger/internal/delivery"
)

// ErrNotArchived: no finished task with that id is kept (unknown, still
// queued, or past the retention).
var ErrNotArchived = errors.New("no finished task with that id is kept")

// Archive keeps a finished task for redelivery until the retention ends.
// The task refers to its trigger: it holds no URL, header value or secret.
func (s *Store) Archive(ctx context.Context, t delivery.Task) error {
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("archive task %s: %w", t.ID, err)
	}
	if err := s.rdb.Set(ctx, s.key("archive", t.ID), b, s.retention).Err(); err != nil {
		return fmt.Errorf("archive task %s: %w", t.ID, err)
	}
	return nil
}

// Archived returns a finished task kept by Archive, or ErrNotArchived.
func (s *Store) Archived(ctx context.Context, id string) (delivery.Task, error) {
	b, err := s.rdb.Get(ctx, s.key("archive", id)).Bytes()
	if errNil(err) {
		return delivery.Task{}, fmt.Errorf("task %s: %w", id, ErrNotArchived)
	}
	if err != nil {
		return delivery.Task{}, fmt.Errorf("read archived task %s: %w", id, err)
	}
	var t delivery.Task
	if err := json.Unmarshal(b, &t); err != nil {
		return delivery.Task{}, fmt.Errorf("decode archived task %s: %w", id, err)
	}
	return t, nil
}
