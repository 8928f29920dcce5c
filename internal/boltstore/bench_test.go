package boltstore

import (
	"testing"

	"github.com/regtrigger/regtrigger/internal/storetest"
)

// BenchmarkStore runs the embedded stores' benchmarks on boltstore:
// commits/op counts bbolt transactions (the checkpointer's), not the
// journal's fsyncs.
func BenchmarkStore(b *testing.B) { storetest.Bench(b, opener) }
