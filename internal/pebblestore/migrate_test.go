package pebblestore

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/regtrigger/regtrigger/internal/boltstore"
	"github.com/regtrigger/regtrigger/internal/coalesce"
	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/storetest"
)

// boltChild writes a task, its duplicate key and a record to the bbolt
// store at path and exits without closing it, its checkpointer set to wait
// an hour: they are only in its journal.
func boltChild(path string) {
	s, err := boltstore.Open(path, boltstore.Options{CheckpointDelay: time.Hour})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	task := delivery.Task{ID: "unapplied", Trigger: delivery.TriggerRef{Name: "a", Version: 2}, Event: event.Event{Action: event.PushImage, Namespace: "ns", Tag: "v9"}}
	if _, err := s.ClaimEnqueue(ctx, []boltstore.Claimed{{Key: "k-unapplied", TTL: time.Hour, Items: []boltstore.Item{taskItem(task)}}}); err != nil {
		fmt.Println("enqueue:", err)
		os.Exit(1)
	}
	if err := s.Records().Put(ctx, record.Record{TaskID: "other", Trigger: "b", Status: record.Success}); err != nil {
		fmt.Println("record:", err)
		os.Exit(1)
	}
	fmt.Println("written")
	os.Exit(0)
}

func taskItem(t delivery.Task) boltstore.Item {
	b, _ := json.Marshal(t)
	return boltstore.Item{ID: t.ID, Payload: b}
}

// writeBolt makes a bbolt store as regtrigger before Pebble did, with one
// of everything, and, from a child process, writes its journal holds but
// its file does not.
func writeBolt(t *testing.T, path string) {
	t.Helper()
	s, err := boltstore.Open(path, boltstore.Options{Retention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ts, q := s.Triggers(), boltstore.NewTaskQueue(s)
	a, err := ts.Create(ctx, storetest.Trigger("a", "ns"))
	if err != nil {
		t.Fatal(err)
	}
	a.Description = "edited"
	if _, err := ts.Update(ctx, a); err != nil { // version 2
		t.Fatal(err)
	}
	if _, err := ts.Create(ctx, storetest.Trigger("b", "other")); err != nil {
		t.Fatal(err)
	}
	for _, r := range []record.Record{
		{TaskID: "ancient", Trigger: "a", Status: record.Success, Time: time.Now().Add(-48 * time.Hour)},
		{TaskID: "recent", Trigger: "a", Status: record.Failed},
	} {
		if err := s.Records().Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Claim(ctx, "live", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, "expired", time.Nanosecond); err != nil {
		t.Fatal(err)
	}
	retry := delivery.Task{ID: "retrying", Trigger: delivery.TriggerRef{Name: "a", Version: 2}, Event: event.Event{Action: event.PushImage, Namespace: "ns", Tag: "v1"}}
	done := delivery.Task{ID: "done", Trigger: delivery.TriggerRef{Name: "a", Version: 2}, Event: event.Event{Action: event.PushImage, Namespace: "ns", Tag: "v2"}}
	if err := q.Enqueue(ctx, []delivery.Task{retry, done}); err != nil {
		t.Fatal(err)
	}
	retry.Attempt = 3
	if err := q.RetryRecord(ctx, retry, time.Hour, record.Record{TaskID: "retrying", Trigger: "a", Status: record.Retrying, Attempt: 3}); err != nil {
		t.Fatal(err)
	}
	if err := q.AckRecord(ctx, "done", record.Record{TaskID: "done", Trigger: "a", Status: record.Success}); err != nil {
		t.Fatal(err)
	}
	win := coalesce.Windows{Store: s.Windows()}
	if _, err := win.Join(ctx, "window", 10*time.Second, []coalesce.Member{{Task: "retrying", Event: retry.Event}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, []boltstore.Item{{ID: "junk", Payload: []byte("not a task")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeadLetter(ctx, "junk", errors.New("undecodable")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"=bolt:"+path)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "written") {
		t.Fatalf("child: %v %s", err, out)
	}
	// The file itself has one queued task; the journal has the second.
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket([]byte("pending")).Stats().KeyN; n != 1 {
			t.Errorf("the bbolt file has %d queued tasks: the child's write is not in the journal only", n)
		}
		return nil
	})
}

func TestMigrateBolt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "regtrigger.db")
	writeBolt(t, path)
	opts := Options{Retention: 24 * time.Hour}

	m, err := MigrateBolt(ctx, path, opts)
	if err != nil || m == nil {
		t.Fatalf("migrate: %+v, %v", m, err)
	}
	if m.Purged != 1 || m.Keys["triggers"] != 2 || m.Keys["pending"] != 2 || m.Keys["dead"] != 1 || m.OldFile != path+MigratedSuffix {
		t.Errorf("migration: %+v", m)
	}
	for p, dir := range map[string]bool{path: true, path + MigratedSuffix: false, path + MigratedSuffix + "-journal": true} {
		if st, err := os.Stat(p); err != nil || st.IsDir() != dir {
			t.Errorf("%s: %v (directory: want %v)", p, err, dir)
		}
	}
	if again, err := MigrateBolt(ctx, path, opts); again != nil || err != nil {
		t.Errorf("a second migration: %+v, %v", again, err)
	}

	s := open(t, path, nil)
	if a, err := s.Triggers().Get(ctx, "a"); err != nil || a.Version != 2 || a.Description != "edited" {
		t.Errorf("trigger a: %+v, %v", a, err)
	}
	if l, err := s.Triggers().Namespace(ctx, "other"); err != nil || len(l) != 1 || l[0].Name != "b" {
		t.Errorf("namespace other: %+v, %v", l, err)
	}
	if got := storetest.Recs(t, s.Records(), record.Query{}); got != "other:success done:success retrying:retrying recent:failed" {
		t.Errorf("records: %q (the one older than the retention purged)", got)
	}
	if got := storetest.Recs(t, s.Records(), record.Query{Trigger: "a", TaskID: "retrying"}); got != "retrying:retrying" {
		t.Errorf("records by task: %q", got)
	}
	for key, want := range map[string]bool{"live": false, "k-unapplied": false, "expired": true} {
		if fresh, err := s.Claim(ctx, key, time.Hour); err != nil || fresh != want {
			t.Errorf("claim %s: %v, %v; want %v", key, fresh, err, want)
		}
	}
	queued, err := NewTaskQueue(s).Queued(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(queued) != 2 || queued[0].Task.ID != "unapplied" || queued[1].Task.ID != "retrying" || queued[1].Task.Attempt != 3 ||
		time.Until(queued[1].Due) < 59*time.Minute {
		t.Errorf("queued: %+v", queued)
	}
	if kept, err := NewTaskQueue(s).Archived(ctx, "done"); err != nil || kept.Event.Tag != "v2" {
		t.Errorf("kept task: %+v, %v", kept, err)
	}
	if n, err := s.DeadLetters(ctx); err != nil || n != 1 {
		t.Errorf("dead letters: %d, %v", n, err)
	}
	if c, err := (coalesce.Windows{Store: s.Windows()}).Close(ctx, "window", "retrying", time.Now()); err != nil || c.By != "retrying" || len(c.Events) != 1 {
		t.Errorf("coalesce window: %+v, %v", c, err)
	}
	// New tasks do not take the keys of migrated ones.
	if err := s.Enqueue(ctx, []Item{{ID: "new", Payload: []byte("p")}}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Len(ctx); n != 3 {
		t.Errorf("%d queued after a new task, want 3", n)
	}
	s.Close()
	// The old file still opens as it was, journal and all.
	bs, err := boltstore.Open(path+MigratedSuffix, boltstore.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := bs.Len(ctx); n != 2 {
		t.Errorf("the old file has %d queued tasks, want 2", n)
	}
	bs.Close()
}

// TestMigrateBoltResumes: a migration interrupted after the bbolt file was
// moved aside is finished by the next call.
func TestMigrateBoltResumes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "regtrigger.db")
	s := open(t, path+migratingSuffix, nil)
	if _, err := s.Triggers().Create(ctx, storetest.Trigger("a", "ns")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.WriteFile(path+MigratedSuffix, []byte("the old file"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := MigrateBolt(ctx, path, Options{})
	if err != nil || m == nil || !m.Resumed {
		t.Fatalf("resume: %+v, %v", m, err)
	}
	if _, err := open(t, path, nil).Triggers().Get(ctx, "a"); err != nil {
		t.Error(err)
	}
	// No store at all: nothing to migrate.
	if m, err := MigrateBolt(ctx, filepath.Join(t.TempDir(), "none"), Options{}); m != nil || err != nil {
		t.Errorf("no store: %+v, %v", m, err)
	}
}
