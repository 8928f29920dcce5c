package boltstore

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The parallel benchmarks run 16 goroutines (8 per CPU) against one store,
// the way serve's HTTP handlers and delivery workers share it, and report
// the write transactions (commits, each with its fsyncs) per operation.
// They use only the store's long-standing methods, so they run unchanged
// against older versions of the package for comparison.

func benchTxID(b *testing.B, s *Store) int {
	b.Helper()
	var id int
	if err := s.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		b.Fatal(err)
	}
	return id
}

// BenchmarkParallel is the store's share of one notification end to end:
// claim its duplicate key, enqueue its task (1 KiB), lease a due task,
// store the delivery's record and archive the task.
func BenchmarkParallel(b *testing.B) {
	c := newClock(time.Now())
	s := open(b, "", c)
	rs := s.Records()
	payload := make([]byte, 1024)
	var n atomic.Int64
	before := benchTxID(b, s)
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			id := strconv.FormatInt(i, 10)
			if fresh, err := s.Claim(ctx, "k"+id, time.Hour); err != nil || !fresh {
				b.Fatal(fresh, err)
			}
			if err := s.Enqueue(ctx, []Item{{ID: id, Payload: payload}}); err != nil {
				b.Fatal(err)
			}
			items, err := s.Lease(ctx, 1, time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			for _, it := range items {
				if err := rs.Put(ctx, benchRecord(int(i), c.now())); err != nil {
					b.Fatal(err)
				}
				if err := s.Archive(ctx, it.ID); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.ReportMetric(float64(benchTxID(b, s)-before)/float64(b.N), "commits/op")
}

// BenchmarkParallelNotify is the receiver's part: claim, then enqueue.
func BenchmarkParallelNotify(b *testing.B) {
	s := open(b, "", newClock(time.Now()))
	payload := make([]byte, 1024)
	var n atomic.Int64
	before := benchTxID(b, s)
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := strconv.FormatInt(n.Add(1), 10)
			if fresh, err := s.Claim(ctx, "k"+id, time.Hour); err != nil || !fresh {
				b.Fatal(fresh, err)
			}
			if err := s.Enqueue(ctx, []Item{{ID: id, Payload: payload}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(benchTxID(b, s)-before)/float64(b.N), "commits/op")
}

// BenchmarkParallelRecordPut is the delivery log under concurrent workers.
func BenchmarkParallelRecordPut(b *testing.B) {
	c := newClock(time.Now())
	s := open(b, "", c)
	rs := s.Records()
	var n atomic.Int64
	before := benchTxID(b, s)
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := rs.Put(ctx, benchRecord(int(n.Add(1)), c.now())); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(benchTxID(b, s)-before)/float64(b.N), "commits/op")
}
