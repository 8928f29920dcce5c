package boltstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/record"
)

// The secrets a task of schema 2 carried in its embedded trigger.
const (
	legacyHeader = "Bearer legacy-header-token"
	legacySecret = "whsec_bGVnYWN5IHNpZ25pbmcgc2VjcmV0IQ=="
	legacyQuery  = "legacyquerytoken"
)

// legacyTask is a task as regtrigger wrote it before tasks referred to
// their trigger: the whole trigger embedded.
func legacyTask(id, tag string, attempt int) []byte {
	return []byte(`{"id":"` + id + `","trigger":{"name":"deploy","enabled":true,"actions":["pushImage"],"namespace":"public",` +
		`"url":"https://hooks.example.com/deploy?token=` + legacyQuery + `","headers":{"Authorization":"` + legacyHeader + `"},` +
		`"format":"tcr","secrets":["` + legacySecret + `"],"version":3},"event":{"source":"tcr","action":"pushImage",` +
		`"namespace":"public","repository":"nginx","tag":"` + tag + `","digest":"sha256:ab","resource_url":"r",` +
		`"occurred_at":"2026-01-01T00:00:00Z","operator":"me"},"attempt":` + string(rune('0'+attempt)) + `,"created_at":"2026-01-01T00:00:01Z"}`)
}

// holdsLegacySecret reports which of the store's files hold a legacy
// secret, by their raw bytes.
func holdsLegacySecret(t *testing.T, path string) []string {
	t.Helper()
	var where []string
	check := func(p string) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{legacyHeader, legacySecret, legacyQuery} {
			if bytes.Contains(b, []byte(s)) {
				where = append(where, filepath.Base(p)+": "+s)
			}
		}
	}
	check(path)
	err := filepath.WalkDir(path+"-journal", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			check(p)
		}
		return err
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return where
}

// TestOpenConvertsSchema2: tasks queued, finished and dead-lettered by a
// regtrigger that embedded the trigger in each task are still there after
// the upgrade, as references; and no byte of the file or its journal holds
// the secrets they embedded.
// legacyChild writes a store as regtrigger before schema 3 left one when
// it stopped: tasks queued, finished (kept for redeliver) and
// dead-lettered in the file, and one more queued in the journal only (the
// checkpoints fail from then on); then it dies without closing the store.
func legacyChild(path string) {
	s, err := Open(path, Options{JournalSegmentSize: 64 << 10})
	fail := func(what string, err error) {
		if err != nil {
			fmt.Println(what+":", err)
			os.Exit(1)
		}
	}
	fail("open", err)
	fail("schema", s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put(keySchema, []byte("2")) }))
	// The payloads are opaque to the store: write them as schema 2 did.
	for _, id := range []string{"queued", "finished", "dead"} {
		fail("enqueue", s.Enqueue(ctx, []Item{{ID: id, Payload: legacyTask(id, "v-"+id, 1)}}))
	}
	fail("finish", s.Finish(ctx, "finished", &record.Record{TaskID: "finished", Trigger: "deploy", Status: record.Success, Attempt: 2}))
	fail("dead-letter", s.DeadLetter(ctx, "dead", errors.New("set aside")))
	for i := range 300 {
		id := fmt.Sprint("more-", i)
		fail("enqueue", s.Enqueue(ctx, []Item{{ID: id, Payload: legacyTask(id, "v-"+id, 1)}}))
		fail("finish", s.Finish(ctx, id, &record.Record{TaskID: id, Trigger: "deploy", Status: record.Success, Attempt: 2}))
	}
	fail("flush", s.flush(ctx))
	s.mu.Lock()
	s.unapplied = append(s.unapplied, &op{kind: 99, lsn: 0}) // refused by apply: nothing more reaches the file
	s.mu.Unlock()
	fail("enqueue", s.Enqueue(ctx, []Item{{ID: "journaled", Payload: legacyTask("journaled", "v-journaled", 2)}}))
	fmt.Println("written")
	os.Exit(0)
}

// TestOpenConvertsSchema2: tasks queued, finished and dead-lettered by a
// regtrigger that embedded the trigger in each task, in the file and in the
// journal, are still there after the upgrade, as references; and no byte
// of the file or its journal holds the secrets they embedded.
func TestOpenConvertsSchema2(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "v2.db")
	if out, err := runChild(t, "legacy", path).CombinedOutput(); err != nil || !strings.Contains(string(out), "written") {
		t.Fatalf("child: %v %s", err, out)
	}
	if len(holdsLegacySecret(t, path)) == 0 {
		t.Fatal("the schema 2 store holds no legacy secret: the test would prove nothing")
	}
	c := newClock(time.Now()) // the child queued at the real time

	s := open(t, path, c)
	if where := holdsLegacySecret(t, path); len(where) > 0 {
		t.Errorf("after the upgrade, secrets remain in %v", where)
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		if v := meta.Get(keySchema); string(v) != "3" {
			t.Errorf("schema = %q", v)
		}
		if meta.Get(keyScrubPending) != nil {
			t.Error("the conversion is still marked pending")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	q := NewTaskQueue(s)
	queued, err := q.Queued(ctx, "deploy")
	if err != nil || len(queued) != 2 || queued[0].Task.ID == queued[1].Task.ID {
		t.Fatalf("queued after the upgrade: %+v, %v", queued, err)
	}
	for _, it := range queued {
		if it.Task.Trigger != (delivery.TriggerRef{Namespace: "public", Name: "deploy", Version: 3}) {
			t.Errorf("task %s refers to %+v", it.Task.ID, it.Task.Trigger)
		}
	}
	leased, err := q.Lease(ctx, 10, time.Minute)
	if err != nil || len(leased) != 2 {
		t.Fatalf("leased %+v, %v", leased, err)
	}
	for _, l := range leased {
		if l.Err != nil || l.Task.Event.Tag != "v-"+l.ID {
			t.Errorf("leased %s: %+v", l.ID, l)
		}
	}
	if kept, err := q.Archived(ctx, "finished"); err != nil || kept.Trigger.Name != "deploy" || kept.Attempt != 1 {
		t.Errorf("kept task %+v, %v", kept, err)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		var d deadRecord
		if err := json.Unmarshal(tx.Bucket(bDead).Get([]byte("dead")), &d); err != nil {
			return err
		}
		var task delivery.Task
		if err := json.Unmarshal(d.Payload, &task); err != nil || task.ID != "dead" || d.Reason != "set aside" {
			t.Errorf("dead letter %+v (%v)", d, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Opening again changes nothing.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, c)
	if n, _ := s.Len(ctx); n != 2 {
		t.Errorf("%d queued after a second open", n)
	}
}
