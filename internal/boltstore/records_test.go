package boltstore

import (
	"fmt"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/regtrigger/regtrigger/internal/record"
)

// recs renders records as task:status, in order.
func recs(t *testing.T, rs *Records, q record.Query) string {
	t.Helper()
	l, err := rs.List(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(l))
	for i, r := range l {
		out[i] = r.TaskID + ":" + string(r.Status)
	}
	return strings.Join(out, " ")
}

func TestRecordsList(t *testing.T) {
	c := newClock(t0)
	rs := open(t, "", c).Records()
	put := func(task, trig string, st record.Status) {
		t.Helper()
		if err := rs.Put(ctx, record.Record{TaskID: task, Trigger: trig, Status: st, Time: c.now()}); err != nil {
			t.Fatal(err)
		}
		c.add(time.Minute)
	}
	put("t1", "a", record.Retrying)
	put("t1", "a", record.Success)
	put("t2", "b", record.Failed)
	put("t3", "a", record.Untriggered)
	put("t4", "a.b", record.Blocked) // "a" is its prefix
	put("t10", "b", record.Success)  // "t1" is its prefix
	start := t0
	tests := []struct {
		name string
		q    record.Query
		want string
	}{
		{"all, newest first", record.Query{}, "t10:success t4:blocked t3:untriggered t2:failed t1:success t1:retrying"},
		{"trigger", record.Query{Trigger: "a"}, "t3:untriggered t1:success t1:retrying"},
		{"trigger with a prefix", record.Query{Trigger: "a.b"}, "t4:blocked"},
		{"task", record.Query{TaskID: "t1"}, "t1:success t1:retrying"},
		{"task with a prefix", record.Query{TaskID: "t10"}, "t10:success"},
		{"status", record.Query{Status: record.Success}, "t10:success t1:success"},
		{"trigger and status", record.Query{Trigger: "a", Status: record.Retrying}, "t1:retrying"},
		{"task and trigger", record.Query{TaskID: "t1", Trigger: "a"}, "t1:success t1:retrying"},
		{"task of another trigger", record.Query{TaskID: "t1", Trigger: "b"}, ""},
		{"since", record.Query{Since: start.Add(2 * time.Minute)}, "t10:success t4:blocked t3:untriggered t2:failed"},
		{"since, exact time included", record.Query{Trigger: "a", Since: start.Add(time.Minute)}, "t3:untriggered t1:success"},
		{"since in the future", record.Query{Since: c.now().Add(time.Hour)}, ""},
		{"limit", record.Query{Limit: 2}, "t10:success t4:blocked"},
		{"limit with a filter", record.Query{Trigger: "a", Limit: 1}, "t3:untriggered"},
		{"unknown trigger", record.Query{Trigger: "zz"}, ""},
		{"unknown task", record.Query{TaskID: "zz"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := recs(t, rs, tt.q); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestRecordsSameTimeAndDefaults(t *testing.T) {
	c := newClock(t0)
	rs := open(t, "", c).Records()
	// Records at the same instant keep their order; a zero Time is now.
	for i := range record.DefaultLimit + 5 {
		if err := rs.Put(ctx, record.Record{TaskID: fmt.Sprint(i), Trigger: "a", Status: record.Success}); err != nil {
			t.Fatal(err)
		}
	}
	l, err := rs.List(ctx, record.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != record.DefaultLimit {
		t.Fatalf("%d records without a limit, want %d", len(l), record.DefaultLimit)
	}
	if l[0].TaskID != fmt.Sprint(record.DefaultLimit+4) || !l[0].Time.Equal(c.now()) {
		t.Errorf("newest = %+v", l[0])
	}
}

func TestRecordsRetentionAndPurge(t *testing.T) {
	c := newClock(t0)
	s := open(t, "", c) // retention: one day
	rs := s.Records()
	put := func(task, trig string) {
		t.Helper()
		if err := rs.Put(ctx, record.Record{TaskID: task, Trigger: trig, Status: record.Success, Time: c.now()}); err != nil {
			t.Fatal(err)
		}
	}
	// More old records than one purge batch, so Purge takes several.
	for i := range purgeBatch + 10 {
		put(fmt.Sprint("old", i), "a")
		c.add(time.Millisecond)
	}
	put("untriggered", "") // no task id or trigger: no index entries
	c.add(23 * time.Hour)
	put("recent", "a")
	c.add(time.Hour + time.Second) // the first records are now older than the retention
	tests := []struct {
		name string
		q    record.Query
		want string
	}{
		{"all", record.Query{}, "recent:success"},
		{"trigger", record.Query{Trigger: "a"}, "recent:success"},
		{"task", record.Query{TaskID: "old0"}, ""},
		{"since before the retention", record.Query{Since: t0}, "recent:success"},
	}
	check := func(when string) {
		for _, tt := range tests {
			if got := recs(t, rs, tt.q); got != tt.want {
				t.Errorf("%s, %s: got %q, want %q", when, tt.name, got, tt.want)
			}
		}
	}
	check("before purge")
	if n := keys(t, s, bRecords); n != purgeBatch+12 {
		t.Fatalf("%d records stored before purge", n)
	}
	n, err := s.Purge(ctx)
	if err != nil || n != purgeBatch+11 {
		t.Fatalf("purged %d, %v; want %d", n, err, purgeBatch+11)
	}
	check("after purge")
	for _, b := range [][]byte{bRecords, bRecordsTrigger, bRecordsTask} {
		if n := keys(t, s, b); n != 1 {
			t.Errorf("%s holds %d keys after purge, want 1", b, n)
		}
	}
	if n, err := s.Purge(ctx); err != nil || n != 0 {
		t.Errorf("second purge: %d, %v", n, err)
	}
}

func TestDedupe(t *testing.T) {
	c := newClock(t0)
	s := open(t, "", c)
	claim := func(key string, ttl time.Duration) bool {
		t.Helper()
		fresh, err := s.Claim(ctx, key, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return fresh
	}
	if !claim("k", time.Minute) {
		t.Fatal("first claim lost")
	}
	if claim("k", time.Minute) {
		t.Fatal("second claim of a live key won")
	}
	if !claim("other", time.Minute) {
		t.Fatal("another key is independent")
	}
	c.add(59 * time.Second)
	if claim("k", time.Minute) {
		t.Fatal("claim a second before expiry won")
	}
	c.add(time.Second)
	if !claim("k", time.Minute) {
		t.Fatal("an expired key can be claimed again")
	}
	if err := s.Release(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if !claim("k", time.Minute) {
		t.Fatal("a released key can be claimed again")
	}
	if err := s.Release(ctx, "never claimed"); err != nil {
		t.Errorf("release of an unknown key: %v", err)
	}
	// Purge removes expired keys only, however many.
	for i := range 2*purgeBatch + 1 {
		claim(fmt.Sprint("short", i), time.Second)
	}
	claim("long", time.Hour)
	c.add(2 * time.Minute)
	if _, err := s.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if n := keys(t, s, bDedupe); n != 1 {
		t.Errorf("%d keys after purge, want 1 (long)", n)
	}
	if claim("long", time.Hour) {
		t.Error("purge removed a live key")
	}
}

// putRecord writes a record and its index entries in tx (for bulk loads).
func putRecord(tx *bolt.Tx, r record.Record, task []byte) error {
	enc, err := encodeRecord(&r, time.Now())
	if err != nil {
		return err
	}
	return enc.put(tx, task)
}
