package boltstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"

	"github.com/regtrigger/regtrigger/internal/delivery"
)

// Schema 3: a task refers to its trigger (delivery.Task) instead of
// embedding a copy of it with its URL, headers and signing secrets. A file
// of schema 2 may hold such copies in the tasks bucket (queued and kept
// tasks), in dead letters and in its journal. Open converts it once, after
// the journal is replayed into the file:
//
//  1. every stored task is rewritten as a reference (decoding a legacy
//     task keeps only the reference; see delivery.Task), and so is every
//     dead letter whose payload is a task, in one transaction that also
//     writes schema 3;
//  2. the journal, all of it applied, is deleted and a new one started, so
//     its segments and spares hold no old frame;
//  3. the file is compacted into a new one, so no freed page keeps an old
//     payload's bytes.
//
// A crash before 1 commits repeats the conversion at the next Open; after
// it, the journal and compaction steps are repeated by the next Open too
// (the meta key scrubPending stays until both are done).

// keyScrubPending marks a file whose journal and free pages may still hold
// tasks with embedded triggers.
var keyScrubPending = []byte("scrub_pending")

// scrubTasks rewrites every legacy task payload in tx as a reference and
// marks the file for the rest of the conversion.
func scrubTasks(tx *bolt.Tx) (int, error) {
	n := 0
	tasks := tx.Bucket(bTasks)
	var rewrites [][2][]byte
	err := tasks.ForEach(func(k, v []byte) error {
		if b, ok := scrubbedTask(v); ok {
			rewrites = append(rewrites, [2][]byte{bytes.Clone(k), b})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, kv := range rewrites {
		if err := tasks.Put(kv[0], kv[1]); err != nil {
			return 0, err
		}
	}
	n += len(rewrites)

	dead := tx.Bucket(bDead)
	rewrites = rewrites[:0]
	err = dead.ForEach(func(k, v []byte) error {
		var d deadRecord
		if json.Unmarshal(v, &d) != nil {
			return nil
		}
		b, ok := scrubbedTask(d.Payload)
		if !ok {
			return nil
		}
		d.Payload = b
		out, err := json.Marshal(d)
		if err != nil {
			return err
		}
		rewrites = append(rewrites, [2][]byte{bytes.Clone(k), out})
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, kv := range rewrites {
		if err := dead.Put(kv[0], kv[1]); err != nil {
			return 0, err
		}
	}
	n += len(rewrites)
	return n, tx.Bucket(bMeta).Put(keyScrubPending, []byte("1"))
}

// scrubbedTask is payload re-encoded as a task reference, and whether it
// differs: false for a payload that is already one, or not a task at all.
func scrubbedTask(payload []byte) ([]byte, bool) {
	var t delivery.Task
	if json.Unmarshal(payload, &t) != nil || t.ID == "" {
		return nil, false
	}
	b, err := json.Marshal(t)
	if err != nil || bytes.Equal(b, payload) {
		return nil, false
	}
	return b, true
}

// scrubPending reports whether the journal and compaction steps are to do.
func (s *Store) scrubPending() (bool, error) {
	pending := false
	err := s.db.View(func(tx *bolt.Tx) error {
		pending = tx.Bucket(bMeta).Get(keyScrubPending) != nil
		return nil
	})
	return pending, err
}

// finishScrub does the journal and compaction steps. The journal is open,
// every record of it applied; it is closed and deleted, and the file is
// compacted and reopened. openJournal then starts a new journal.
func (s *Store) finishScrub(reopen func() (*bolt.DB, error)) error {
	dir := s.path + "-journal"
	if err := s.journal.Close(); err != nil {
		return fmt.Errorf("close the old journal: %w", err)
	}
	s.journal = nil
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("delete the old journal: %w", err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		if err := meta.Delete(keyJournalID); err != nil {
			return err
		}
		return meta.Put(keyJournalLSN, u64(0))
	})
	if err != nil {
		return fmt.Errorf("forget the old journal: %w", err)
	}

	tmp := s.path + ".compact"
	_ = os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	err = bolt.Compact(dst, s.db, 0)
	if err == nil {
		err = dst.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Delete(keyScrubPending) })
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("compact: %w", err)
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("compact: close the old file: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	db, err := reopen()
	if err != nil {
		return fmt.Errorf("compact: reopen: %w", err)
	}
	s.db = db
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
