package payload

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/event"
)

// burst is three events of one coalesced delivery: two platform
// manifests of v1, then the index with v1.
func burst() []event.Event {
	base := event.Event{Source: "tcr", Action: event.PushImage, Namespace: "team", Repository: "app", Registry: "r.example.com",
		OccurredAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Operator: "ci"}
	var evs []event.Event
	for i, d := range []string{"sha256:aaaaaaaaaaaaaaaa", "sha256:bbbbbbbbbbbbbbbb", "sha256:cccccccccccccccc"} {
		e := base
		e.Digest, e.Tag = d, "v1"
		if i == 2 {
			e.Tag = "latest"
		}
		evs = append(evs, e)
	}
	return evs
}

func TestRenderCoalesced(t *testing.T) {
	evs := burst()
	last := evs[len(evs)-1]
	tmpl, err := ParseTemplate(`{"tags": {{json .Tags}}, "digests": {{len .Digests}}, "count": {{.Count}}, "text": {{quote (join .Tags "+")}}}`, "")
	if err != nil {
		t.Fatal(err)
	}
	m := Meta{TaskID: "tsk_1", Trigger: "deploy", Time: last.OccurredAt, Events: evs, Template: tmpl}
	tests := []struct {
		format Format
		want   []string // in the body
	}{
		{TCR, []string{`"resources":[{"digest":"sha256:aaaaaaaaaaaaaaaa","tag":"v1"`, `{"digest":"sha256:bbbbbbbbbbbbbbbb","tag":"v1"`, `{"digest":"sha256:cccccccccccccccc","tag":"latest"`}},
		{Harbor, []string{`"resources":[{"digest":"sha256:aaaaaaaaaaaaaaaa"`, `"tag":"latest"`}},
		{Flux, []string{`"sha256:bbbbbbbbbbbbbbbb"`}},
		{CloudEvents, []string{`"events":[{`, `"digest":"sha256:aaaaaaaaaaaaaaaa"`, `"subject":"team/app:latest"`}},
		{Slack, []string{`*Tags*\nv1, latest`, `*Digests*\nsha256:aaaaaaaaaaaa, sha256:bbbbbbbbbbbb, sha256:cccccccccccc`, `*Events*\n3`}},
		{Teams, []string{`"title":"Tags","value":"v1, latest"`, `"title":"Events","value":"3"`}},
		{WeCom, []string{`Tags: v1, latest`, `Events: 3`}},
		{DingTalk, []string{`**Tags**: v1, latest`}},
		{Feishu, []string{`**Tags**\nv1, latest`}},
		{Template, []string{`"tags": ["v1","latest"]`, `"digests": 3`, `"count": 3`, `"text": "v1+latest"`}},
		// One tag and one digest: the last event.
		{ACR, []string{`"tag":"latest"`, `"digest":"sha256:cccccccccccccccc"`}},
		{DockerHub, []string{`"tag":"latest"`}},
	}
	for _, tt := range tests {
		t.Run(string(tt.format), func(t *testing.T) {
			body, _, err := Render(tt.format, last, m)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(body) {
				t.Fatalf("not JSON: %s", body)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(body), w) {
					t.Errorf("body lacks %s:\n%s", w, body)
				}
			}
			if tt.format == ACR || tt.format == DockerHub {
				if strings.Contains(string(body), "sha256:aaaaaaaaaaaaaaaa") {
					t.Errorf("a format of one event carries another: %s", body)
				}
			}
		})
	}
}

// One event renders as before: no list fields.
func TestRenderOneEventHasNoList(t *testing.T) {
	ev := burst()[0]
	for _, f := range []Format{TCR, CloudEvents, Slack} {
		for _, m := range []Meta{{TaskID: "t"}, {TaskID: "t", Events: []event.Event{ev}}} {
			body, _, err := Render(f, ev, m)
			if err != nil {
				t.Fatal(err)
			}
			for _, no := range []string{`"events":`, "Tags", "Events"} {
				if strings.Contains(string(body), no) {
					t.Errorf("%s of one event has %s: %s", f, no, body)
				}
			}
		}
	}
}

func TestListedCounts(t *testing.T) {
	var tags []string
	for i := range MaxListed + 3 {
		tags = append(tags, fmt.Sprint("v", i))
	}
	got := listed(tags, func(s string) string { return s })
	if !strings.HasSuffix(got, "v9 and 3 more") || strings.Contains(got, "v10") {
		t.Errorf("listed: %q", got)
	}
}
