package matcher

import (
	"fmt"
	"strings"
	"testing"

	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

func tr(name, ns, repo, tag string, actions ...event.Action) trigger.Trigger {
	if len(actions) == 0 {
		actions = []event.Action{event.PushImage}
	}
	return trigger.Trigger{Name: name, Enabled: true, Namespace: ns, Repository: repo, Tag: tag, Actions: actions, URL: "https://example.com/"}
}

func ev(action event.Action, ns, repo, tag string) event.Event {
	return event.Event{Source: "tcr", Action: action, Namespace: ns, Repository: repo, Tag: tag}
}

func TestMatch(t *testing.T) {
	disabled := tr("off", "public", "", "")
	disabled.Enabled = false
	triggers := []trigger.Trigger{
		tr("all", "public", "", ""),
		tr("nginx-release", "public", "nginx", "release-*"),
		tr("first-level-path", "public", "/path*", ""),
		tr("under-paths", "public", "/{path1, path2}/**", ""),
		tr("one-dot", "public", "**", "1.?"),
		tr("envs", "public", "", "{env1*, env2*}"),
		tr("acr-regex", "public", "", "regex:release-v.*"),
		tr("list", "public", "", "v1;v2"),
		tr("charts", "public", "", "", event.UploadChart, event.DeleteChart),
		disabled,
		tr("other-ns", "private", "", ""),
	}
	m, err := New(triggers)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		event event.Event
		fired []string
		why   map[string]Reason // reasons for some of the triggers that did not fire
	}{
		{
			name:  "release tag of nginx",
			event: ev(event.PushImage, "public", "nginx", "release-1.2"),
			fired: []string{"all", "nginx-release"},
			why:   map[string]Reason{"first-level-path": RepositoryNotMatched, "one-dot": TagNotMatched, "charts": ActionNotSelected, "off": Disabled},
		},
		{
			name:  "non-release tag of nginx",
			event: ev(event.PushImage, "public", "nginx", "latest"),
			fired: []string{"all"},
			why:   map[string]Reason{"nginx-release": TagNotMatched},
		},
		{
			name:  "first level under path",
			event: ev(event.PushImage, "public", "pathology", "x"),
			fired: []string{"all", "first-level-path"},
		},
		{
			name:  "path1 subtree",
			event: ev(event.PushImage, "public", "path1/a/b", "x"),
			fired: []string{"all", "under-paths"},
			why:   map[string]Reason{"first-level-path": RepositoryNotMatched},
		},
		{
			name:  "tag 1.5",
			event: ev(event.PushImage, "public", "any/depth/repo", "1.5"),
			fired: []string{"all", "one-dot"},
		},
		{
			name:  "tag 1.10 misses 1.?",
			event: ev(event.PushImage, "public", "app", "1.10"),
			fired: []string{"all"},
			why:   map[string]Reason{"one-dot": TagNotMatched},
		},
		{
			name:  "env2 tag",
			event: ev(event.PushImage, "public", "app", "env2-staging"),
			fired: []string{"all", "envs"},
		},
		{
			name:  "acr regex",
			event: ev(event.PushImage, "public", "app", "release-v3"),
			fired: []string{"all", "acr-regex"},
		},
		{
			name:  "exact list",
			event: ev(event.PushImage, "public", "app", "v2"),
			fired: []string{"all", "list"},
		},
		{
			name:  "delete by digest has no tag",
			event: ev(event.DeleteImage, "public", "app", ""),
			fired: nil,
			why:   map[string]Reason{"all": ActionNotSelected},
		},
		{
			name:  "chart upload",
			event: ev(event.UploadChart, "public", "charts/app", "1.0.0"),
			fired: []string{"charts"},
		},
		{
			name:  "other namespace only sees its own",
			event: ev(event.PushImage, "private", "x", "y"),
			fired: []string{"other-ns"},
		},
		{
			name:  "unknown namespace",
			event: ev(event.PushImage, "nobody", "x", "y"),
			fired: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fired []string
			results := m.Match(tt.event)
			for _, r := range results {
				if r.Trigger.Namespace != tt.event.Namespace {
					t.Errorf("result for trigger %q of another namespace", r.Trigger.Name)
				}
				if r.Fired() {
					fired = append(fired, r.Trigger.Name)
				} else if want, ok := tt.why[r.Trigger.Name]; ok && r.Reason != want {
					t.Errorf("%s: reason %q, want %q", r.Trigger.Name, r.Reason, want)
				}
			}
			if fmt.Sprint(fired) != fmt.Sprint(tt.fired) {
				t.Errorf("fired %v, want %v", fired, tt.fired)
			}
			var viaFired []string
			for _, t := range m.Fired(tt.event) {
				viaFired = append(viaFired, t.Name)
			}
			if fmt.Sprint(viaFired) != fmt.Sprint(tt.fired) {
				t.Errorf("Fired() = %v, want %v", viaFired, tt.fired)
			}
		})
	}
}

func TestExplain(t *testing.T) {
	m, err := New([]trigger.Trigger{tr("rel", "ns", "app", "release-*")})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		event event.Event
		want  string
	}{
		{ev(event.PushImage, "ns", "app", "release-1"), "fired"},
		{ev(event.PushImage, "ns", "app", "dev"), `tag "dev" does not match "release-*"`},
		{ev(event.DeleteImage, "ns", "app", ""), "action deleteImage not in [pushImage]"},
		{ev(event.PushImage, "ns", "web", "x"), `repository "web" does not match "app"`},
		{ev(event.PushImage, "ns", "app", ""), `event has no tag; filter "release-*" needs one`},
	}
	for _, tt := range tests {
		if got := m.Match(tt.event)[0].Explain(tt.event); got != tt.want {
			t.Errorf("Explain = %q, want %q", got, tt.want)
		}
	}
}

func TestNewRefusesBadPattern(t *testing.T) {
	_, err := New([]trigger.Trigger{tr("bad", "ns", "{a", "")})
	if err == nil || !strings.Contains(err.Error(), `trigger "bad"`) {
		t.Fatalf("want an error naming the trigger, got %v", err)
	}
}

func TestTriggersAreCopied(t *testing.T) {
	ts := []trigger.Trigger{tr("a", "ns", "", "")}
	m, err := New(ts)
	if err != nil {
		t.Fatal(err)
	}
	ts[0].Enabled = false
	if !m.Match(ev(event.PushImage, "ns", "x", "y"))[0].Fired() {
		t.Error("changing the caller's slice changed the matcher")
	}
}

// benchTriggers builds n triggers in one namespace with a realistic mix of
// patterns, of which few match the benchmark event.
func benchTriggers(n int) []trigger.Trigger {
	ts := make([]trigger.Trigger, n)
	for i := range ts {
		var repo, tag string
		switch i % 5 {
		case 0:
			repo, tag = fmt.Sprintf("team%d/app", i), "release-*"
		case 1:
			repo, tag = fmt.Sprintf("/{svc%d, web%d}/**", i, i), ""
		case 2:
			repo, tag = fmt.Sprintf("app%d*", i), "v1;v2;v3"
		case 3:
			repo, tag = fmt.Sprintf("path%d/**", i), "regex:v[0-9]+\\.[0-9]+"
		case 4:
			repo, tag = "**", fmt.Sprintf("{env%d*, stage%d*}", i, i)
		}
		ts[i] = tr(fmt.Sprintf("t%d", i), "public", repo, tag)
	}
	return ts
}

func BenchmarkMatch(b *testing.B) {
	e := ev(event.PushImage, "public", "team0/app", "release-1.4")
	for _, n := range []int{10, 1000, 10000} {
		m, err := New(benchTriggers(n))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("triggers=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]Result, 0, n)
			for b.Loop() {
				buf = m.AppendMatch(buf[:0], e)
			}
			if !buf[0].Fired() {
				b.Fatal("the first trigger should fire")
			}
		})
	}
}

// explainFmt is how Explain first formatted the values compared, with
// fmt: the reference the appending version must match byte for byte. The
// fixed texts are TestExplain's.
func explainFmt(r Result, ev event.Event) string {
	t := r.Trigger
	switch {
	case r.Reason == ActionNotSelected:
		return fmt.Sprintf("action %s not in %v", ev.Action, t.Actions)
	case r.Reason == RepositoryNotMatched:
		return fmt.Sprintf("repository %q does not match %q", ev.Repository, t.Repository)
	case r.Reason == TagNotMatched && ev.Tag == "":
		return fmt.Sprintf("event has no tag; filter %q needs one", t.Tag)
	case r.Reason == TagNotMatched:
		return fmt.Sprintf("tag %q does not match %q", ev.Tag, t.Tag)
	}
	return r.Explain(ev)
}

func TestExplainQuotesAsFmt(t *testing.T) {
	long := strings.Repeat("deep/", 80) + "repo"
	tests := []struct {
		name    string
		reason  Reason
		actions []event.Action
		repo    string // trigger's pattern
		tag     string // trigger's filter
		ev      event.Event
	}{
		{name: "no actions", reason: ActionNotSelected, ev: ev(event.PushImage, "ns", "a", "b")},
		{name: "several actions", reason: ActionNotSelected, actions: []event.Action{event.DeleteImage, event.UploadChart, "future"}, ev: ev(event.PushImage, "ns", "a", "b")},
		{name: "empty action", reason: ActionNotSelected, actions: []event.Action{event.PushImage}, ev: ev("", "ns", "a", "b")},
		{name: "quotes and escapes", reason: RepositoryNotMatched, repo: `/{a, "b"}/**`, ev: ev(event.PushImage, "ns", "we\"ird\\path\t\n", "x")},
		{name: "non-ASCII and invalid UTF-8", reason: RepositoryNotMatched, repo: "ünï*", ev: ev(event.PushImage, "ns", "ün\xffï\u2028\x00", "x")},
		{name: "longer than the buffer", reason: RepositoryNotMatched, repo: long + "*", ev: ev(event.PushImage, "ns", long, "x")},
		{name: "tag", reason: TagNotMatched, tag: "regex:v[0-9]+\\.\"", ev: ev(event.PushImage, "ns", "a", "v1.\u00e9\x7f")},
		{name: "no tag", reason: TagNotMatched, tag: "latest;stable", ev: ev(event.DeleteImage, "ns", "a", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trg := &trigger.Trigger{Name: "t", Actions: tt.actions, Repository: tt.repo, Tag: tt.tag}
			r := Result{Trigger: trg, Reason: tt.reason}
			if got, want := r.Explain(tt.ev), explainFmt(r, tt.ev); got != want {
				t.Errorf("Explain = %q, want %q", got, want)
			}
		})
	}
}

func TestSemverAndExclusions(t *testing.T) {
	semverTrigger := tr("v1-line", "public", "", "semver:>=1.4 <2")
	semverTrigger.ExcludeTags = []string{"*-hotfix*"}
	globTrigger := tr("releases", "public", "", "release-*")
	globTrigger.ExcludeTags = []string{"*-rc*", "sha-*"}
	everyTag := tr("every-tag", "public", "", "")
	everyTag.ExcludeTags = []string{"sha-*"}
	m, err := New([]trigger.Trigger{semverTrigger, globTrigger, everyTag})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		trigger, tag string
		reason       Reason
		explain      string
	}{
		{"v1-line", "1.4.2", Fired, "fired"},
		{"v1-line", "v1.9.0", Fired, "fired"},
		{"v1-line", "2.0.0", TagNotMatched, `tag "2.0.0" is outside the range ">=1.4 <2"`},
		{"v1-line", "latest", TagNotMatched, `tag "latest" is not a semantic version; filter "semver:>=1.4 <2"`},
		{"v1-line", "1.5.0-rc.1", TagNotMatched, `tag "1.5.0-rc.1" is a prerelease, and the range ">=1.4 <2" names none`},
		{"v1-line", "1.5.0-hotfix.1", TagNotMatched, `tag "1.5.0-hotfix.1" is a prerelease, and the range ">=1.4 <2" names none`},
		{"releases", "release-1.0", Fired, "fired"},
		{"releases", "release-1.0-rc2", TagExcluded, `tag "release-1.0-rc2" is excluded by "*-rc*"`},
		{"every-tag", "sha-1a2b3c", TagExcluded, `tag "sha-1a2b3c" is excluded by "sha-*"`},
		{"every-tag", "main", Fired, "fired"},
		{"every-tag", "", Fired, "fired"}, // an event without a tag: nothing to exclude
	}
	for _, tt := range tests {
		e := ev(event.PushImage, "public", "app", tt.tag)
		for _, r := range m.Match(e) {
			if r.Trigger.Name != tt.trigger {
				continue
			}
			if r.Reason != tt.reason || r.Explain(e) != tt.explain {
				t.Errorf("%s, tag %q: %s (%s), want %s (%s)", tt.trigger, tt.tag, r.Reason, r.Explain(e), tt.reason, tt.explain)
			}
		}
	}
}
