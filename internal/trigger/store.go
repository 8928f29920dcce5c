package trigger

import (
	"context"
	"errors"
)

// Errors a Store returns; callers decide with errors.Is.
var (
	// ErrNotFound: no trigger has that name.
	ErrNotFound = errors.New("trigger not found")
	// ErrExists: Create of a name already taken.
	ErrExists = errors.New("trigger already exists")
	// ErrConflict: the stored version is not the one the caller read, so
	// someone else changed the trigger meanwhile; read again and retry.
	ErrConflict = errors.New("trigger changed concurrently")
)

// Store keeps triggers. Adapters (the embedded bbolt store, DynamoDB)
// implement it; every method must be safe for concurrent use.
//
// Versions make racing writers safe: Create stores version 1, Update and
// Delete succeed only if the stored version equals the one given, and every
// write returns the trigger with its new Version and UpdatedAt.
type Store interface {
	// Namespace returns every trigger of one namespace (enabled or not), in
	// name order. It is the receiver's one read per notification.
	Namespace(ctx context.Context, namespace string) ([]Trigger, error)
	// Get returns one trigger by name, or ErrNotFound.
	Get(ctx context.Context, name string) (Trigger, error)
	// List returns every trigger, in name order.
	List(ctx context.Context) ([]Trigger, error)
	// Create stores a new trigger, or returns ErrExists.
	Create(ctx context.Context, t Trigger) (Trigger, error)
	// Update replaces the trigger named t.Name if its stored version is
	// t.Version, or returns ErrNotFound / ErrConflict.
	Update(ctx context.Context, t Trigger) (Trigger, error)
	// Delete removes the trigger if its stored version is version (0: any),
	// or returns ErrNotFound / ErrConflict.
	Delete(ctx context.Context, name string, version int64) error
}
