package receiver

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/auth"
	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/event"
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
			var ans Accepted
			if resp.Status != http.StatusAccepted || json.Unmarshal(resp.Body, &ans) != nil {
				b.Fatalf("status %d: %s", resp.Status, resp.Body)
			}
			if ans.Tasks != 3 || len(ans.Events) != 1 || len(ans.Events[0].Skipped) != 7 {
				b.Fatalf("want 1 event, 3 tasks, 7 near misses: %s", resp.Body)
			}
			var fired []string
			for _, t := range ans.Events[0].Tasks {
				fired = append(fired, t.Trigger)
			}
			if !slices.Equal(fired, []string{"nginx-v1", "every-push", "semver"}) {
				b.Fatalf("fired %v", fired)
			}
			b.ReportAllocs()
			for b.Loop() {
				if resp := e.Handle(context.Background(), in); resp.Status != http.StatusAccepted {
					b.Fatalf("status %d: %s", resp.Status, resp.Body)
				}
			}
		})
	}
}
