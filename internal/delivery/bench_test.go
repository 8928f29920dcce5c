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
)

// BenchmarkDeliver measures one whole delivery — render, sign, guarded POST
// to a loopback sink, classify, log — with 8 concurrent deliveries.
func BenchmarkDeliver(b *testing.B) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer sink.Close()
	client, err := outbound.NewClient(outbound.Config{AllowPrivate: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if err != nil {
		b.Fatal(err)
	}
	defer client.CloseIdleConnections()
	e := &Engine{Sender: client, UserAgent: "regtrigger/bench", Logger: slog.New(slog.DiscardHandler)}
	task := testTask()
	task.Trigger.URL = sink.URL + "/hook"
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
}
