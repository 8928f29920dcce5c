package delivery

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/regtrigger/regtrigger/internal/outbound"
	"github.com/regtrigger/regtrigger/internal/record"
)

// nopSink accepts every record and keeps none.
type nopSink struct{}

func (nopSink) Put(context.Context, record.Record) error { return nil }

// BenchmarkDeliver measures one whole delivery — render, sign, guarded POST
// to a loopback sink, classify, log — with 8 concurrent deliveries.
// log=discard drops the log line unformatted and keeps no record;
// log=json writes the line as JSON into io.Discard at Info and hands the
// record to a sink, as `regtrigger serve` does (its store is a no-op here).
func BenchmarkDeliver(b *testing.B) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer sink.Close()
	for _, bc := range []struct {
		name     string
		h        slog.Handler
		sink     record.Sink
		policies bool // the circuit (in memory, as serve keeps it) and the limits, none reached
	}{
		{"log=discard", slog.DiscardHandler, nil, false},
		{"log=json", slog.NewJSONHandler(io.Discard, nil), nopSink{}, false},
		{"log=json/policies", slog.NewJSONHandler(io.Discard, nil), nopSink{}, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			client, err := outbound.NewClient(outbound.Config{AllowPrivate: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
			if err != nil {
				b.Fatal(err)
			}
			defer client.CloseIdleConnections()
			tr := testTrigger()
			tr.URL = sink.URL + "/hook"
			e := &Engine{Sender: client, Triggers: &TriggerCache{Triggers: FixedTriggers(tr)}, UserAgent: "regtrigger/bench", Logger: slog.New(bc.h), Sink: bc.sink}
			if bc.policies {
				tr.MaxConcurrency = 1000 // a rate would pace the benchmark itself
				e.Triggers = &TriggerCache{Triggers: FixedTriggers(tr)}
				e.Health, e.Limits = &MemHealth{}, &Limits{}
			}
			task := testTask()
			b.ReportAllocs()
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if out := e.Deliver(context.Background(), task); out.Record.HTTPStatus != http.StatusNoContent {
						b.Errorf("record %+v", out.Record)
						return
					}
				}
			})
		})
	}
}

// BenchmarkTriggerCacheHit is the read the dispatcher makes per task on
// Lambda and SCF once a trigger is cached (it stands for a GetItem).
func BenchmarkTriggerCacheHit(b *testing.B) {
	c := &TriggerCache{Triggers: FixedTriggers(testTrigger())}
	ctx := context.Background()
	if _, err := c.Get(ctx, "deploy"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Get(ctx, "deploy"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
