package boltstore

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// writeV1 writes a store file as regtrigger wrote schema 1: three queued
// items (due now, delayed, leased), one that cannot be decoded, a finished
// task with the record of its attempt, and two duplicate keys.
func writeV1(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	item := func(payload string, due time.Time, leased bool) []byte {
		b, err := json.Marshal(struct {
			Payload  []byte    `json:"payload"`
			Due      time.Time `json:"due"`
			Receives int       `json:"receives"`
			Leased   bool      `json:"leased,omitempty"`
		}{[]byte(payload), due, 1, leased})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	recordKey := join(nanos(t0.Add(-time.Hour)), u64(1))
	data := map[string]map[string][]byte{
		"meta":            {"schema": []byte("1")},
		"triggers":        {},
		"triggers_ns":     {},
		"records":         {string(recordKey): []byte(`{"task_id":"done","trigger":"a","status":"success","time":"2025-12-31T23:00:00Z"}`)},
		"records_trigger": {"a\x00" + string(recordKey): nil},
		"records_task":    {"done\x00" + string(recordKey): nil},
		"queue": {
			"due":     item("p-due", t0.Add(-time.Second), false),
			"delayed": item("p-delayed", t0.Add(time.Hour), false),
			"leased":  item("p-leased", t0.Add(2*time.Minute), true),
			"garbage": []byte("{not json"),
		},
		"queue_due": {
			string(dueKey(t0.Add(-time.Second), "due")):     nil,
			string(dueKey(t0.Add(time.Hour), "delayed")):    nil,
			string(dueKey(t0.Add(2*time.Minute), "leased")): nil,
		},
		"archive":      {"done": []byte("p-done")},
		"archive_time": {string(join(nanos(t0.Add(-time.Hour)), []byte("done"))): nil},
		"dedupe": {
			"live":    nanos(t0.Add(5 * time.Minute)),
			"expired": nanos(t0.Add(-time.Minute)),
		},
		"dead": {},
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for name, kv := range data {
			b, err := tx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			for k, v := range kv {
				if err := b.Put([]byte(k), v); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func dueKey(due time.Time, id string) []byte { return join(nanos(due), []byte(id)) }

func TestOpenConvertsSchema1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	writeV1(t, path)
	c := newClock(t0)
	s := open(t, path, c)

	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bMeta).Get(keySchema); string(v) != "3" {
			t.Errorf("schema = %q", v)
		}
		for _, b := range [][]byte{v1Queue, v1QueueDue, v1Archive, v1ArchiveTime, v1Dedupe} {
			if tx.Bucket(b) != nil {
				t.Errorf("schema 1 bucket %s left", b)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Len(ctx); n != 3 {
		t.Errorf("%d queued, want 3", n)
	}
	if n, _ := s.DeadLetters(ctx); n != 1 {
		t.Errorf("%d dead letters, want 1 (the undecodable item)", n)
	}
	for key, want := range map[string]bool{"live": false, "expired": true} {
		if fresh, err := s.Claim(ctx, key, time.Hour); err != nil || fresh != want {
			t.Errorf("claim %s = %v, %v; want %v", key, fresh, err, want)
		}
	}
	// The leased item is due at once: nobody holds its lease any more.
	if got := lease(t, s); got != "due:p-due leased:p-leased" && got != "leased:p-leased due:p-due" {
		t.Errorf("due now: %q", got)
	}
	for _, id := range []string{"due", "leased"} {
		if err := s.Finish(ctx, id, nil); err != nil {
			t.Fatal(err)
		}
	}
	c.Add(time.Hour)
	if got := lease(t, s); got != "delayed:p-delayed" {
		t.Errorf("due in an hour: %q", got)
	}
	// The finished task is kept, found through its record.
	if b, err := s.Archived(ctx, "done"); err != nil || string(b) != "p-done" {
		t.Errorf("archived: %q, %v", b, err)
	}
	if err := s.Requeue(ctx, "done", []byte("again")); err != nil {
		t.Errorf("requeue: %v", err)
	}
	// A converted file opens as it is.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, c)
	if got := lease(t, s); got != "delayed:p-delayed done:again" {
		t.Errorf("queued after reopen: %q", got)
	}
}
