package pebblestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"

	"github.com/regtrigger/regtrigger/internal/boltstore"
)

// Moving a bbolt store (boltstore, regtrigger before Pebble) to Pebble.
// pebblestore's keys are boltstore's, each after the byte of its kind, so
// the migration copies every key of every bucket (the journal applied
// first) and then purges what the retention or the duplicate window has
// ended. Triggers keep their versions, queued tasks their due times and
// attempts (in their payloads), finished tasks stay kept for redeliver,
// dead letters stay.
var boltKinds = map[string]byte{
	"triggers": kTrigger, "triggers_ns": kTriggerNS, "records": kRecord, "records_trigger": kRecTrigger,
	"records_task": kRecTask, "tasks": kTask, "pending": kPending, "dedupe_expiry": kDedupe, "dead": kDead,
	"coalesce": kWindow,
}

// MigratedSuffix names a migrated bbolt file once moved aside: FILE
// becomes FILE.migrated-bbolt (and its journal FILE.migrated-bbolt-journal,
// so that `--store bolt --data FILE.migrated-bbolt` still opens it).
const MigratedSuffix = ".migrated-bbolt"

// migratingSuffix names the Pebble directory a migration writes before it
// takes the bbolt file's place.
const migratingSuffix = ".pebble-migrating"

// Migration says what MigrateBolt did.
type Migration struct {
	// Path is the store: a bbolt file before, a Pebble directory after.
	Path string
	// OldFile is where the bbolt file was moved (its journal beside it,
	// with -journal).
	OldFile string
	// Keys counts the keys copied, by bbolt bucket.
	Keys map[string]int
	// Purged counts the log records older than the retention, not kept.
	Purged int
	// Resumed: an interrupted migration was finished (Keys is empty).
	Resumed bool
}

// IsBolt reports whether path is a regular file, which a Pebble store
// never is: a bbolt store for MigrateBolt.
func IsBolt(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// MigrateBolt moves the bbolt store at path (a file) to a Pebble store at
// the same path (a directory), once: it returns nil, nil when path is not
// a bbolt file. The bbolt file is opened as boltstore does (its journal
// replayed, older schemas converted), copied into path.pebble-migrating,
// and only then moved aside to path.migrated-bbolt, never deleted; the
// new directory then takes its name. A crash before the move leaves the
// bbolt file as it was (the next start migrates again); a crash after it
// is finished by the next call.
func MigrateBolt(ctx context.Context, path string, opts Options) (*Migration, error) {
	tmp, old := path+migratingSuffix, path+MigratedSuffix
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if exists(tmp) && exists(old) {
			if err := rename(tmp, path); err != nil {
				return nil, fmt.Errorf("finish migrating %s to Pebble: %w", path, err)
			}
			return &Migration{Path: path, OldFile: old, Resumed: true}, nil
		}
		return nil, nil
	}
	if !IsBolt(path) {
		return nil, nil
	}
	if exists(old) {
		return nil, fmt.Errorf("migrate %s to Pebble: %s exists already (a store migrated before): move it away first", path, old)
	}
	m := &Migration{Path: path, OldFile: old, Keys: map[string]int{}}
	bs, err := boltstore.Open(path, boltstore.Options{Retention: opts.Retention, MustExist: true, Now: opts.Now})
	if err != nil {
		return nil, err
	}
	err = copyBolt(ctx, bs, tmp, opts, m)
	if cerr := bs.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", path, cerr)
	}
	if err != nil {
		_ = os.RemoveAll(tmp)
		return nil, fmt.Errorf("migrate %s to Pebble: %w", path, err)
	}
	if err := rename(path, old); err != nil {
		return nil, fmt.Errorf("migrate %s to Pebble: %w", path, err)
	}
	if exists(path + "-journal") {
		if err := rename(path+"-journal", old+"-journal"); err != nil {
			return nil, fmt.Errorf("migrate %s to Pebble: %w", path, err)
		}
	}
	if err := rename(tmp, path); err != nil {
		return nil, fmt.Errorf("migrate %s to Pebble: %w", path, err)
	}
	return m, nil
}

// copyBolt copies every key of bs into a new Pebble store at dir and
// purges what has expired.
func copyBolt(ctx context.Context, bs *boltstore.Store, dir string, opts Options, m *Migration) error {
	if err := os.RemoveAll(dir); err != nil { // an earlier attempt's
		return err
	}
	ps, err := Open(dir, opts)
	if err != nil {
		return err
	}
	b := ps.db.NewBatch()
	err = bs.Export(ctx, func(bucket string, k, v []byte) error {
		kind, ok := boltKinds[bucket]
		if !ok {
			return fmt.Errorf("unknown bbolt bucket %q", bucket)
		}
		m.Keys[bucket]++
		if err := b.Set(key(kind, k), v, nil); err != nil {
			return err
		}
		if b.Len() < 4<<20 {
			return nil
		}
		err := b.Commit(pebble.NoSync)
		b.Close()
		b = ps.db.NewBatch()
		return err
	})
	if err == nil {
		err = b.Commit(pebble.Sync) // and every batch before it
	}
	b.Close()
	if err == nil {
		// Reopened, the store reads the queue and the keys copied.
		err, ps = ps.Close(), nil
		if err == nil {
			if ps, err = Open(dir, opts); err == nil {
				m.Purged, err = ps.Purge(ctx)
			}
		}
	}
	if ps != nil {
		err = errors.Join(err, ps.Close())
	}
	return err
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// rename renames and makes the rename durable.
func rename(from, to string) error {
	if err := os.Rename(from, to); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(to))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
