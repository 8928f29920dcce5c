package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/regtrigger/regtrigger/internal/record"
)

// pushBody is the TCR push of testdata/tcr-push.json for another tag: a
// new event each time (no duplicate).
func pushBody(t *testing.T, tag string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/tcr-push.json")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.ReplaceAll(b, []byte("v1.10.0"), []byte(tag))
}

// queueOneRetry makes serve accept a push of tag whose first attempt
// fails with 503, and stops it before the retry (3 s later) is due:
// the task stays queued.
func queueOneRetry(t *testing.T, store, data, triggers, tag string) {
	t.Helper()
	args := []string{"--store", store, "--retry-schedule", "3s"}
	if triggers != "" {
		args = append(args, "--triggers", triggers)
	}
	s := startServe(t, data, args...)
	if status, ans := s.postBody(t, "/v1/notify", pushBody(t, tag), e2eToken); status != http.StatusAccepted {
		t.Fatalf("status %d: %v", status, ans)
	}
	s.waitLog(t, `"msg":"task rescheduled"`, 10*time.Second)
	s.stop(t)
}

// runServeUntil starts serve (retries due at once: a 1ms schedule) until
// it logs sub, then stops it.
func runServeUntil(t *testing.T, store, data, sub string) {
	t.Helper()
	s := startServe(t, data, "--store", store, "--retry-schedule", "1ms")
	s.waitLog(t, sub, 10*time.Second)
	s.stop(t)
}

// TestQueuedTasksFollowTheirTrigger: a queued task refers to its trigger,
// so what the user does to the trigger reaches the queue, and the store's
// queue, records and journal hold none of the trigger's secrets.
func TestQueuedTasksFollowTheirTrigger(t *testing.T) {
	for _, store := range []string{"bolt", "pebble"} {
		t.Run(store, func(t *testing.T) {
			t.Setenv("REGTRIGGER_STORE", store) // the CLI's store
			queuedTasksFollowTheirTrigger(t, store)
		})
	}
}

func queuedTasksFollowTheirTrigger(t *testing.T, store string) {
	dir := t.TempDir()
	data := filepath.Join(dir, "rt.db")
	failing := newTarget(t, 503)
	triggers := writeTriggers(t, dir, failing.srv.URL)

	// 1. A task waiting for its retry.
	queueOneRetry(t, store, data, triggers, "v1.1")
	// The store file is its owner's only, and so is the journal; or the
	// Pebble directory and every file in it.
	paths := []string{data, data + "-journal"}
	if store == "pebble" {
		paths, _ = filepath.Glob(filepath.Join(data, "*"))
		paths = append(paths, data)
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v: others may read it", p, st.Mode().Perm())
		}
	}
	assertNoTriggerSecrets(t, store, data, true)
	listed := decodeLines[queuedTask](t, cli(t, "tasks", "list", "--data", data, "-o", "json"))
	if len(listed) != 1 || listed[0].Trigger != "deploy-nginx" || listed[0].Revision != 1 || listed[0].Tag != "v1.1" || listed[0].Attempts != 1 || listed[0].Due.IsZero() {
		t.Fatalf("tasks list: %+v", listed)
	}
	first := listed[0].ID
	if out := cli(t, "tasks", "list", "--data", data, "--trigger", "wrong-tag"); strings.Contains(out, first) {
		t.Errorf("another trigger's list shows the task: %s", out)
	}

	// 2. Disabled while it waits: skipped when due, nothing sent.
	cli(t, "triggers", "disable", "deploy-nginx", "--data", data)
	before := failing.count()
	runServeUntil(t, store, data, `"status":"skipped"`)
	if failing.count() != before {
		t.Errorf("a disabled trigger's task was sent")
	}
	if recs := records(t, data, "--task", first); len(recs) == 0 || recs[0].Status != record.Skipped || recs[0].ErrorClass != record.ClassTriggerDisabled {
		t.Errorf("records of the skipped task: %+v", recs)
	}
	cli(t, "triggers", "enable", "deploy-nginx", "--data", data)

	// 3. Fixed: redeliver sends to the trigger as it is now (another URL,
	// header and secret), with its revision in the record.
	fixed := newTarget(t, 200)
	triggers = writeTriggers(t, dir, fixed.srv.URL)
	cli(t, "triggers", "apply", "-f", triggers, "--data", data, "--allow-private", "127.0.0.1/32")
	if out := cli(t, "redeliver", first, "--data", data); !strings.Contains(out, "queued for delivery to trigger deploy-nginx (revision 4)") {
		t.Errorf("redeliver: %s", out)
	}
	runServeUntil(t, store, data, `"status":"success"`)
	if got := fixed.wait(t, 1, 5*time.Second); got[0].header.Get("webhook-id") != first || got[0].header.Get("X-Deploy-Key") != "headersecret" {
		t.Errorf("redelivery headers %v", got[0].header)
	}
	if recs := records(t, data, "--task", first); recs[0].Status != record.Success || recs[0].TriggerVersion != 4 {
		t.Errorf("redelivery record %+v", recs[0])
	}

	// 4. Cancelled: taken off the queue at once, with a record.
	triggers = writeTriggers(t, dir, failing.srv.URL)
	cli(t, "triggers", "apply", "-f", triggers, "--data", data, "--allow-private", "127.0.0.1/32")
	queueOneRetry(t, store, data, "", "v1.2")
	if out := cli(t, "tasks", "cancel", "--trigger", "deploy-nginx", "--data", data); !strings.Contains(out, "deploy-nginx: 1 queued task(s) cancelled") {
		t.Errorf("tasks cancel: %s", out)
	}
	if out := cli(t, "tasks", "list", "--data", data, "-o", "json"); strings.TrimSpace(out) != "" {
		t.Errorf("tasks left after the cancel: %s", out)
	}
	if recs := records(t, data, "--status", "cancelled"); len(recs) != 1 || recs[0].ErrorClass != record.ClassCancelled || !strings.Contains(recs[0].Error, "regtrigger tasks cancel") {
		t.Errorf("cancelled records: %+v", recs)
	}
	// Work matched after the cancel is delivered as usual...
	queueOneRetry(t, store, data, "", "v1.3")
	// ...until disable --cancel-queued: disabled, and its queue emptied.
	if out := cli(t, "triggers", "disable", "deploy-nginx", "--cancel-queued", "--data", data); !strings.Contains(out, "deploy-nginx disabled") || !strings.Contains(out, "1 queued task(s) cancelled") {
		t.Errorf("disable --cancel-queued: %s", out)
	}
	cli(t, "triggers", "enable", "deploy-nginx", "--data", data)

	// 5. Deleted while its task waits: cancelled when due, nothing sent.
	queueOneRetry(t, store, data, "", "v1.4")
	cli(t, "triggers", "delete", "deploy-nginx", "--data", data)
	before = failing.count()
	runServeUntil(t, store, data, `"error_class":"trigger_deleted"`)
	if failing.count() != before {
		t.Errorf("a deleted trigger's task was sent")
	}
	recs := records(t, data, "--status", "cancelled", "--trigger", "deploy-nginx")
	if len(recs) == 0 || recs[0].ErrorClass != record.ClassTriggerDeleted || recs[0].Tag != "v1.4" {
		t.Errorf("records of the deleted trigger's task: %+v", recs)
	}
	cliFail(t, 1, `its trigger "deploy-nginx" (namespace public) was deleted`, "redeliver", first, "--data", data)
	assertNoTriggerSecrets(t, store, data, false)
}

// triggerSecrets are the values writeTriggers puts in deploy-nginx's URL
// query, header and signing secret.
var triggerSecrets = []string{"querysecret", "headersecret", e2eSecret}

// assertNoTriggerSecrets checks that no secret of the trigger is in the
// store's journal (every byte of every file) or in any bucket of the store
// file but the triggers bucket, which is where they live (stored says the
// trigger is there: then the bucket must hold its secret, or this check
// could not see one). A Pebble store's files hold the trigger's record
// too (its log and tables), so there it checks every key and value but
// the trigger's own.
func assertNoTriggerSecrets(t *testing.T, store, data string, stored bool) {
	t.Helper()
	found := func(where string, b []byte) {
		for _, s := range triggerSecrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds %q", where, s)
			}
		}
	}
	if store == "pebble" {
		assertNoPebbleSecrets(t, data, stored, found)
		return
	}
	files := 0
	err := filepath.WalkDir(data+"-journal", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		found(p, b)
		return nil
	})
	if err != nil || files == 0 {
		t.Fatalf("journal: %d files, %v", files, err)
	}
	db, err := bolt.Open(data, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	held := false
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				if string(name) == "triggers" {
					held = held || bytes.Contains(v, []byte(e2eSecret))
					return nil
				}
				found(fmt.Sprintf("bucket %s key %q", name, k), append(append([]byte(nil), k...), v...))
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if stored && !held {
		t.Error("the triggers bucket does not hold the secret: this check would not see it anywhere")
	}
}

// assertNoPebbleSecrets is assertNoTriggerSecrets on a Pebble store: every
// key but the triggers' ('t' name).
func assertNoPebbleSecrets(t *testing.T, data string, stored bool, found func(string, []byte)) {
	t.Helper()
	db, err := pebble.Open(data, &pebble.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	held, n := false, 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
		k, v := it.Key(), it.Value()
		if k[0] == 't' {
			held = held || bytes.Contains(v, []byte(e2eSecret))
			continue
		}
		found(fmt.Sprintf("key %q", k), append(append([]byte(nil), k...), v...))
	}
	if err := it.Close(); err != nil || n == 0 {
		t.Fatalf("%d keys, %v", n, err)
	}
	if stored && !held {
		t.Error("the trigger's key does not hold the secret: this check would not see it anywhere")
	}
}
