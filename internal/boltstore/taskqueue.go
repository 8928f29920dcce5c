package boltstore

import (
	"github.com/regtrigger/regtrigger/internal/localqueue"
	"github.com/regtrigger/regtrigger/internal/receiver"
)

// TaskQueue is the durable delivery queue of the store
// (localqueue.TaskQueue): the receiver enqueues tasks, the dispatcher's
// workers lease, retry and acknowledge them; a delivery's record is
// written with its settlement, one journal write for both.
type (
	TaskQueue = localqueue.TaskQueue
	Queued    = localqueue.Queued
)

var (
	_ localqueue.Store = (*Store)(nil)
	_ receiver.Dedupe  = (*Store)(nil)
)

// NewTaskQueue returns the task queue of s.
func NewTaskQueue(s *Store) *TaskQueue { return localqueue.NewTaskQueue(s, s.now) }
