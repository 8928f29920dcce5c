package payload

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/regtrigger/regtrigger/internal/event"
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

func TestGolden(t *testing.T) {
	for _, f := range Formats {
		for _, a := range event.Actions {
			t.Run(string(f)+"/"+string(a), func(t *testing.T) {
				body, ctype, err := Render(f, sample(a), meta)
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
				var pretty bytes.Buffer
				if f != Raw {
					if err := json.Indent(&pretty, body, "", "  "); err != nil {
						t.Fatalf("not JSON: %v\n%s", err, body)
					}
				} else {
					pretty.Write(body)
				}
				pretty.WriteByte('\n')
				golden := filepath.Join("testdata", "golden", string(f), string(a)+".json")
				if *update {
					os.MkdirAll(filepath.Dir(golden), 0o755)
					if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				exp, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test -update)", err)
				}
				if !bytes.Equal(pretty.Bytes(), exp) {
					t.Errorf("%s differs (run with -update to refresh):\n%s", golden, pretty.Bytes())
				}
				again, _, _ := Render(f, sample(a), meta)
				if !bytes.Equal(body, again) {
					t.Error("rendering is not deterministic")
				}
			})
		}
	}
}

// keysInOrder returns the object keys of a JSON document in the order written.
func keysInOrder(t *testing.T, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	var keys []string
	depth := 0
	expectKey := false
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				depth++
				expectKey = true
			case '}':
				depth--
				expectKey = depth > 0
			case '[':
				expectKey = false
			case ']':
				expectKey = true
			}
		case string:
			if expectKey && dec.More() {
				keys = append(keys, v)
				expectKey = false
				continue
			}
			expectKey = true
		default:
			expectKey = true
		}
		if v, ok := tok.(json.Delim); ok && v == '{' {
			expectKey = true
		}
	}
	return keys
}

// TestShapesMatchRegistryDocs renders the event of each documented body and
// checks that the keys (and their order) are the registry's own, so servers
// written for TCR, Harbor or Aliyun work unchanged.
func TestShapesMatchRegistryDocs(t *testing.T) {
	tests := []struct {
		format Format
		doc    string
	}{
		{TCR, "testdata/tcr-doc-push.json"},
		{Harbor, "testdata/harbor-doc-push.json"},
		{ACR, "testdata/acr-doc-push.json"},
	}
	for _, tt := range tests {
		t.Run(string(tt.format), func(t *testing.T) {
			doc, err := os.ReadFile(tt.doc)
			if err != nil {
				t.Fatal(err)
			}
			body, _, err := Render(tt.format, sample(event.PushImage), meta)
			if err != nil {
				t.Fatal(err)
			}
			var a, b map[string]any
			json.Unmarshal(doc, &a)
			json.Unmarshal(body, &b)
			if got, want := shape(b), shape(a); !reflect.DeepEqual(got, want) {
				t.Errorf("keys differ from the registry's documented body:\n got %v\nwant %v", got, want)
			}
			if tt.format == TCR {
				if got, want := keysInOrder(t, body), keysInOrder(t, doc); !reflect.DeepEqual(got, want) {
					t.Errorf("key order differs from the TCR doc:\n got %v\nwant %v", got, want)
				}
			}
		})
	}
}

// shape lists every key path of a JSON value.
func shape(v any) []string {
	var out []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				out = append(out, prefix+k)
				walk(prefix+k+".", c)
			}
		case []any:
			if len(x) > 0 {
				walk(prefix+"[].", x[0])
			}
		}
	}
	walk("", v)
	sort.Strings(out)
	return out
}

func TestCloudEvent(t *testing.T) {
	for _, a := range event.Actions {
		body, _, err := Render(CloudEvents, sample(a), meta)
		if err != nil {
			t.Fatal(err)
		}
		var ce map[string]any
		if err := json.Unmarshal(body, &ce); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"specversion", "id", "source", "type"} {
			if s, _ := ce[k].(string); s == "" {
				t.Errorf("%s: required attribute %q missing", a, k)
			}
		}
		if ce["specversion"] != "1.0" || ce["id"] != meta.TaskID || ce["type"] != CloudEventTypes[a] {
			t.Errorf("%s: attributes %v", a, ce)
		}
		if _, err := time.Parse(time.RFC3339, ce["time"].(string)); err != nil {
			t.Errorf("time: %v", err)
		}
		data := ce["data"].(map[string]any)
		if data["trigger"] != meta.Trigger || data["repository"] != "team/nginx" {
			t.Errorf("data %v", data)
		}
	}
}

func TestRawAndErrors(t *testing.T) {
	ev := sample(event.PushImage)
	body, _, err := Render(Raw, ev, meta)
	if err != nil || string(body) != `{"original":"body <&>"}` {
		t.Errorf("raw: %q %v", body, err)
	}
	ev.Raw = nil
	if _, _, err := Render(Raw, ev, meta); err != ErrNoRaw {
		t.Errorf("raw without body: %v", err)
	}
	if _, _, err := Render("slack", ev, meta); err == nil {
		t.Error("unknown format rendered")
	}
	if body, _, _ := Render(TCR, sample(event.PushImage), meta); bytes.Contains(body, []byte(`\u003c`)) {
		t.Error("HTML escaping in output")
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
	for host, want := range map[string]string{
		"inst-registry.cn-shanghai.cr.aliyuncs.com": "cn-shanghai",
		"registry-vpc.cn-beijing.aliyuncs.com":      "cn-beijing",
		"example.com":                               "",
		"aliyuncs.com":                              "",
	} {
		if got := aliyunRegion(host); got != want {
			t.Errorf("aliyunRegion(%q) = %q, want %q", host, got, want)
		}
	}
	ev.Action = event.DeleteImage
	body, _, _ = Render(ACR, ev, meta)
	json.Unmarshal(body, &p)
	if p.Action != event.DeleteImage {
		t.Error("non-push action not named in the acr body")
	}
}

func FuzzRender(f *testing.F) {
	f.Add("ns", "repo/x", "v1", "sha256:00", "op", "pushImage", []byte("{}"))
	f.Add("\xff", "<&>", "", "", "\x00", "deleteChart", []byte{})
	f.Fuzz(func(t *testing.T, ns, repo, tag, digest, op, action string, raw []byte) {
		ev := event.Event{Source: "tcr", Action: event.Action(action), Namespace: ns, Repository: repo, Tag: tag, Digest: digest, Operator: op, Raw: raw}
		for _, fm := range Formats {
			body, _, err := Render(fm, ev, meta)
			if fm == Raw {
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", fm, err)
			}
			if !json.Valid(body) || !utf8.Valid(body) {
				t.Fatalf("%s: invalid JSON %q", fm, body)
			}
		}
	})
}

func BenchmarkRender(b *testing.B) {
	ev := sample(event.PushImage)
	for _, f := range Formats {
		b.Run(string(f), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Render(f, ev, meta); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
