// Package embedded opens regtrigger's embedded stores — pebble://DIR
// (serve's default) and bolt://PATH — as a backend.Backend, for serve and
// the CLI. It is apart from package backend so that the cloud functions,
// which never use an embedded store, link neither Pebble nor bbolt.
package embedded

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/regtrigger/regtrigger/internal/backend"
	"github.com/regtrigger/regtrigger/internal/boltstore"
	"github.com/regtrigger/regtrigger/internal/pebblestore"
)

var (
	_ backend.Local = (*boltstore.Store)(nil)
	_ backend.Local = (*pebblestore.Store)(nil)
)

// Options tune Open.
type Options struct {
	// Retention of log records and finished tasks (0 = the default).
	Retention time.Duration
	// MustExist refuses to create a new store (management commands).
	MustExist bool
}

// Open opens the embedded store storeURL names: pebble://DIR, or bolt://PATH
// (or a plain path, for bolt).
func Open(storeURL string, o Options) (*backend.Backend, error) {
	kind, err := backend.Kind(storeURL)
	if err != nil {
		return nil, err
	}
	switch kind {
	case backend.Pebble:
		s, err := pebblestore.Open(strings.TrimPrefix(storeURL, "pebble://"), pebblestore.Options{Retention: o.Retention, MustExist: o.MustExist})
		if err != nil {
			return nil, err
		}
		q := pebblestore.NewTaskQueue(s)
		b := &backend.Backend{
			Kind: kind, Triggers: s.Triggers(), Records: s.Records(), Dedupe: s, Queue: q,
			Archived: q.Archived, Health: s.Ping, TargetHealth: s.Health(), Windows: s.Windows(), Local: s, LocalQueue: q,
		}
		b.OnClose(s.Close)
		return b, nil
	case backend.Bolt:
		s, err := boltstore.Open(strings.TrimPrefix(storeURL, "bolt://"), boltstore.Options{Retention: o.Retention, MustExist: o.MustExist})
		if err != nil {
			return nil, err
		}
		q := boltstore.NewTaskQueue(s)
		b := &backend.Backend{
			Kind: kind, Triggers: s.Triggers(), Records: s.Records(), Dedupe: s, Queue: q,
			Archived: q.Archived, Health: s.Ping, TargetHealth: s.Health(), Windows: s.Windows(), Local: s, LocalQueue: q,
		}
		b.OnClose(s.Close)
		return b, nil
	}
	return nil, fmt.Errorf("store %q: not an embedded store (pebble://DIR or bolt://PATH)", storeURL)
}

// LockHolder returns the process holding the lock of the embedded store of
// kind at path, when the system says.
func LockHolder(kind, path string) (int, bool) {
	if kind == backend.Pebble {
		return pebblestore.LockHolder(path)
	}
	return boltstore.LockHolder(path)
}

// ErrLocked reports whether err is an embedded store's "held by another
// process".
func ErrLocked(err error) bool {
	return errors.Is(err, boltstore.ErrLocked) || errors.Is(err, pebblestore.ErrLocked)
}
