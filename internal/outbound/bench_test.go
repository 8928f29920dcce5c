package outbound

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkPost compares the guarded Client with a plain net/http client
// posting to the same loopback sink, with the same concurrency
// (b.SetParallelism(4): 4 goroutines per GOMAXPROCS) and the same number of
// idle connections per host. ns/op is wall time per request across all
// goroutines, so throughput ratio = plain ns/op / guarded ns/op.
func BenchmarkPost(b *testing.B) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	}))
	defer sink.Close()
	body := bytes.Repeat([]byte("p"), 1024)
	header := http.Header{"Content-Type": {"application/json"}, "Webhook-Id": {"msg_1"}}

	b.Run("guarded", func(b *testing.B) {
		c, err := NewClient(Config{AllowPrivate: loopbackOnly, UserAgent: "regtrigger-bench"})
		if err != nil {
			b.Fatal(err)
		}
		defer c.CloseIdleConnections()
		b.ReportAllocs()
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := c.Post(context.Background(), sink.URL+"/hook", header, body)
				if err != nil {
					b.Error(err)
					return
				}
				if resp.Status != http.StatusOK {
					b.Errorf("status %d", resp.Status)
					return
				}
			}
		})
	})

	b.Run("plain", func(b *testing.B) {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 16 // as the guarded client
		hc := &http.Client{Transport: tr}
		defer tr.CloseIdleConnections()
		b.ReportAllocs()
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, sink.URL+"/hook", bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				req.Header = header.Clone()
				req.Header.Set("User-Agent", "regtrigger-bench")
				resp, err := hc.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, err = io.ReadAll(io.LimitReader(resp.Body, DefaultMaxBody+1))
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Errorf("status %d, %v", resp.StatusCode, err)
					return
				}
			}
		})
	})
}
