package storetest

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/record"
)

// Bench runs the stores' benchmarks on the stores open opens. Every write
// is durable when it returns (an fsync, shared by concurrent writes): the
// serial ones are mostly the disk's fsync latency. The parallel ones run
// 16 goroutines (8 per CPU) against one store, the way serve's HTTP
// handlers and delivery workers share it, and report commits/op where the
// store counts them (Opened.Commits).
func Bench(b *testing.B, open Opener) {
	for _, bb := range []struct {
		name string
		fn   func(*testing.B, Opener)
	}{
		{"EnqueueLeaseFinish", benchEnqueueLeaseFinish},
		{"RecordPut", benchRecordPut},
		{"RecordList", benchRecordList},
		{"TriggerGet", benchTriggerGet},
		{"Parallel", benchParallel},
		{"ParallelClaimEnqueue", benchParallelClaimEnqueue},
		{"ParallelRecordPut", benchParallelRecordPut},
		{"WindowsBurst", benchWindowsBurst},
	} {
		b.Run(bb.name, func(b *testing.B) { bb.fn(b, open) })
	}
}

func benchEnqueueLeaseFinish(b *testing.B, open Opener) {
	s := open(b, "", NewClock(time.Now()))
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

func benchRecordPut(b *testing.B, open Opener) {
	c := NewClock(time.Now())
	rs := open(b, "", c).Records()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := rs.Put(ctx, benchRecord(i, c.Now())); err != nil {
			b.Fatal(err)
		}
		i++
		c.Add(time.Millisecond)
	}
}

// benchRecordList lists a page of 100 from 20,000 records: everything,
// one trigger's (1 in 20), one task's and one status (1 in 4, the others
// are scanned).
func benchRecordList(b *testing.B, open Opener) {
	start := time.Now().Add(-time.Hour)
	s := open(b, "", NewClock(time.Now()))
	rs := s.Records()
	const n, writers = 20000, 32
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := w; i < n; i += writers {
				r := benchRecord(i, start.Add(time.Duration(i)*time.Millisecond))
				if i%4 != 0 {
					r.Status = record.Failed
				}
				if err := rs.Put(ctx, r); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
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

// benchTriggerGet is the read serve's dispatcher makes per task: the
// task's trigger, by name, among 100 triggers.
func benchTriggerGet(b *testing.B, open Opener) {
	ts := open(b, "", NewClock(time.Now())).Triggers()
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

// parallel runs op from 16 goroutines and reports commits/op.
func parallel(b *testing.B, s *Opened, op func(i int64)) {
	var n atomic.Int64
	before := 0
	if s.Commits != nil {
		before = s.Commits(b)
	}
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			op(n.Add(1))
		}
	})
	if s.Commits != nil {
		b.ReportMetric(float64(s.Commits(b)-before)/float64(b.N), "commits/op")
	}
}

// benchParallel is the store's share of one notification end to end, as
// serve makes it: claim its duplicate key and enqueue its task (1 KiB) in
// one call, lease a due task, finish it with its delivery record.
func benchParallel(b *testing.B, open Opener) {
	c := NewClock(time.Now())
	s := open(b, "", c)
	payload := make([]byte, 1024)
	parallel(b, s, func(i int64) {
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
			rec := benchRecord(int(i), c.Now())
			rec.TaskID = it.ID
			if err := s.Finish(ctx, it.ID, &rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchParallelClaimEnqueue is benchParallel's notify step alone.
func benchParallelClaimEnqueue(b *testing.B, open Opener) {
	s := open(b, "", NewClock(time.Now()))
	payload := make([]byte, 1024)
	parallel(b, s, func(i int64) {
		id := strconv.FormatInt(i, 10)
		fresh, err := s.ClaimEnqueue(ctx, []Claimed{{Key: "k" + id, TTL: time.Hour, Items: []Item{{ID: id, Payload: payload}}}})
		if err != nil || !fresh[0] {
			b.Fatal(fresh, err)
		}
	})
}

// benchParallelRecordPut is the delivery log under concurrent workers.
func benchParallelRecordPut(b *testing.B, open Opener) {
	c := NewClock(time.Now())
	s := open(b, "", c)
	rs := s.Records()
	parallel(b, s, func(i int64) {
		if err := rs.Put(ctx, benchRecord(int(i), c.Now())); err != nil {
			b.Fatal(err)
		}
	})
}
