package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/auth"
	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// staticTriggers answers every Namespace from memory, as a warm
// CachedTriggers does (a fresh slice per call, as it clones its own).
type staticTriggers []trigger.Trigger

func (s staticTriggers) Namespace(_ context.Context, ns string) ([]trigger.Trigger, error) {
	out := make([]trigger.Trigger, 0, len(s))
	for _, t := range s {
		if t.Namespace == ns {
			out = append(out, t)
		}
	}
	return out, nil
}

// nopQueue accepts every task and keeps none.
type nopQueue struct{ tasks int }

func (q *nopQueue) Enqueue(_ context.Context, ts []delivery.Task) error {
	q.tasks += len(ts)
	return nil
}

// benchNamespaceTriggers are ten triggers of namespace "public": three fire
// on the TCR fixture's push of public/nginx:v1.10.0, seven do not (tag,
// action, repository, a disabled one), so the answer and the log carry
// seven near misses.
func benchNamespaceTriggers() []trigger.Trigger {
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	mk := func(name, repo, tag string, actions ...event.Action) trigger.Trigger {
		return trigger.Trigger{Name: name, Enabled: true, Namespace: "public", Repository: repo, Tag: tag, Actions: actions,
			URL: "https://hooks.example.com/" + name, Format: "tcr", Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
			Version: 1, UpdatedAt: at}
	}
	disabled := mk("disabled", "nginx", "", event.PushImage)
	disabled.Enabled = false
	return []trigger.Trigger{
		mk("nginx-v1", "nginx", "v1.*", event.PushImage),
		mk("every-push", "**", "", event.PushImage, event.UploadChart),
		mk("semver", "/{nginx, redis}", `regex:v[0-9]+\.[0-9]+\.[0-9]+`, event.PushImage),
		mk("release-only", "nginx", "release-*", event.PushImage),
		mk("deletes", "nginx", "", event.DeleteImage),
		mk("team-apps", "team/**", "", event.PushImage),
		mk("pinned-tags", "nginx", "latest;stable", event.PushImage),
		disabled,
		mk("web", "web*", "{env1*, env2*}", event.PushImage),
		mk("nginx-v2", "nginx", "v2.?", event.PushImage),
	}
}

// nopSink accepts every record and keeps none, as a store would take the
// untriggered records `regtrigger serve` writes.
type nopSink struct{}

func (nopSink) Put(context.Context, record.Record) error { return nil }

// nopClaimQueue is a ClaimQueue that owns its Dedupe and finds every key
// new, as the embedded store's queue claims and enqueues in one step.
type nopClaimQueue struct{ nopQueue }

func (q *nopClaimQueue) ClaimEnqueue(_ context.Context, cs []Claim) ([]bool, error) {
	fresh := make([]bool, len(cs))
	for i, c := range cs {
		fresh[i] = true
		q.tasks += len(c.Tasks)
	}
	return fresh, nil
}

func (q *nopClaimQueue) OwnsDedupe(d Dedupe) bool { return d == Dedupe(q) }

func (q *nopClaimQueue) Claim(context.Context, string, time.Duration) (bool, error) { return true, nil }

func (q *nopClaimQueue) Release(context.Context, string) error { return nil }

// benchFixture is the notification the benchmarks send: the TCR push of
// public/nginx:v1.10.0 with a bearer token, and an Authenticator of five
// registries of mixed schemes.
func benchFixture(b *testing.B) (*auth.Authenticator, []byte) {
	b.Helper()
	body, err := os.ReadFile("../registry/testdata/registry-payloads/tencent-tcr/pushImage.json")
	if err != nil {
		b.Fatal(err)
	}
	a, err := auth.New([]auth.Config{
		{Name: "tcr", Source: "tcr", Tokens: []string{tcrToken}},
		{Name: "hub", Tokens: []string{"hub-token-0123456789abcdef"}},
		{Name: "ghcr", Scheme: auth.SchemeGitHub, Tokens: []string{ghSecret}},
		{Name: "artifactory", Scheme: auth.SchemeJFrog, Tokens: []string{jfSecret}},
		{Name: "nexus", Scheme: auth.SchemeNexus, Tokens: []string{nxSecret}},
	})
	if err != nil {
		b.Fatal(err)
	}
	return a, body
}

// checkBenchAnswer fails unless body is the 202 answer for the fixture:
// one event, three tasks (nginx-v1, every-push, semver), seven near misses.
func checkBenchAnswer(b *testing.B, status int, body []byte) {
	b.Helper()
	var ans Accepted
	if status != http.StatusAccepted || json.Unmarshal(body, &ans) != nil {
		b.Fatalf("status %d: %s", status, body)
	}
	if ans.Tasks != 3 || len(ans.Events) != 1 || len(ans.Events[0].Skipped) != 7 {
		b.Fatalf("want 1 event, 3 tasks, 7 near misses: %s", body)
	}
	var fired []string
	for _, t := range ans.Events[0].Tasks {
		fired = append(fired, t.Trigger)
	}
	if !slices.Equal(fired, []string{"nginx-v1", "every-push", "semver"}) {
		b.Fatalf("fired %v", fired)
	}
}

// BenchmarkEndpointHandle is one TCR push through Endpoint.Handle in
// process: bearer-token authentication (five registries of mixed schemes),
// detection and parsing, matching against the namespace's ten triggers
// (compiled once, cached), three tasks enqueued into a no-op queue, and the
// 202 answer. No dedupe store and no record sink (both optional), so no
// I/O. log=discard drops every log line unformatted; log=json writes them
// as JSON into io.Discard at the default Info level, as the functions do
// (the "sender authenticated" and seven "untriggered" lines are Debug, so
// that is the one "notification accepted" line).
func BenchmarkEndpointHandle(b *testing.B) {
	a, body := benchFixture(b)
	in := Inbound{
		ID:     "bench-request",
		Method: http.MethodPost,
		Path:   "/v1/notify",
		Header: http.Header{"Authorization": {"Bearer " + tcrToken}, "Content-Type": {"application/json"}},
		Body:   body,
	}
	ts := benchNamespaceTriggers()
	for _, lg := range []struct {
		name string
		h    slog.Handler
	}{
		{"log=discard", slog.DiscardHandler},
		{"log=json", slog.NewJSONHandler(io.Discard, nil)},
	} {
		b.Run(lg.name, func(b *testing.B) {
			q := &nopQueue{}
			e := &Endpoint{Auth: a, Service: &Service{
				Triggers: staticTriggers(ts),
				Queue:    q,
				Logger:   slog.New(lg.h),
				Now:      func() time.Time { return time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC) },
			}}
			resp := e.Handle(context.Background(), in)
			checkBenchAnswer(b, resp.Status, resp.Body)
			b.ReportAllocs()
			for b.Loop() {
				if resp := e.Handle(context.Background(), in); resp.Status != http.StatusAccepted {
					b.Fatalf("status %d: %s", resp.Status, resp.Body)
				}
			}
		})
	}
}

// benchWriter is a ResponseWriter that keeps the status and drops the body,
// reusing its header map, so that the benchmark measures the handler.
type benchWriter struct {
	h      http.Header
	status int
	body   []byte
}

func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) WriteHeader(s int)   { w.status = s }
func (w *benchWriter) Write(p []byte) (int, error) {
	w.body = append(w.body, p...)
	return len(p), nil
}

// BenchmarkServeHTTP is the fixture through Endpoint.ServeHTTP as
// `regtrigger serve` runs it, minus the network and the store: an
// *http.Request with a Content-Length, the body read from it, the same
// work as BenchmarkEndpointHandle, with the untriggered records handed to a
// record sink and the duplicate key claimed together with the tasks (both
// no-ops here, as serve's store), JSON logs at Info into io.Discard, and
// the answer written to the ResponseWriter.
func BenchmarkServeHTTP(b *testing.B) {
	a, body := benchFixture(b)
	q := &nopClaimQueue{}
	e := &Endpoint{Auth: a, Service: &Service{
		Triggers: staticTriggers(benchNamespaceTriggers()),
		Queue:    q,
		Dedupe:   q,
		Records:  nopSink{},
		Logger:   slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Now:      func() time.Time { return time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC) },
	}}
	rd := bytes.NewReader(body)
	req := httptest.NewRequest(http.MethodPost, "/v1/notify", io.NopCloser(rd))
	req.ContentLength = int64(len(body))
	req.Header.Set("Authorization", "Bearer "+tcrToken)
	req.Header.Set("Content-Type", "application/json")
	w := &benchWriter{h: http.Header{}}
	serve := func() {
		rd.Reset(body)
		clear(w.h)
		w.status, w.body = 0, w.body[:0]
		e.ServeHTTP(w, req)
	}
	serve()
	checkBenchAnswer(b, w.status, w.body)
	b.ReportAllocs()
	for b.Loop() {
		if serve(); w.status != http.StatusAccepted {
			b.Fatalf("status %d: %s", w.status, w.body)
		}
	}
}
