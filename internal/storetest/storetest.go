// Package storetest is the behaviour of regtrigger's embedded stores
// (boltstore, pebblestore) as tests that run against either: each store's
// tests call Run with an Opener, so both are held to one description of
// the triggers, the log, the duplicate keys and the queue.
package storetest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/coalesce"
	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/localqueue"
	"github.com/regtrigger/regtrigger/internal/receiver"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// Store is what the stores have in common beyond their Triggers and
// Records.
type Store interface {
	localqueue.Store
	receiver.Dedupe
	Len(ctx context.Context) (int, error)
	Purge(ctx context.Context) (int, error)
	DeadLetters(ctx context.Context) (int, error)
	Ping(ctx context.Context) error
	Close() error
	Health() *delivery.MemHealth
}

// Kind names a kind of stored key, for the tests that count them.
type Kind string

// The kinds of key (boltstore's buckets, pebblestore's key prefixes).
const (
	bTriggers       Kind = "triggers"
	bTriggersNS     Kind = "triggers_ns"
	bRecords        Kind = "records"
	bRecordsTrigger Kind = "records_trigger"
	bRecordsTask    Kind = "records_task"
	bTasks          Kind = "tasks"
	bPending        Kind = "pending"
	bDedupe         Kind = "dedupe_expiry"
)

// Opened is an opened store with what the tests need of it.
type Opened struct {
	Store
	TriggerStore trigger.Store
	RecordStore  record.Store
	TaskQueue    func() *localqueue.TaskQueue
	// Count counts the stored keys of a kind, all writes applied.
	Count func(t testing.TB, k Kind) int
	// LosePayload deletes the stored payload of a queued task, as a
	// damaged store would have lost it.
	LosePayload func(t testing.TB, id string)
	// Values is how many queued tasks hold a decoded value in memory, at
	// most MaxValues.
	Values    func() int
	MaxValues int
	// CachedNamespaces is how many namespaces' triggers are cached, at
	// most MaxCached.
	CachedNamespaces func() int
	MaxCached        int
	// Windows is the store's coalesce.Store.
	Windows func() coalesce.Store
	// Commits counts the store's commits so far (nil: it does not say),
	// for the parallel benchmarks' commits/op.
	Commits func(t testing.TB) int
}

// Triggers is the store's trigger.Store.
func (o *Opened) Triggers() trigger.Store { return o.TriggerStore }

// Records is the store's record.Store.
func (o *Opened) Records() record.Store { return o.RecordStore }

// NewTaskQueue is a new task queue on the store.
func (o *Opened) NewTaskQueue() *TaskQueue { return o.TaskQueue() }

// Opener opens the store at path (a new one in a temporary directory for
// ""), with the clock c (nil: the system's) and a retention of one day,
// and closes it when the test ends. It fails the test if it cannot.
type Opener func(t testing.TB, path string, c *Clock) *Opened

// Clock is a settable test clock.
type Clock struct{ t atomic.Int64 }

// NewClock is a clock at at.
func NewClock(at time.Time) *Clock { c := &Clock{}; c.t.Store(at.UnixNano()); return c }

// Now is the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.t.Load()).UTC() }

// Add moves the clock.
func (c *Clock) Add(d time.Duration) { c.t.Add(int64(d)) }

func (c *Clock) now() time.Time      { return c.Now() }
func (c *Clock) add(d time.Duration) { c.Add(d) }

func newClock(at time.Time) *Clock { return NewClock(at) }

// The queue's types and errors.
type (
	Item      = localqueue.Item
	Claimed   = localqueue.Claimed
	TaskQueue = localqueue.TaskQueue
)

var (
	ErrNoItem   = localqueue.ErrNoItem
	ErrQueued   = localqueue.ErrQueued
	ErrSettling = localqueue.ErrSettling
)

var (
	ctx = context.Background()
	t0  = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

func keys(t testing.TB, s *Opened, k Kind) int { t.Helper(); return s.Count(t, k) }

// Run runs every behaviour test on the stores open opens.
func Run(t *testing.T, open Opener) {
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

// purgeBatch is the stores' largest Purge batch: the purge tests store
// more than one batch's worth.
const purgeBatch = 1000

// Lease leases up to 10 items of s for a minute and renders them as
// id:payload, for the stores' own tests.
func Lease(t testing.TB, s interface {
	Lease(context.Context, int, time.Duration) ([]Item, error)
}) string {
	t.Helper()
	return lease(t, s)
}

// Recs renders the records q lists as task:status, in order, for the
// stores' own tests.
func Recs(t testing.TB, rs record.Store, q record.Query) string {
	t.Helper()
	return recs(t, rs, q)
}

// Trigger is an enabled push trigger of namespace ns, for the stores' own
// tests.
func Trigger(name, ns string) trigger.Trigger { return tr(name, ns) }
