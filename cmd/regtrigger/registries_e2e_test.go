package main

import (
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/fixture"
	"github.com/regtrigger/regtrigger/internal/registry"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// corpus is the registry body corpus, from this package's directory.
var corpus = fixture.Open(filepath.Join("..", "..", fixture.Dir))

// corpusCase is one corpus body with the headers it was sent with and the
// events regtrigger reads from it.
type corpusCase struct {
	entry  fixture.Entry
	body   []byte
	header http.Header
	events []event.Event
}

func corpusCases(t *testing.T) []corpusCase {
	t.Helper()
	m, err := corpus.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var out []corpusCase
	for _, e := range m {
		b, err := corpus.Body(e)
		if err != nil {
			t.Fatal(err)
		}
		h, err := corpus.Header(e)
		if err != nil {
			t.Fatal(err)
		}
		h = fixture.WithoutCredentials(h)
		evs, _ := registry.Parse(registry.Notification{Body: b, Header: h}, "")
		out = append(out, corpusCase{entry: e, body: b, header: h, events: evs})
	}
	return out
}

// corpusTriggers writes a trigger file with one trigger per namespace of
// the corpus's events, firing on every action for every repository and tag.
func corpusTriggers(t *testing.T, dir, url string, cases []corpusCase) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("triggers:\n")
	seen := map[string]bool{}
	for _, c := range cases {
		for _, ev := range c.events {
			if seen[ev.Namespace] {
				continue
			}
			seen[ev.Namespace] = true
			tr := trigger.Trigger{Name: fmt.Sprintf("ns-%d", len(seen)), Namespace: ev.Namespace, Actions: event.Actions, URL: url + "/hook"}
			// The allowance serve gets with --allow-private.
			rules := trigger.Rules{AllowPrivate: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
			if probs := rules.Validate(&tr); len(probs) > 0 {
				t.Fatalf("namespace %q cannot have a trigger: %v", ev.Namespace, probs)
			}
			fmt.Fprintf(&b, "  - name: %s\n    namespace: %q\n    actions: [pushImage, pullImage, deleteImage, uploadChart, downloadChart, deleteChart]\n    url: %s\n", tr.Name, tr.Namespace, tr.URL)
		}
	}
	p := filepath.Join(dir, "corpus-triggers.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestServeEveryRegistryFormat posts every body of the corpus to a real
// serve, as its registry would (with the headers it sends, the token in the
// query), and checks the answer names the events `inspect` reads and that
// each one is delivered.
func TestServeEveryRegistryFormat(t *testing.T) {
	cases := corpusCases(t)
	tg := newTarget(t)
	dir := t.TempDir()
	s := startServe(t, filepath.Join(dir, "store.db"), "--triggers", corpusTriggers(t, dir, tg.srv.URL, cases), "--workers", "8")

	tasks := 0
	for _, c := range cases {
		t.Run(c.entry.File, func(t *testing.T) {
			header := []string{}
			for k := range c.header {
				header = append(header, k, c.header.Get(k))
			}
			status, ans := s.postBody(t, "/v1/notify?token="+e2eToken, c.body, "", header...)
			if c.entry.Format == "distribution-event-fragment" {
				// A fragment of an event, not a body any registry sends.
				if status != http.StatusUnsupportedMediaType {
					t.Errorf("fragment: %d %v", status, ans)
				}
				return
			}
			if status != http.StatusAccepted {
				t.Fatalf("%d %v", status, ans)
			}
			evs, _ := ans["events"].([]any)
			if len(evs) != len(c.events) {
				t.Fatalf("answer names %d events, inspect reads %d", len(evs), len(c.events))
			}
			for i, raw := range evs {
				ev := raw.(map[string]any)
				if ev["namespace"] != c.events[i].Namespace || ev["repository"] != c.events[i].Repository {
					t.Errorf("event %d: %v, want %s/%s", i, ev, c.events[i].Namespace, c.events[i].Repository)
				}
				n := len(ev["tasks"].([]any))
				if ev["duplicate"] != true && n != 1 {
					t.Errorf("event %d made %d tasks, want 1", i, n)
				}
				tasks += n
			}
		})
	}
	if tasks == 0 {
		t.Fatal("no task from the whole corpus")
	}
	tg.wait(t, tasks, time.Minute)
	time.Sleep(200 * time.Millisecond)
	if n := tg.count(); n != tasks {
		t.Errorf("%d deliveries for %d tasks", n, tasks)
	}
}
