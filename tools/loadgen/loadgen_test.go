package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/receiver"
	"github.com/regtrigger/regtrigger/internal/registry"
)

func TestPercentileNearestRank(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond // 1..100 ms
	}
	for _, tt := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value", []time.Duration{7}, 99, 7},
		{"p50 of 1..100", hundred, 50, 50 * time.Millisecond},
		{"p90 of 1..100", hundred, 90, 90 * time.Millisecond},
		{"p99 of 1..100", hundred, 99, 99 * time.Millisecond},
		{"p100 is the max", hundred, 100, 100 * time.Millisecond},
		{"p0 is the min", hundred, 0, time.Millisecond},
		// rank ceil(0.5*4) = 2; ceil(0.99*4) = 4
		{"p50 of four", []time.Duration{1, 2, 3, 4}, 50, 2},
		{"p99 of four", []time.Duration{1, 2, 3, 4}, 99, 4},
		// rank ceil(0.5*5) = 3
		{"p50 of five", []time.Duration{10, 20, 30, 40, 50}, 50, 30},
	} {
		if got := percentile(tt.sorted, tt.p); got != tt.want {
			t.Errorf("%s: percentile(%v) = %v, want %v", tt.name, tt.p, got, tt.want)
		}
	}
}

func TestSummarizeSortsACopy(t *testing.T) {
	in := []time.Duration{5, 1, 4, 2, 3}
	s := summarize(in)
	if s != (Summary{N: 5, P50: 3, P90: 5, P99: 5, Max: 5}) {
		t.Errorf("summary %+v", s)
	}
	if in[0] != 5 || in[1] != 1 {
		t.Errorf("input reordered: %v", in)
	}
	if summarize(nil) != (Summary{}) {
		t.Error("empty summary")
	}
}

func TestArithmetic(t *testing.T) {
	if got := perSecond(600, 3*time.Second); got != 200 {
		t.Errorf("perSecond = %v", got)
	}
	if got := perSecond(1, 0); got != 0 {
		t.Errorf("perSecond over nothing = %v", got)
	}
	for _, tt := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{9, 1, 5}, 5}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
	start := time.Unix(1000, 0)
	for _, tt := range []struct {
		rate float64
		i    int
		want time.Duration
	}{{200, 0, 0}, {200, 1, 5 * time.Millisecond}, {200, 6000, 30 * time.Second}, {3, 1, 333333333}} {
		if got := scheduled(start, tt.rate, tt.i).Sub(start); got != tt.want {
			t.Errorf("scheduled(%v/s, %d) = +%v, want +%v", tt.rate, tt.i, got, tt.want)
		}
	}
	for d, want := range map[time.Duration]string{1234 * time.Microsecond: "1.23 ms", 45678 * time.Microsecond: "45.7 ms", 1234 * time.Millisecond: "1234 ms"} {
		if got := ms(d); got != want {
			t.Errorf("ms(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestBodiesAreDistinctEvents: every generated body is one TCR push that
// the registry parser reads, and no two share a duplicate-check fingerprint.
func TestBodiesAreDistinctEvents(t *testing.T) {
	gen := &bodies{run: "test"}
	seen := map[string]bool{}
	now := time.Now()
	for range 50 {
		b, tag := gen.next(now) // the same second: the tag alone must tell them apart
		evs, err := registry.Parse(registry.Notification{Body: b, ReceivedAt: now}, "")
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if len(evs) != 1 {
			t.Fatalf("%d events", len(evs))
		}
		ev := evs[0]
		if ev.Source != "tcr" || ev.Action != event.PushImage || ev.Namespace != "public" || ev.Repository != "nginx" || ev.Tag != tag || ev.OccurredAt.Unix() != now.Unix() {
			t.Errorf("event %+v", ev)
		}
		fp := receiver.Fingerprint(ev)
		if seen[fp] {
			t.Fatalf("fingerprint of %s repeated", tag)
		}
		seen[fp] = true
	}
}

func TestBareHandler(t *testing.T) {
	rec := httptest.NewRecorder()
	bareHandler(rec, httptest.NewRequest(http.MethodPost, "/v1/notify", bytes.NewReader(tcrBody("v1", time.Now()))))
	if rec.Code != http.StatusAccepted || rec.Body.Len() != 0 {
		t.Errorf("%d %q", rec.Code, rec.Body)
	}
}

// fakeServe answers like serve (202 with one task id) and delivers that
// task to the sink after answering.
func fakeServe(t *testing.T, snk *sink) *httptest.Server {
	var seq atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		id := "tsk_" + strconv.FormatInt(seq.Add(1), 10)
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"events":[{"tasks":[{"id":%q,"trigger":"loadgen"}]}],"tasks":1}`, id)
		go func() {
			req, _ := http.NewRequest(http.MethodPost, snk.url+"/hook", bytes.NewReader([]byte("{}")))
			req.Header.Set("webhook-id", id)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestSteadyJoinsAnswersAndArrivals: every accepted task is matched with its
// arrival at the sink by webhook-id (no timing is asserted).
func TestSteadyJoinsAnswersAndArrivals(t *testing.T) {
	snk, err := startSink()
	if err != nil {
		t.Fatal(err)
	}
	defer snk.close()
	srv := fakeServe(t, snk)
	c := newClient(srv.URL, "tok", &bodies{run: "t"}, 8)
	res := steady(c, 200, 200*time.Millisecond, snk, 10*time.Second)
	if res.sent != 40 || res.accepted != 40 || res.missing != 0 || res.delivery.N != 40 || res.answer.N != 40 || res.errors != 0 || len(res.other) != 0 {
		t.Errorf("result %+v", res)
	}
	if res.delivery.P50 <= 0 || res.delivery.Max < res.delivery.P99 || res.delivery.P99 < res.delivery.P50 {
		t.Errorf("delivery percentiles out of order: %+v", res.delivery)
	}

	// A wrong token: nothing accepted, every answer counted as a 401.
	bad := newClient(srv.URL, "wrong", &bodies{run: "u"}, 8)
	res = steady(bad, 100, 100*time.Millisecond, snk, time.Second)
	if res.accepted != 0 || res.other[http.StatusUnauthorized] != 10 || res.delivery.N != 0 {
		t.Errorf("refused run %+v", res)
	}
	if got := statuses(res.other, 2); got != "10×401, 2 transport errors" {
		t.Errorf("statuses %q", got)
	}
}

// TestSaturateCountsAnswers: a short closed-loop run against the bare
// handler and the fake serve counts only 202 answers.
func TestSaturateCountsAnswers(t *testing.T) {
	bare := httptest.NewServer(http.HandlerFunc(bareHandler))
	defer bare.Close()
	s := saturate(newClient(bare.URL, "tok", &bodies{run: "b"}, 2), 2, 50*time.Millisecond, 200*time.Millisecond, nil)
	if s.accepted == 0 || s.errors != 0 || len(s.other) != 0 || s.latency.N != s.accepted || s.rate() <= 0 {
		t.Errorf("bare run %+v", s)
	}
	snk, err := startSink()
	if err != nil {
		t.Fatal(err)
	}
	defer snk.close()
	srv := fakeServe(t, snk)
	s = saturate(newClient(srv.URL, "wrong", &bodies{run: "w"}, 2), 2, 0, 100*time.Millisecond, snk)
	if s.accepted != 0 || s.other[http.StatusUnauthorized] == 0 || s.sinkN != 0 {
		t.Errorf("refused run %+v", s)
	}
}
