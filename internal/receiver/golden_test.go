package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/auth"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

var update = flag.Bool("update", false, "rewrite golden files")

// tcrPush is a TCR push of public/<repo> naming several tags, at Unix time at.
func tcrPush(repo string, at int64, tags ...string) []byte {
	var res []string
	for _, tag := range tags {
		res = append(res, fmt.Sprintf(`{"digest":"sha256:%064x","tag":%q,"resource_url":"xxx-bj.tencentcloudcr.com/public/%s:%s"}`, len(tag), tag, repo, tag))
	}
	return fmt.Appendf(nil, `{"type":"pushImage","occur_at":%d,"event_data":{"resources":[%s],"repository":{"date_created":1587119137,"name":%q,"namespace":"public","repo_full_name":"public/%s","repo_type":"public"}},"operator":"332133xxxx"}`,
		at, strings.Join(res, ","), repo, repo)
}

// TestHandleGolden pins everything a sequence of notifications produces,
// byte for byte: the answers, the log lines (at Debug, without times), the
// untriggered records stored and the tasks enqueued (as JSON). Several
// events per notification, near misses, a raw-format trigger, duplicates,
// a notification half duplicate, one for a namespace without triggers, and
// refusals. Run with -update to rewrite testdata/handle.golden after an
// intended change.
func TestHandleGolden(t *testing.T) {
	a, err := auth.New([]auth.Config{{Name: "tcr", Source: "tcr", Tokens: []string{tcrToken}}})
	if err != nil {
		t.Fatal(err)
	}
	ts := append(benchNamespaceTriggers(), trigger.Trigger{Name: "raw-copy", Enabled: true, Namespace: "public", Repository: "nginx",
		Tag: "release-*", Actions: []event.Action{event.PushImage}, URL: "https://hooks.example.com/raw?token=secret", Format: "raw", Version: 2,
		UpdatedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)})
	var logs bytes.Buffer
	queue, sink := &fakeQueue{}, &fakeSink{}
	e := &Endpoint{Auth: a, Service: &Service{
		Triggers: staticTriggers(ts), Queue: queue, Dedupe: &fakeDedupe{keys: map[string]bool{}}, Records: sink,
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: dropTime})),
		Now:    func() time.Time { return time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC) },
	}}
	header := http.Header{"Authorization": {"Bearer " + tcrToken}, "Content-Type": {"application/json"}}
	steps := []struct {
		name   string
		header http.Header
		body   []byte
	}{
		{"three tags", header, tcrPush("nginx", 1764633600, "v1.10.0", "latest", "release-1")},
		{"the same again", header, tcrPush("nginx", 1764633600, "v1.10.0", "latest", "release-1")},
		{"one tag again, one new", header, tcrPush("nginx", 1764633600, "release-1", "v2.1")},
		{"another repository", header, tcrPush("web-front", 1764633601, "env1-a", "prod")},
		{"no trigger for the namespace", header, bytes.Replace(tcrPush("nginx", 1764633602, "v1"), []byte(`"namespace":"public"`), []byte(`"namespace":"private"`), 1)},
		{"bad token", http.Header{"Authorization": {"Bearer wrong-token-0123456789"}}, tcrPush("nginx", 1764633603, "v1")},
		{"malformed", header, []byte(`{"type":"pushImage","occur_at":`)},
	}
	var out bytes.Buffer
	for i, st := range steps {
		queue.tasks, sink.recs = nil, nil
		logs.Reset()
		resp := e.Handle(context.Background(), Inbound{ID: fmt.Sprintf("req_%d", i+1), Method: http.MethodPost, Path: "/v1/notify", Header: st.header, Body: st.body})
		fmt.Fprintf(&out, "== %s\nstatus %d %v\n%s\n-- logs\n%s-- records\n", st.name, resp.Status, resp.Header, resp.Body, logs.String())
		for _, r := range sink.recs {
			b, _ := json.Marshal(r)
			fmt.Fprintf(&out, "%s\n", b)
		}
		out.WriteString("-- tasks\n")
		for _, task := range queue.tasks {
			b, _ := json.Marshal(task)
			fmt.Fprintf(&out, "%s\n", b)
		}
	}
	const golden = "testdata/handle.golden"
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n%s", golden, out.Bytes())
	}
}
