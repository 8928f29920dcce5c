package boltstore

import (
	"errors"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// committer is the group commit of the batched writes: the functions of
// concurrent callers share one write transaction, and so one commit and its
// fsyncs. It keeps DB.Batch's contract (a function may run more than once,
// in a new transaction each time; the one that fails is taken out and run
// alone with DB.Update, the others run again together) but not its timer:
// DB.Batch holds every batch for MaxBatchDelay, so a lone write always
// waits that long, and under load a batch is closed when its timer fires
// and then queues behind the one committing, so batches stay small. Here a
// write that finds the committer idle is committed at once, and writes that
// arrive while a commit runs all go together in the next one: the batch is
// as large as what arrived during one commit, whatever the disk's speed.
type committer struct {
	db  *bolt.DB
	max int // most functions in one transaction

	mu      sync.Mutex
	pending []commitCall
	running bool // a goroutine is running commits
}

type commitCall struct {
	fn  func(*bolt.Tx) error
	err chan<- error
}

// errSolo tells a caller to run its function alone: it failed in a shared
// transaction, which was rolled back without it.
var errSolo = errors.New("run alone")

// run runs fn in a shared write transaction and returns when that
// transaction is committed (or fn failed).
func (c *committer) run(fn func(*bolt.Tx) error) error {
	ch := make(chan error, 1)
	c.mu.Lock()
	c.pending = append(c.pending, commitCall{fn: fn, err: ch})
	if !c.running {
		c.running = true
		go c.loop()
	}
	c.mu.Unlock()
	err := <-ch
	if err == errSolo {
		err = c.db.Update(fn)
	}
	return err
}

// loop commits the pending calls, a batch at a time, until none is left.
func (c *committer) loop() {
	for {
		c.mu.Lock()
		n := min(len(c.pending), c.max)
		if n == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		calls := make([]commitCall, n)
		copy(calls, c.pending)
		c.pending = append(c.pending[:0], c.pending[n:]...)
		c.mu.Unlock()
		c.commit(calls)
	}
}

// commit runs calls in one transaction. A call that fails (or panics) is
// taken out and told to run alone; the rest run again in a new one.
func (c *committer) commit(calls []commitCall) {
	for len(calls) > 0 {
		failed := -1
		err := c.db.Update(func(tx *bolt.Tx) error {
			for i, call := range calls {
				if err := safely(call.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed >= 0 {
			calls[failed].err <- errSolo
			calls = append(calls[:failed], calls[failed+1:]...)
			continue
		}
		for _, call := range calls {
			call.err <- err // nil, or the commit's own failure
		}
		return
	}
}

// safely calls fn, turning a panic into an error (the caller's solo run
// then panics in the caller's goroutine).
func safely(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return fn(tx)
}
