package coalesce_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/coalesce"
	"github.com/regtrigger/regtrigger/internal/coalesce/coalescetest"
	"github.com/regtrigger/regtrigger/internal/event"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ev(tag, digest string) event.Event {
	return event.Event{Action: event.PushImage, Namespace: "team", Repository: "app", Tag: tag, Digest: digest}
}

// arrival is one event joining at an offset from t0.
type arrival struct {
	at    time.Duration
	event event.Event
}

func TestWindows(t *testing.T) {
	const span = 10 * time.Second
	burst := coalescetest.BurstEvents()
	var all []arrival
	for i, e := range burst {
		all = append(all, arrival{time.Duration(i) * 100 * time.Millisecond, e})
	}
	tests := []struct {
		name     string
		arrivals []arrival
		// windows lists, for each window in order, the indexes of its members.
		windows [][]int
	}{
		{"a multi-arch push and its tags: one window", all, [][]int{{0, 1, 2, 3, 4, 5, 6, 7}}},
		{"tags of one digest", []arrival{{0, ev("v1", "sha256:a")}, {time.Second, ev("v1.2", "sha256:a")}, {2 * time.Second, ev("latest", "sha256:a")}}, [][]int{{0, 1, 2}}},
		{"one tag, several digests", []arrival{{0, ev("v1", "sha256:a")}, {time.Second, ev("v1", "sha256:b")}}, [][]int{{0, 1}}},
		{"unrelated pushes stay apart", []arrival{{0, ev("sha-1", "sha256:a")}, {time.Second, ev("sha-2", "sha256:b")}}, [][]int{{0}, {1}}},
		{"after the span, a new window", []arrival{{0, ev("v1", "sha256:a")}, {span, ev("v1.2", "sha256:a")}}, [][]int{{0}, {1}}},
		{"just inside the span", []arrival{{0, ev("v1", "sha256:a")}, {span - time.Millisecond, ev("v1.2", "sha256:a")}}, [][]int{{0, 1}}},
		{"an untagged manifest joins the open window", []arrival{{0, ev("v1", "sha256:a")}, {time.Second, ev("", "sha256:c")}}, [][]int{{0, 1}}},
		{"a tagged push does not join a tagged window it shares nothing with", []arrival{{0, ev("", "sha256:c")}, {time.Second, ev("v1", "sha256:a")}, {2 * time.Second, ev("v2", "sha256:b")}}, [][]int{{0, 1}, {2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			w := coalesce.Windows{Store: &coalesce.MemStore{}}
			for i, a := range tt.arrivals {
				joined, err := w.Join(ctx, "k", span, []coalesce.Member{{Task: fmt.Sprint("t", i), Event: a.event}}, t0.Add(a.at))
				if err != nil || !joined[0] {
					t.Fatalf("join %d: %v, %v", i, joined, err)
				}
			}
			// Each window's first member closes it, well after every arrival.
			due := t0.Add(time.Minute)
			for _, members := range tt.windows {
				c, err := w.Close(ctx, "k", fmt.Sprint("t", members[0]), due)
				if err != nil {
					t.Fatal(err)
				}
				if !c.Found || c.By != fmt.Sprint("t", members[0]) || len(c.Events) != len(members) {
					t.Fatalf("window of t%d: %+v; want it closed by t%d with %d events", members[0], c, members[0], len(members))
				}
				for j, m := range members {
					if !reflect.DeepEqual(c.Events[j], tt.arrivals[m].event) {
						t.Errorf("window of t%d, event %d: %+v, want arrival %d", members[0], j, c.Events[j], m)
					}
				}
				for _, m := range members[1:] {
					if c, err := w.Close(ctx, "k", fmt.Sprint("t", m), due); err != nil || c.By != fmt.Sprint("t", members[0]) || c.Events != nil {
						t.Errorf("member t%d: %+v, %v; want coalesced into t%d", m, c, err, members[0])
					}
				}
			}
		})
	}
}

func TestCloseAndRejoin(t *testing.T) {
	ctx := context.Background()
	w := coalesce.Windows{Store: &coalesce.MemStore{}}
	const span = 10 * time.Second
	join := func(task string, e event.Event, at time.Time) {
		t.Helper()
		if joined, err := w.Join(ctx, "k", span, []coalesce.Member{{Task: task, Event: e}}, at); err != nil || !joined[0] {
			t.Fatalf("join %s: %v %v", task, joined, err)
		}
	}
	raw := ev("v1", "sha256:a")
	raw.Raw = []byte(`{"secret-free":"but large"}`)
	join("a", raw, t0)
	join("b", ev("v1.1", "sha256:a"), t0.Add(time.Second))
	join("a", ev("v1", "sha256:a"), t0.Add(2*time.Second)) // sent again: stays once

	if c, err := w.Close(ctx, "k", "nobody", t0.Add(span)); err != nil || c.Found {
		t.Fatalf("a task in no window: %+v, %v; want not found", c, err)
	}
	c, err := w.Close(ctx, "k", "b", t0.Add(span+time.Second))
	if err != nil || c.By != "b" || len(c.Events) != 2 || c.Events[0].Raw != nil {
		t.Fatalf("first to come due: %+v, %v; want b closing 2 events, no raw body kept", c, err)
	}
	if again, err := w.Close(ctx, "k", "b", t0.Add(span+time.Minute)); err != nil || again.By != "b" || len(again.Events) != 2 {
		t.Fatalf("the closer asking again: %+v, %v", again, err)
	}
	if late, err := w.Close(ctx, "k", "a", t0.Add(span+2*time.Second)); err != nil || late.By != "b" || late.Events != nil || late.Count != 2 {
		t.Fatalf("the other member: %+v, %v; want coalesced into b", late, err)
	}
	// A closed window takes no one: the same digest opens a new one.
	join("c", ev("v1.2", "sha256:a"), t0.Add(span+3*time.Second))
	if c, err := w.Close(ctx, "k", "c", t0.Add(2*span+3*time.Second)); err != nil || c.By != "c" || len(c.Events) != 1 {
		t.Fatalf("after the close: %+v, %v; want a window of its own", c, err)
	}
	// Keep later, the closed windows are gone: their members are delivered alone.
	join("d", ev("x", "sha256:x"), t0.Add(span+coalesce.Keep+time.Hour))
	if c, err := w.Close(ctx, "k", "a", t0.Add(span+coalesce.Keep+time.Hour)); err != nil || c.Found {
		t.Fatalf("a member of a pruned window: %+v, %v; want not found", c, err)
	}
}

func TestLimits(t *testing.T) {
	ctx := context.Background()
	w := coalesce.Windows{Store: &coalesce.MemStore{}}
	const span = time.Minute
	var members []coalesce.Member
	for i := range coalesce.MaxMembers + 1 {
		members = append(members, coalesce.Member{Task: fmt.Sprint("m", i), Event: ev(fmt.Sprint("v", i), "sha256:a")})
	}
	if _, err := w.Join(ctx, "full", span, members, t0); err != nil {
		t.Fatal(err)
	}
	if c, _ := w.Close(ctx, "full", "m0", t0.Add(span)); len(c.Events) != coalesce.MaxMembers {
		t.Fatalf("first window holds %d events, want %d", len(c.Events), coalesce.MaxMembers)
	}
	if c, _ := w.Close(ctx, "full", fmt.Sprint("m", coalesce.MaxMembers), t0.Add(span)); c.By != fmt.Sprint("m", coalesce.MaxMembers) || len(c.Events) != 1 {
		t.Fatalf("the one past MaxMembers: %+v; want a window of its own", c)
	}

	// MaxWindows unrelated pushes keep their windows; the next is alone.
	var unrelated []coalesce.Member
	for i := range coalesce.MaxWindows + 1 {
		unrelated = append(unrelated, coalesce.Member{Task: fmt.Sprint("u", i), Event: ev(fmt.Sprint("sha-", i), fmt.Sprint("sha256:", i))})
	}
	joined, err := w.Join(ctx, "many", span, unrelated, t0)
	if err != nil {
		t.Fatal(err)
	}
	for i, j := range joined {
		if want := i < coalesce.MaxWindows; j != want {
			t.Errorf("unrelated push %d: joined %v, want %v", i, j, want)
		}
	}
	// An abandoned open window is dropped after Abandon.
	if c, _ := w.Close(ctx, "many", "u0", t0.Add(coalesce.Abandon/2)); c.By != "u0" {
		t.Fatalf("before Abandon: %+v", c)
	}
	if _, err := w.Join(ctx, "many", span, []coalesce.Member{{Task: "late", Event: ev("late", "sha256:late")}}, t0.Add(coalesce.Abandon+time.Minute)); err != nil {
		t.Fatal(err)
	}
	if c, _ := w.Close(ctx, "many", "u1", t0.Add(coalesce.Abandon+time.Minute)); c.Found {
		t.Fatalf("an open window past Abandon: %+v; want dropped", c)
	}
}

func TestKey(t *testing.T) {
	a := coalesce.Key("deploy", ev("v1", "sha256:a"))
	for name, k := range map[string]string{
		"another trigger":    coalesce.Key("chat", ev("v1", "sha256:a")),
		"another repository": coalesce.Key("deploy", event.Event{Action: event.PushImage, Namespace: "team", Repository: "web"}),
		"another action":     coalesce.Key("deploy", event.Event{Action: event.DeleteImage, Namespace: "team", Repository: "app"}),
		"a/b vs a, b":        coalesce.Key("deploy", event.Event{Action: event.PushImage, Namespace: "team/app", Repository: ""}),
	} {
		if k == a {
			t.Errorf("%s: same key %s", name, k)
		}
	}
	if b := coalesce.Key("deploy", ev("v2", "sha256:b")); b != a {
		t.Errorf("tag and digest changed the key: %s vs %s", b, a)
	}
}

func TestMemStore(t *testing.T) { coalescetest.Run(t, &coalesce.MemStore{}) }
