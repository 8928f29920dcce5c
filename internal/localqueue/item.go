package localqueue

import (
	"errors"
	"time"
)

// Item is one queued message with an opaque payload. The store keeps the
// Payload slice it is given: do not change it afterwards.
type Item struct {
	ID      string
	Payload []byte
	// Value, when not nil, is Payload decoded, kept in memory with the
	// item and handed back by the next Lease, so that the leaser need not
	// decode the payload again. It is not stored: after a restart, or when
	// the store holds too many, Lease returns nil.
	Value any
	// Due is when the item may be leased; on an item Lease returned, when
	// the lease ends and the item is due again unless finished or
	// rescheduled.
	Due time.Time
	// Receives counts the leases of the item since the store was opened,
	// this one included.
	Receives int
}

// Claimed is one entry of ClaimEnqueue: a duplicate key and the items it
// guards.
type Claimed struct {
	Key   string // "" claims nothing: the items are enqueued regardless
	TTL   time.Duration
	Items []Item
}

// Errors of the queue.
var (
	// ErrNoItem: no queued (or kept) item has that id.
	ErrNoItem = errors.New("no such queue item")
	// ErrQueued: the item is still in the queue.
	ErrQueued = errors.New("item is still queued")
	// ErrSettling: another holder of the item's lease (a worker whose
	// lease ended while it delivered) is finishing or rescheduling it.
	ErrSettling = errors.New("item is being settled by another lease")
)
