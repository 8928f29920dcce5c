package boltstore

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// The parallel benchmarks run 16 goroutines (8 per CPU) against one store,
// the way serve's HTTP handlers and delivery workers share it, and report
// the write transactions (commits, each with its fsyncs) per operation.

// BenchmarkParallel is the store's share of one notification end to end,
// as serve makes it: claim its duplicate key and enqueue its task (1 KiB)
// in one call, lease a due task, finish it with its delivery record.
func BenchmarkParallel(b *testing.B) {
	c := newClock(time.Now())
	s := open(b, "", c)
	payload := make([]byte, 1024)
	var n atomic.Int64
	before := txid(b, s)
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			id := strconv.FormatInt(i, 10)
			fresh, err := s.ClaimEnqueue(ctx, []Claimed{{Key: "k" + id, TTL: time.Hour, Items: []Item{{ID: id, Payload: payload}}}})
			if err != nil || !fresh[0] {
				b.Fatal(fresh, err)
			}
			items, err := s.Lease(ctx, 1, time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			for _, it := range items {
				rec := benchRecord(int(i), c.now())
				rec.TaskID = it.ID
				if err := s.Finish(ctx, it.ID, &rec); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.ReportMetric(float64(txid(b, s)-before)/float64(b.N), "commits/op")
}

// BenchmarkParallelRecordPut is the delivery log under concurrent workers.
func BenchmarkParallelRecordPut(b *testing.B) {
	c := newClock(time.Now())
	s := open(b, "", c)
	rs := s.Records()
	var n atomic.Int64
	before := txid(b, s)
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := rs.Put(ctx, benchRecord(int(n.Add(1)), c.now())); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(txid(b, s)-before)/float64(b.N), "commits/op")
}
