package payload

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/registry"
)

var update = flag.Bool("update", false, "rewrite golden files")

func sample(a event.Action) event.Event {
	ev := event.Event{
		Source: "tcr", Action: a, Namespace: "public", Repository: "team/nginx", Tag: "v1.10.0",
		Digest:      "sha256:89a42c3ba15f09a3fbe39856bddacdf9e94cd03df7403cad4fc1050000268fc9",
		ResourceURL: "demo.tencentcloudcr.com/public/team/nginx:v1.10.0",
		OccurredAt:  time.Date(2020, 5, 10, 10, 30, 5, 0, time.UTC), Operator: "332133000", Registry: "demo.tencentcloudcr.com",
		Raw: []byte(`{"original":"body <&>"}`),
	}
	if a.IsChart() {
		ev.Digest, ev.Tag, ev.ResourceURL = "", "1.2.0", "https://demo.tencentcloudcr.com/chartrepo/public/charts/nginx-1.2.0.tgz"
	}
	return ev
}

var meta = Meta{TaskID: "tsk_0123456789abcdef", Trigger: "deploy-nginx", Time: time.Date(2020, 5, 10, 10, 30, 9, 0, time.UTC)}

// testTemplate is the template of the template format's golden files.
const testTemplate = `{"text": {{quote (printf "%s: %s:%s" .Title .Name .Tag)}}, "digest": {{quote .ShortDigest}}, "at": {{unix .OccurredAt}}, "trigger": {{quote .Trigger}}, "escaped": "{{jsonEscape .Operator}}"}`

// metaFor is meta with what format f needs besides: its template.
func metaFor(t testing.TB, f Format) Meta {
	m := meta
	if f == Template {
		tm, err := ParseTemplate(testTemplate, "")
		if err != nil {
			t.Fatal(err)
		}
		m.Template = tm
	}
	return m
}

// TestGolden compares every format × action with its golden file. Golden
// files are the body indented for reading (raw: the body as is) plus a
// newline; the body must equal the golden file compacted again, byte for
// byte, so whitespace, key order and escaping are all pinned.
func TestGolden(t *testing.T) {
	for _, f := range Formats {
		for _, a := range event.Actions {
			t.Run(string(f)+"/"+string(a), func(t *testing.T) {
				body, ctype, err := Render(f, sample(a), metaFor(t, f))
				if err != nil {
					t.Fatal(err)
				}
				want := ContentTypeJSON
				if f == CloudEvents {
					want = ContentTypeCloudEvents
				}
				if ctype != want {
					t.Errorf("content type %q, want %q", ctype, want)
				}
				// raw and template bodies are pinned as they are sent.
				asIs := f == Raw || f == Template
				var pretty bytes.Buffer
				if !asIs {
					if err := json.Indent(&pretty, body, "", "  "); err != nil {
						t.Fatalf("not JSON: %v\n%s", err, body)
					}
				} else {
					pretty.Write(body)
				}
				pretty.WriteByte('\n')
				golden := filepath.Join("testdata", "golden", string(f), string(a)+".json")
				if *update {
					if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				exp, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test ./internal/payload -update)", err)
				}
				if !bytes.Equal(pretty.Bytes(), exp) {
					t.Errorf("%s differs (run with -update to refresh):\n%s", golden, pretty.Bytes())
				}
				wire := bytes.TrimSuffix(exp, []byte("\n"))
				if !asIs {
					var c bytes.Buffer
					if err := json.Compact(&c, wire); err != nil {
						t.Fatalf("%s: %v", golden, err)
					}
					wire = c.Bytes()
				}
				if !bytes.Equal(body, wire) {
					t.Errorf("body is not byte for byte the golden file compacted:\n got %s\nwant %s", body, wire)
				}
				again, _, _ := Render(f, sample(a), metaFor(t, f))
				if !bytes.Equal(body, again) {
					t.Error("rendering is not deterministic")
				}
			})
		}
	}
}

// keysInOrder returns the path of every object key of a JSON document
// ("event_data.repository.name"), depth first, in the order written.
func keysInOrder(t *testing.T, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	var keys []string
	var value func(prefix string)
	value = func(prefix string) {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("reading %q: %v", b, err)
		}
		d, ok := tok.(json.Delim)
		if !ok {
			return
		}
		for dec.More() {
			if d == '[' {
				value(prefix + "[].")
				continue
			}
			k, err := dec.Token()
			if err != nil {
				t.Fatalf("reading %q: %v", b, err)
			}
			key := prefix + k.(string)
			keys = append(keys, key)
			value(key + ".")
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			t.Fatalf("reading %q: %v", b, err)
		}
	}
	value("")
	return keys
}

func TestKeysInOrder(t *testing.T) {
	got := keysInOrder(t, []byte(`{"b":1,"a":{"z":[{"y":2},{"y":3}],"x":null},"c":[]}`))
	want := []string{"b", "a", "a.z", "a.z.[].y", "a.z.[].y", "a.x", "c"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// leaves flattens a JSON document into its leaf values by key path.
func leaves(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	out := map[string]any{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				walk(prefix+"."+k, c)
			}
		case []any:
			for i, c := range x {
				walk(fmt.Sprintf("%s[%d]", prefix, i), c)
			}
		default:
			out[strings.TrimPrefix(prefix, ".")] = v
		}
	}
	walk("", v)
	return out
}

// TestRegistryDocRoundTrip parses each registry's documented push body with
// package registry, renders the event back in that registry's format, and
// compares the two: the same keys (for tcr also in the same order), and the
// same values except those regtrigger cannot know, which must be sent as
// zero values rather than invented. Servers written for TCR, Harbor or
// Aliyun then work unchanged.
func TestRegistryDocRoundTrip(t *testing.T) {
	tests := []struct {
		format  Format
		doc     string
		unknown []string // paths sent as 0 or ""
	}{
		{TCR, "testdata/tcr-doc-push.json", []string{
			"event_data.repository.date_created", "event_data.repository.repo_type",
		}},
		{Harbor, "testdata/harbor-doc-push.json", []string{
			"event_data.repository.date_created", "event_data.repository.repo_type",
			// The doc's push is by digest, and Harbor then repeats the
			// digest as the tag; the event has no tag.
			"event_data.resources[0].tag",
		}},
		{ACR, "testdata/acr-doc-push.json", []string{
			"repository.date_created", "repository.repo_authentication_type",
			"repository.repo_origin_type", "repository.repo_type",
		}},
	}
	for _, tt := range tests {
		t.Run(string(tt.format), func(t *testing.T) {
			doc, err := os.ReadFile(tt.doc)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := registry.Parse(registry.Notification{Body: doc, ReceivedAt: meta.Time}, string(tt.format))
			if err != nil || len(evs) != 1 {
				t.Fatalf("parse: %d events, %v", len(evs), err)
			}
			body, _, err := Render(tt.format, evs[0], meta)
			if err != nil {
				t.Fatal(err)
			}
			want, got := leaves(t, doc), leaves(t, body)
			if !reflect.DeepEqual(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want))) {
				t.Errorf("keys differ from the registry's documented body:\n got %v\nwant %v",
					slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
			}
			for path, w := range want {
				g := got[path]
				if slices.Contains(tt.unknown, path) {
					if g != "" && g != 0.0 {
						t.Errorf("%s = %v; regtrigger does not know it and must send a zero value", path, g)
					}
					continue
				}
				if g != w {
					t.Errorf("%s = %#v, want %#v (as in %s)", path, g, w, tt.doc)
				}
			}
			if tt.format == TCR {
				if got, want := keysInOrder(t, body), keysInOrder(t, doc); !reflect.DeepEqual(got, want) {
					t.Errorf("key order differs from the TCR doc:\n got %v\nwant %v", got, want)
				}
			}
		})
	}
}

// TestHarborShapes checks that every Harbor action renders with the keys of
// the Harbor documentation's push body (charts included: Harbor itself
// omits the empty digest of a chart; regtrigger keeps the key, empty).
func TestHarborShapes(t *testing.T) {
	doc, err := os.ReadFile("testdata/harbor-doc-push.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range event.Actions {
		for _, f := range []Format{TCR, Harbor} {
			body, _, err := Render(f, sample(a), meta)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := slices.Sorted(maps.Keys(leaves(t, body))), slices.Sorted(maps.Keys(leaves(t, doc))); !reflect.DeepEqual(got, want) {
				t.Errorf("%s/%s: keys %v, want %v", f, a, got, want)
			}
		}
	}
}

// ceAttribute is the CloudEvents 1.0 rule for attribute names.
var ceAttribute = regexp.MustCompile(`^[a-z0-9]{1,20}$`)

// TestCloudEvent validates the cloudevents body against CloudEvents 1.0
// (JSON format, structured mode).
func TestCloudEvent(t *testing.T) {
	for _, a := range event.Actions {
		t.Run(string(a), func(t *testing.T) {
			body, ctype, err := Render(CloudEvents, sample(a), meta)
			if err != nil {
				t.Fatal(err)
			}
			if ctype != "application/cloudevents+json" {
				t.Errorf("content type %q", ctype)
			}
			var ce map[string]any
			if err := json.Unmarshal(body, &ce); err != nil {
				t.Fatal(err)
			}
			for k := range ce {
				if !ceAttribute.MatchString(k) {
					t.Errorf("attribute name %q is not 1-20 lowercase letters or digits", k)
				}
			}
			for _, k := range []string{"specversion", "id", "source", "type"} {
				if s, _ := ce[k].(string); s == "" {
					t.Errorf("required attribute %q missing or not a non-empty string", k)
				}
			}
			for _, k := range []string{"subject", "time", "datacontenttype"} {
				if s, ok := ce[k].(string); !ok || s == "" {
					t.Errorf("optional attribute %q is present but not a non-empty string", k)
				}
			}
			if ce["specversion"] != "1.0" {
				t.Errorf("specversion %v", ce["specversion"])
			}
			if ce["id"] != meta.TaskID {
				t.Errorf("id %v, want the task id %q", ce["id"], meta.TaskID)
			}
			if ce["type"] != CloudEventTypes[a] || CloudEventTypes[a] == "" {
				t.Errorf("type %v, want %q", ce["type"], CloudEventTypes[a])
			}
			if u, err := url.Parse(ce["source"].(string)); err != nil || u.String() != ce["source"] {
				t.Errorf("source %v is not a URI-reference: %v", ce["source"], err)
			}
			if ce["datacontenttype"] != "application/json" {
				t.Errorf("datacontenttype %v", ce["datacontenttype"])
			}
			if tm, err := time.Parse(time.RFC3339, ce["time"].(string)); err != nil || !tm.Equal(sample(a).OccurredAt) {
				t.Errorf("time %v (%v), want the event time", ce["time"], err)
			}
			data, ok := ce["data"].(map[string]any)
			if !ok {
				t.Fatalf("data is not a JSON object: %v", ce["data"])
			}
			if data["trigger"] != meta.Trigger || data["repository"] != "team/nginx" || data["action"] != string(a) {
				t.Errorf("data %v", data)
			}
		})
	}
	// The id stays the task id whatever else changes (retries re-render).
	later := meta
	later.Time = later.Time.Add(time.Hour)
	b1, _, _ := Render(CloudEvents, sample(event.PushImage), meta)
	b2, _, _ := Render(CloudEvents, sample(event.PushImage), later)
	if !bytes.Equal(b1, b2) {
		t.Error("a later send time changed the cloudevents body of an event that has its own time")
	}
	// Without its own time, the event takes the send time.
	ev := sample(event.PushImage)
	ev.OccurredAt = time.Time{}
	b, _, _ := Render(CloudEvents, ev, meta)
	var ce struct{ Time string }
	json.Unmarshal(b, &ce)
	if ce.Time != "2020-05-10T10:30:09Z" {
		t.Errorf("time fallback %q", ce.Time)
	}
}

func TestRawAndErrors(t *testing.T) {
	ev := sample(event.PushImage)
	body, ctype, err := Render(Raw, ev, meta)
	if err != nil || string(body) != `{"original":"body <&>"}` || ctype != ContentTypeJSON {
		t.Errorf("raw: %q %q %v", body, ctype, err)
	}
	ev.Raw = nil
	if _, _, err := Render(Raw, ev, meta); !errors.Is(err, ErrNoRaw) {
		t.Errorf("raw without body: %v", err)
	}
	if _, _, err := Render(CloudEvents, ev, Meta{Trigger: "t"}); !errors.Is(err, ErrNoTaskID) {
		t.Errorf("cloudevents without task id: %v", err)
	}
	if _, _, err := Render("bogus", ev, meta); err == nil || !strings.Contains(err.Error(), `"bogus"`) {
		t.Errorf("unknown format: %v", err)
	}
	if b, _, _ := Render("", ev, meta); !bytes.HasPrefix(b, []byte(`{"type":"pushImage",`)) {
		t.Errorf("empty format is not tcr: %s", b)
	}
	ev.Repository = "a<b>&c"
	for _, f := range []Format{TCR, Harbor, ACR, CloudEvents} {
		body, _, _ := Render(f, ev, meta)
		if bytes.Contains(body, []byte(`\u003c`)) || bytes.Contains(body, []byte(`\u0026`)) || !bytes.Contains(body, []byte("a<b>&c")) {
			t.Errorf("%s: HTML escaping in output: %s", f, body)
		}
		if bytes.HasSuffix(body, []byte("\n")) {
			t.Errorf("%s: trailing newline", f)
		}
	}
}

func TestACRTimeAndRegion(t *testing.T) {
	ev := sample(event.PushImage)
	ev.Registry = "registry.cn-hangzhou.aliyuncs.com"
	body, _, _ := Render(ACR, ev, meta)
	var p acrPayload
	json.Unmarshal(body, &p)
	if p.PushData.PushedAt != "2020-05-10 18:30:05" || p.Repository.Region != "cn-hangzhou" || p.Action != "" {
		t.Errorf("got %+v", p)
	}
	if bytes.Contains(body, []byte(`"action"`)) {
		t.Errorf("push carries an action field: %s", body)
	}
	for host, want := range map[string]string{
		"inst-registry.cn-shanghai.cr.aliyuncs.com": "cn-shanghai",
		"registry-vpc.cn-beijing.aliyuncs.com":      "cn-beijing",
		"registry-intl.ap-southeast-1.aliyuncs.com": "ap-southeast-1",
		"Registry.CN-Hangzhou.aliyuncs.com:443":     "cn-hangzhou",
		"registry.cn-hangzhou.aliyuncs.com.":        "cn-hangzhou",
		"demo.tencentcloudcr.com":                   "",
		"example.com":                               "",
		"aliyuncs.com":                              "",
		"cr.aliyuncs.com":                           "",
		"":                                          "",
	} {
		if got := aliyunRegion(host); got != want {
			t.Errorf("aliyunRegion(%q) = %q, want %q", host, got, want)
		}
	}
	for _, a := range event.Actions[1:] {
		ev.Action = a
		body, _, _ = Render(ACR, ev, meta)
		p = acrPayload{}
		json.Unmarshal(body, &p)
		if p.Action != a {
			t.Errorf("%s: non-push action not named in the acr body: %s", a, body)
		}
	}
}

func FuzzRender(f *testing.F) {
	f.Add("tcr", "ns", "repo/x", "v1", "sha256:00", "op", "pushImage", "registry.cn-hangzhou.aliyuncs.com", int64(1589106605), []byte("{}"))
	f.Add("\xff", "\xff", "<&>", "", "", "\x00", "deleteChart", "\u2028", int64(0), []byte{})
	f.Add("a b/c", "", "", "", "sha256:x", "", "", ":::", int64(-1), []byte("not json"))
	f.Fuzz(func(t *testing.T, source, ns, repo, tag, digest, op, action, host string, sec int64, raw []byte) {
		// Keep the time in the years an Event can carry (the parsers refuse others).
		const maxSec = 253402300799 // 9999-12-31T23:59:59Z
		if sec < 0 {
			sec = -sec
		}
		ev := event.Event{
			Source: source, Action: event.Action(action), Namespace: ns, Repository: repo, Tag: tag, Digest: digest,
			ResourceURL: host + "/" + repo, OccurredAt: time.Unix(sec%maxSec, 0).UTC(), Operator: op, Registry: host, Raw: raw,
		}
		for _, fm := range Formats {
			body, ctype, err := Render(fm, ev, metaFor(t, fm))
			if fm == Raw {
				if (err == nil) != (len(raw) > 0) || (err == nil && !bytes.Equal(body, raw)) {
					t.Fatalf("raw: %q, %v", body, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", fm, err)
			}
			if ctype == "" || !json.Valid(body) || !utf8.Valid(body) {
				t.Fatalf("%s: invalid JSON %q", fm, body)
			}
		}
	})
}

// BenchmarkRender measures one rendering of the sample push in each format:
// go test -run=^$ -bench=. -benchmem -count=5 ./internal/payload
func BenchmarkRender(b *testing.B) {
	ev := sample(event.PushImage)
	for _, f := range Formats {
		b.Run(string(f), func(b *testing.B) {
			b.ReportAllocs()
			m := metaFor(b, f)
			for b.Loop() {
				if _, _, err := Render(f, ev, m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
