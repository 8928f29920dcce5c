package receiver

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/regtrigger/regtrigger/internal/event"
)

// answerCases are answers that exercise every field, every omitempty and
// nil, and the strings json.Marshal escapes.
var answerCases = []struct {
	name string
	ans  Accepted
}{
	{"zero", Accepted{}},
	{"empty events", Accepted{Source: "tcr", Events: []AcceptedEvent{}}},
	{"typical", Accepted{RequestID: "req_0123456789abcdef", Source: "tcr", Tasks: 2, Events: []AcceptedEvent{{
		Action: event.PushImage, Namespace: "public", Repository: "nginx", Tag: "v1.10.0", Digest: "sha256:89a4",
		Tasks:   []TaskRef{{ID: "tsk_1", Trigger: "nginx-v1"}, {ID: "tsk_2", Trigger: "every-push"}},
		Skipped: []SkipRef{{Trigger: "deletes", Reason: "action not selected"}, {Trigger: "off", Reason: "disabled"}},
	}}}},
	{"duplicate and nil tasks", Accepted{Source: "harbor", Events: []AcceptedEvent{
		{Action: event.DeleteImage, Namespace: "team", Repository: "a/b", Digest: "sha256:00", Duplicate: true, Tasks: []TaskRef{}},
		{Action: event.PushImage, Namespace: "team", Repository: "a/b", Tag: "x"},
		{Action: event.PushImage, Namespace: "team", Repository: "a/b", Tag: "y", Skipped: []SkipRef{}},
	}}},
	{"strings json escapes", Accepted{RequestID: "req_<&>", Source: "q\"uote\\", Tasks: -1, Events: []AcceptedEvent{{
		Action: "new\naction", Namespace: "ns\t\x00\x1f\x7f", Repository: "ünï/cödé\u2028\u2029", Tag: "bad\xff\xfeutf8",
		Digest: "<script>&amp;", Tasks: []TaskRef{{ID: "\u00e9", Trigger: "\ufffd"}}, Skipped: []SkipRef{{Trigger: "a\"b", Reason: "c\\d"}},
	}}}},
}

func TestAnswerJSON(t *testing.T) {
	for _, tt := range answerCases {
		t.Run(tt.name, func(t *testing.T) {
			want, err := json.Marshal(tt.ans)
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.ans.appendJSON([]byte("prefix:")); string(got) != "prefix:"+string(want) {
				t.Errorf("appendJSON\n got %s\nwant prefix:%s", got, want)
			}
		})
	}
}

// TestAnswerJSONFields fails when a field of the answer's types changes:
// appendJSON writes them by hand and must be changed with them.
func TestAnswerJSONFields(t *testing.T) {
	tests := []struct {
		v    any
		tags []string
	}{
		{Accepted{}, []string{"request_id,omitempty", "source", "events", "tasks"}},
		{AcceptedEvent{}, []string{"action", "namespace", "repository", "tag,omitempty", "digest,omitempty", "duplicate,omitempty", "tasks", "untriggered,omitempty"}},
		{TaskRef{}, []string{"id", "trigger"}},
		{SkipRef{}, []string{"trigger", "reason"}},
	}
	for _, tt := range tests {
		typ := reflect.TypeOf(tt.v)
		var tags []string
		for f := range typ.Fields() {
			tags = append(tags, f.Tag.Get("json"))
		}
		if !slices.Equal(tags, tt.tags) {
			t.Errorf("%s has fields tagged %q, appendJSON writes %q: change appendJSON and this test together", typ, tags, tt.tags)
		}
	}
}

func FuzzAnswerJSON(f *testing.F) {
	for _, tt := range answerCases {
		for _, e := range tt.ans.Events {
			f.Add(tt.ans.RequestID, string(e.Action), e.Repository, e.Tag, "tsk_1", "reason", e.Duplicate)
		}
	}
	f.Fuzz(func(t *testing.T, id, action, repo, tag, task, reason string, dup bool) {
		ans := Accepted{RequestID: id, Source: action, Tasks: len(tag), Events: []AcceptedEvent{{
			Action: event.Action(action), Namespace: reason, Repository: repo, Tag: tag, Digest: id, Duplicate: dup,
			Tasks: []TaskRef{{ID: task, Trigger: repo}}, Skipped: []SkipRef{{Trigger: tag, Reason: reason}},
		}}}
		want, err := json.Marshal(ans)
		if err != nil {
			t.Fatal(err)
		}
		if got := ans.appendJSON(nil); string(got) != string(want) {
			t.Errorf("appendJSON\n got %s\nwant %s", got, want)
		}
	})
}
