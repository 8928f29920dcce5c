package boltstore

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/record"
)

// Every write below is one bbolt transaction, and bbolt syncs the file at
// each commit: these numbers are mostly the disk's fsync latency.

func BenchmarkEnqueueLeaseFinish(b *testing.B) {
	s := open(b, "", newClock(time.Now()))
	payload := make([]byte, 1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		id := strconv.Itoa(i)
		i++
		if err := s.Enqueue(ctx, []Item{{ID: id, Payload: payload}}); err != nil {
			b.Fatal(err)
		}
		items, err := s.Lease(ctx, 1, time.Minute)
		if err != nil || len(items) != 1 {
			b.Fatal(items, err)
		}
		if err := s.Finish(ctx, id, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func benchRecord(i int, at time.Time) record.Record {
	return record.Record{
		TaskID: fmt.Sprintf("tsk_%08d", i/3), Trigger: fmt.Sprintf("trigger-%d", i%20), Source: "harbor",
		Action: event.PushImage, Namespace: "library", Repository: "nginx", Tag: "1.27",
		Target: "hooks.example.com", Status: record.Success, HTTPStatus: 200, Latency: 42 * time.Millisecond,
		Attempt: 1, Time: at,
	}
}

func BenchmarkRecordPut(b *testing.B) {
	c := newClock(time.Now())
	rs := open(b, "", c).Records()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := rs.Put(ctx, benchRecord(i, c.now())); err != nil {
			b.Fatal(err)
		}
		i++
		c.add(time.Millisecond)
	}
}

// BenchmarkRecordList lists a page of 100 from 20,000 records: everything,
// one trigger's (1 in 20) and one status (1 in 4, the others are scanned).
func BenchmarkRecordList(b *testing.B) {
	c := newClock(time.Now())
	s := open(b, "", c)
	rs := s.Records()
	const n = 20000
	for start := 0; start < n; start += 1000 {
		// Bulk load in big transactions; Put would fsync 20,000 times.
		err := s.update(ctx, "load", func(tx *bolt.Tx) error {
			for i := start; i < start+1000; i++ {
				r := benchRecord(i, c.now())
				if i%4 != 0 {
					r.Status = record.Failed
				}
				if err := putRecord(tx, r, nil); err != nil {
					return err
				}
				c.add(time.Millisecond)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	for _, q := range []struct {
		name string
		q    record.Query
	}{
		{"all", record.Query{}},
		{"trigger", record.Query{Trigger: "trigger-7"}},
		{"task", record.Query{TaskID: "tsk_00003000"}},
		{"status", record.Query{Status: record.Success}},
	} {
		b.Run(q.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				l, err := rs.List(ctx, q.q)
				if err != nil || len(l) == 0 {
					b.Fatal(len(l), err)
				}
			}
		})
	}
}

// BenchmarkParallelClaimEnqueue is BenchmarkParallel's notify step as the
// receiver does it with this store's queue: claim and enqueue in one call.
func BenchmarkParallelClaimEnqueue(b *testing.B) {
	s := open(b, "", newClock(time.Now()))
	payload := make([]byte, 1024)
	var n atomic.Int64
	before := txid(b, s)
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := strconv.FormatInt(n.Add(1), 10)
			fresh, err := s.ClaimEnqueue(ctx, []Claimed{{Key: "k" + id, TTL: time.Hour, Items: []Item{{ID: id, Payload: payload}}}})
			if err != nil || !fresh[0] {
				b.Fatal(fresh, err)
			}
		}
	})
	b.ReportMetric(float64(txid(b, s)-before)/float64(b.N), "commits/op")
}

// BenchmarkTriggerGet is the read serve's dispatcher makes per task: the
// task's trigger, by name, from the file (no cache), among 100 triggers.
func BenchmarkTriggerGet(b *testing.B) {
	s := open(b, "", newClock(time.Now()))
	ts := s.Triggers()
	for i := range 100 {
		t := tr(fmt.Sprintf("trigger-%02d", i), "ns")
		t.Headers = map[string]string{"Authorization": "Bearer token"}
		t.Secrets = []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
		if _, err := ts.Create(ctx, t); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := ts.Get(ctx, fmt.Sprintf("trigger-%02d", i%100)); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}
