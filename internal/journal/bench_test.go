package journal

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// The benchmarks append 1 KiB records, about one notification's task, to a
// journal in the test's temporary directory: each Append returns once its
// record is synced, so these measure the disk's fdatasync as much as the
// code. syncs/op shows how many appends share a sync.

func benchJournal(b *testing.B) (*Journal, *atomic.Int64) {
	b.Helper()
	j, err := Open(filepath.Join(b.TempDir(), "j"), testID, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { j.Close() })
	var syncs atomic.Int64
	j.fsync = func(f *os.File) error { syncs.Add(1); return fdatasync(f) }
	// The first segment is made before the timer starts.
	if _, err := j.Append(make([]byte, 1024)); err != nil {
		b.Fatal(err)
	}
	return j, &syncs
}

// BenchmarkAppend is one writer: a sync per record.
func BenchmarkAppend(b *testing.B) {
	j, syncs := benchJournal(b)
	rec := make([]byte, 1024)
	before := syncs.Load()
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := j.Append(rec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(syncs.Load()-before)/float64(b.N), "syncs/op")
}

// BenchmarkAppendParallel is 16 writers (8 per CPU on two), as serve's
// handlers and delivery workers share the journal: they share syncs.
func BenchmarkAppendParallel(b *testing.B) {
	j, syncs := benchJournal(b)
	before := syncs.Load()
	b.SetBytes(1024)
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		rec := make([]byte, 1024)
		for pb.Next() {
			if _, err := j.Append(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(syncs.Load()-before)/float64(b.N), "syncs/op")
}
