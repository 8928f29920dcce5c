package record

import (
	"context"
	"time"
)

// Query selects records, newest first.
type Query struct {
	Trigger string    // only this trigger's records ("" = all)
	Status  Status    // only this status ("" = all)
	TaskID  string    // only this task's records ("" = all)
	Since   time.Time // only records at or after Since (zero = all)
	Limit   int       // at most Limit records (0 = DefaultLimit)
}

// DefaultLimit is the number of records a Query returns without a Limit.
const DefaultLimit = 100

// DefaultRetention is how long records are kept.
const DefaultRetention = 30 * 24 * time.Hour

// Store keeps records and answers queries. Records older than the store's
// retention are never returned and are eventually removed.
type Store interface {
	Sink
	List(ctx context.Context, q Query) ([]Record, error)
}
