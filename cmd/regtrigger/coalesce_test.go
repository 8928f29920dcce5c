package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/coalesce/coalescetest"
	"github.com/regtrigger/regtrigger/internal/record"
)

// TestServeCoalescesABurst sends a burst of 8 events over two serve
// processes (the first stopped halfway, the second started on its store):
// each trigger with a coalesce window makes one delivery of all 8 events,
// the trigger without one makes 8, and every coalesced task has a record
// naming the task that delivered it.
func TestServeCoalescesABurst(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "rt.db")
	tg := newTarget(t, 200)
	triggers := filepath.Join(dir, "t.yaml")
	y := fmt.Sprintf(`triggers:
  - {name: deploy, actions: [pushImage], namespace: team, repository: app, url: %[1]s/deploy, coalesce: 4s}
  - {name: events, actions: [pushImage], namespace: team, repository: app, url: %[1]s/events, format: cloudevents, coalesce: 4s}
  - {name: keel, actions: [pushImage], namespace: team, repository: app, url: %[1]s/keel, format: dockerhub, coalesce: 4s}
  - {name: each, actions: [pushImage], namespace: team, repository: app, url: %[1]s/each}
`, tg.srv.URL)
	if err := os.WriteFile(triggers, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	notifications := coalescetest.DistributionBurst(time.Now())
	send := func(s *server, bodies [][]byte) {
		t.Helper()
		for _, b := range bodies {
			if status, ans := s.postBody(t, "/v1/notify", b, e2eToken, "Content-Type", "application/vnd.docker.distribution.events.v1+json"); status != http.StatusAccepted {
				t.Fatalf("%d %v", status, ans)
			}
		}
	}
	s1 := startServe(t, data, "--triggers", triggers)
	send(s1, notifications[:4])
	s1.stop(t) // another receiver takes the second half, on the same store
	s2 := startServe(t, data)
	send(s2, notifications[4:])

	defer func() {
		if t.Failed() {
			t.Logf("serve 2:\n%s", s2.logText())
		}
	}()
	got := tg.wait(t, 8+3, 20*time.Second)
	time.Sleep(time.Second) // nothing more comes
	if n := tg.count(); n != 11 {
		t.Fatalf("%d requests, want 8 for the trigger without a window and 1 for each of the three with one", n)
	}
	by := map[string][]delivered{}
	for _, d := range got {
		var m map[string]any
		if err := json.Unmarshal(d.body, &m); err != nil {
			t.Fatal(err)
		}
		path := "each"
		switch {
		case m["specversion"] != nil:
			path = "events"
		case m["push_data"] != nil:
			path = "keel"
		case d.header.Get("webhook-id") != "" && len(m["event_data"].(map[string]any)["resources"].([]any)) > 1:
			path = "deploy"
		}
		by[path] = append(by[path], d)
	}
	if len(by["each"]) != 8 || len(by["deploy"]) != 1 || len(by["events"]) != 1 || len(by["keel"]) != 1 {
		t.Fatalf("deliveries per trigger: each %d, deploy %d, events %d, keel %d", len(by["each"]), len(by["deploy"]), len(by["events"]), len(by["keel"]))
	}
	var tcr struct {
		EventData struct {
			Resources []struct{ Digest, Tag string } `json:"resources"`
		} `json:"event_data"`
	}
	json.Unmarshal(by["deploy"][0].body, &tcr)
	var tags []string
	digests := map[string]bool{}
	for _, r := range tcr.EventData.Resources {
		if !slices.Contains(tags, r.Tag) {
			tags = append(tags, r.Tag)
		}
		digests[r.Digest] = true
	}
	if len(tcr.EventData.Resources) != 8 || strings.Join(tags, ",") != "v1.2.3,v1.2,v1,latest" || len(digests) != 5 {
		t.Errorf("tcr resources: %d, tags %v, %d digests; want 8, the 4 tags in order and 5 digests", len(tcr.EventData.Resources), tags, len(digests))
	}
	var ce struct {
		Data struct {
			Events []struct{ Tag, Digest string } `json:"events"`
		} `json:"data"`
	}
	json.Unmarshal(by["events"][0].body, &ce)
	if len(ce.Data.Events) != 8 {
		t.Errorf("cloudevents data.events: %d, want 8", len(ce.Data.Events))
	}
	var hub struct {
		PushData struct{ Tag string } `json:"push_data"`
	}
	json.Unmarshal(by["keel"][0].body, &hub)
	if hub.PushData.Tag != "latest" {
		t.Errorf("dockerhub carries tag %q, want the last event's (latest)", hub.PushData.Tag)
	}

	s2.stop(t)
	for _, name := range []string{"deploy", "events", "keel"} {
		recs := records(t, data, "--trigger", name)
		var success, coalesced int
		for _, r := range recs {
			switch r.Status {
			case record.Success:
				success++
				if r.Events != 8 {
					t.Errorf("%s: the delivery's record says %d events, want 8", name, r.Events)
				}
			case record.Coalesced:
				coalesced++
				if r.CoalescedInto == "" || !strings.Contains(r.Error, "delivers the 8 events") {
					t.Errorf("%s: coalesced record %+v", name, r)
				}
			}
		}
		if success != 1 || coalesced != 7 {
			t.Errorf("%s: %d success and %d coalesced records, want 1 and 7:\n%+v", name, success, coalesced, recs)
		}
	}
}
