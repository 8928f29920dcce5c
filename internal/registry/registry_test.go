package registry

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/event"
)

var update = flag.Bool("update", false, "rewrite golden files")

const fixtures = "testdata/registry-payloads"

var receivedAt = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

type manifestEntry struct {
	File        string  `json:"file"`
	Source      string  `json:"source"`
	Format      string  `json:"format"`
	Event       string  `json:"event"`
	HeadersFile *string `json:"headers_file"`
}

func manifest(t testing.TB) []manifestEntry {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, "MANIFEST.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m []manifestEntry
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// expectedSource maps the fixture corpus's source directories to the
// source names regtrigger gives them; "" means not supported yet (they come
// with the issue that adds the remaining registries) and must be refused
// as an unknown format rather than mistaken for another registry.
var expectedSource = map[string]string{
	"tencent-tcr":  "tcr",
	"harbor":       "harbor",
	"aliyun-acr":   "acr",
	"docker-hub":   "dockerhub",
	"distribution": "distribution",
}

// readHeaders reads the Content-Type line of a .headers.txt file.
func readHeaders(t testing.TB, path string) http.Header {
	h := http.Header{}
	f, err := os.Open(path)
	if err != nil {
		return h
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), "Content-Type") {
			h.Set("Content-Type", strings.TrimSpace(v))
		}
	}
	return h
}

func notification(t testing.TB, e manifestEntry) Notification {
	body, err := os.ReadFile(filepath.Join(fixtures, e.File))
	if err != nil {
		t.Fatal(err)
	}
	n := Notification{Body: body, Header: http.Header{}, ReceivedAt: receivedAt}
	if e.HeadersFile != nil {
		n.Header = readHeaders(t, filepath.Join(fixtures, *e.HeadersFile))
	}
	return n
}

// TestFixtures parses every body of the corpus: supported ones against
// their golden events, the others must be refused as unknown formats.
func TestFixtures(t *testing.T) {
	for _, e := range manifest(t) {
		t.Run(e.File, func(t *testing.T) {
			n := notification(t, e)
			want, supported := expectedSource[e.Source]
			if e.Format == "distribution-event-fragment" {
				// Only a fragment of an event, not an envelope a registry sends.
				supported = false
			}
			evs, err := Parse(n, "")
			if !supported {
				if !errors.Is(err, ErrUnknownFormat) {
					t.Fatalf("want ErrUnknownFormat for a format not supported yet, got %v (%d events)", err, len(evs))
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got, err := Detect(n)
			if err != nil || got != want {
				t.Fatalf("Detect = %q, %v; want %q", got, err, want)
			}
			for _, ev := range evs {
				if ev.Source != want || !ev.Action.Valid() || ev.Namespace == "" || ev.Repository == "" || ev.OccurredAt.Location() != time.UTC || !bytes.Equal(ev.Raw, n.Body) {
					t.Errorf("bad event %+v", ev)
				}
			}
			// Forcing the right source gives the same events.
			forced, err := Parse(n, want)
			if err != nil || len(forced) != len(evs) {
				t.Errorf("forced %q: %d events, %v", want, len(forced), err)
			}
			checkGolden(t, filepath.Join("testdata", "golden", strings.TrimSuffix(e.File, ".json")+".events.json"), evs)
		})
	}
}

func checkGolden(t *testing.T, path string, evs []event.Event) {
	t.Helper()
	if evs == nil {
		evs = []event.Event{}
	}
	got, err := json.MarshalIndent(evs, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/registry -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("events differ from %s (run with -update after checking):\n%s", path, got)
	}
}

func body(t *testing.T, file string) []byte {
	b, err := os.ReadFile(filepath.Join(fixtures, file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSemantics pins the decisions the goldens encode, so a refresh with
// -update cannot silently change them.
func TestSemantics(t *testing.T) {
	parse := func(file string, h ...string) []event.Event {
		t.Helper()
		n := Notification{Body: body(t, file), Header: http.Header{}, ReceivedAt: receivedAt}
		for i := 0; i+1 < len(h); i += 2 {
			n.Header.Set(h[i], h[i+1])
		}
		evs, err := Parse(n, "")
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		return evs
	}
	t.Run("tcr push", func(t *testing.T) {
		e := parse("tencent-tcr/pushImage.json")[0]
		if e.Source != "tcr" || e.Action != event.PushImage || e.Namespace != "public" || e.Repository != "nginx" || e.Tag != "v1.10.0" ||
			e.Operator != "332133xxxx" || e.OccurredAt != time.Unix(1589106605, 0).UTC() || e.Registry != "xxx-bj.tencentcloudcr.com" {
			t.Errorf("%+v", e)
		}
	})
	t.Run("harbor push by digest has no tag", func(t *testing.T) {
		e := parse("harbor/v2-default/push_artifact.json")[0]
		if e.Source != "harbor" || e.Tag != "" || !strings.HasPrefix(e.Digest, "sha256:954b") {
			t.Errorf("%+v", e)
		}
	})
	t.Run("harbor nested repository name", func(t *testing.T) {
		evs := parse("harbor/v2-default/scanning_completed-nested-repo-zulip.json")
		if len(evs) != 0 {
			t.Errorf("a scan fires nothing yet, got %v", evs)
		}
	})
	t.Run("harbor keel: tag field wins over resource_url", func(t *testing.T) {
		e := parse("harbor/v2-default/push_artifact-keel.json")[0]
		if e.Tag != "latest" {
			t.Errorf("tag %q", e.Tag)
		}
	})
	t.Run("harbor chart upload", func(t *testing.T) {
		e := parse("harbor/v2-default/upload_chart-thirdparty-capture.json")[0]
		if e.Action != event.UploadChart || e.Tag == "" || e.Digest != "" {
			t.Errorf("%+v", e)
		}
	})
	t.Run("harbor cloudevents pull", func(t *testing.T) {
		e := parse("harbor/v2-cloudevents/pull_artifact.json")[0]
		if e.Action != event.PullImage || e.OccurredAt.IsZero() {
			t.Errorf("%+v", e)
		}
	})
	t.Run("aliyun time is UTC+8", func(t *testing.T) {
		e := parse("aliyun-acr/push.json")[0]
		if want := time.Date(2016, 11, 29, 4, 25, 46, 0, time.UTC); !e.OccurredAt.Equal(want) {
			t.Errorf("occurred %v, want %v", e.OccurredAt, want)
		}
		if e.ResourceURL != "registry.cn-hangzhou.aliyuncs.com/namespace/repoTest:latest" {
			t.Errorf("resource %q", e.ResourceURL)
		}
	})
	t.Run("docker hub float epoch", func(t *testing.T) {
		e := parse("docker-hub/push-legacy-doc-with-images-array.json")[0]
		if !e.OccurredAt.Equal(time.Unix(1417566161, 0)) || e.Digest != "" || e.ResourceURL != "docker.io/svendowideit/testhook:latest" {
			t.Errorf("%+v", e)
		}
	})
	t.Run("distribution: layers and untagged manifests fire nothing", func(t *testing.T) {
		for _, f := range []string{"distribution/push-envelope-doc-v3.json", "distribution/push-envelope-v3-event_test.json", "distribution/push-envelope-v2.8-event_test.json"} {
			if evs := parse(f); len(evs) != 0 {
				t.Errorf("%s: %d events, want none", f, len(evs))
			}
		}
	})
	t.Run("distribution tagged push", func(t *testing.T) {
		e := parse("distribution/push-envelope-real-keel.json")[0]
		if e.Namespace != "foo" || e.Repository != "bar" || e.Tag != "1.6.1" || e.Registry != "registry.git.erxes.io" ||
			e.ResourceURL != "registry.git.erxes.io/foo/bar:1.6.1" || e.Operator != "foo" {
			t.Errorf("%+v", e)
		}
	})
	t.Run("distribution delete by digest", func(t *testing.T) {
		frag := body(t, "distribution/delete-target-fragment-doc.json")
		env := []byte(`{"events":[{"id":"x","timestamp":"2024-01-02T03:04:05Z","action":"delete",` + strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(string(frag)), "{"), "}") + `}]}`)
		evs, err := Parse(Notification{Body: env, ReceivedAt: receivedAt}, "")
		if err != nil || len(evs) != 1 {
			t.Fatalf("%v %v", evs, err)
		}
		e := evs[0]
		if e.Action != event.DeleteImage || e.Tag != "" || e.Namespace != "library" || e.Repository != "test" || !strings.HasSuffix(e.ResourceURL, "library/test@"+e.Digest) {
			t.Errorf("%+v", e)
		}
	})
	t.Run("distribution single-segment repository goes to library", func(t *testing.T) {
		b := []byte(`{"events":[{"action":"push","timestamp":"2024-01-02T03:04:05Z","target":{"mediaType":"application/vnd.oci.image.index.v1+json","repository":"app","tag":"v1","digest":"sha256:aa"},"request":{"host":"localhost:5000"}}]}`)
		evs, err := Parse(Notification{Body: b}, "")
		if err != nil || len(evs) != 1 || evs[0].Namespace != "library" || evs[0].Repository != "app" || evs[0].ResourceURL != "localhost:5000/app:v1" {
			t.Fatalf("%+v %v", evs, err)
		}
	})
	t.Run("distribution deep path", func(t *testing.T) {
		b := []byte(`{"events":[{"action":"pull","target":{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","repository":"team/sub/app","tag":"v1"}}]}`)
		evs, err := Parse(Notification{Body: b, ReceivedAt: receivedAt}, "")
		if err != nil || len(evs) != 1 || evs[0].Namespace != "team" || evs[0].Repository != "sub/app" || evs[0].Action != event.PullImage || !evs[0].OccurredAt.Equal(receivedAt) {
			t.Fatalf("%+v %v", evs, err)
		}
	})
	t.Run("distribution detected by content type alone", func(t *testing.T) {
		n := Notification{Body: []byte(`{"events":[]}`), Header: http.Header{"Content-Type": {DistributionEventsV2 + "; charset=utf-8"}}}
		if s, err := Detect(n); s != "distribution" || err != nil {
			t.Errorf("%q %v", s, err)
		}
	})
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		source string
		want   error
		reason string
	}{
		{"empty", "", "", ErrNotJSON, "empty"},
		{"whitespace", "  \n", "", ErrNotJSON, "empty"},
		{"null", "null", "", ErrNotJSON, "null"},
		{"array", "[]", "", ErrNotJSON, "array"},
		{"number", "42", "", ErrNotJSON, "number"},
		{"xml", "<xml/>", "", ErrNotJSON, "does not start"},
		{"truncated", `{"type": "pushImage", "occur_at": 1`, "", ErrNotJSON, "unexpected end"},
		{"empty object", "{}", "", ErrUnknownFormat, "matches no registry"},
		{"unknown keys", `{"hello": "world"}`, "", ErrUnknownFormat, "[hello]"},
		{"unknown forced source", "{}", "gitea", ErrUnknownSource, "known sources"},
		{"harbor occur_at string", `{"type":"pushImage","occur_at":"x","event_data":{}}`, "", ErrMalformed, "occur_at"},
		{"harbor no namespace", `{"type":"pushImage","occur_at":1,"event_data":{"resources":[{"tag":"a"}],"repository":{"name":"n"}}}`, "", ErrMalformed, "namespace is missing"},
		{"harbor no resources", `{"type":"PUSH_ARTIFACT","occur_at":1,"event_data":{"repository":{"name":"n","namespace":"p"}}}`, "", ErrMalformed, "resources is empty"},
		{"harbor no repository", `{"type":"PUSH_ARTIFACT","occur_at":1,"event_data":{"resources":[{"tag":"a"}]}}`, "", ErrMalformed, "repository is missing"},
		{"harbor resources wrong type", `{"type":"PUSH_ARTIFACT","occur_at":1,"event_data":{"resources":"a"}}`, "", ErrMalformed, "event_data.resources"},
		{"harbor unknown type", `{"type":"LABEL_ADDED","occur_at":1,"event_data":{}}`, "", ErrUnsupportedEvent, "LABEL_ADDED"},
		{"harbor empty type", `{"type":"","occur_at":1,"event_data":{}}`, "", ErrMalformed, "type is missing"},
		{"forced harbor on docker hub body", `{"push_data":{"tag":"x"},"callback_url":"u"}`, "harbor", ErrMalformed, "type is missing"},
		{"forced distribution without events", `{"target":{"repository":"a"}}`, "distribution", ErrMalformed, "events is missing"},
		{"distribution no repository", `{"events":[{"action":"push","target":{"tag":"x"}}]}`, "", ErrMalformed, "repository is missing"},
		{"distribution bad timestamp", `{"events":[{"action":"delete","timestamp":"yesterday","target":{"repository":"a/b","digest":"sha256:1"}}]}`, "", ErrMalformed, "timestamp"},
		{"cloudevents bad time", `{"specversion":"1.0","type":"harbor.artifact.pushed","time":"now","data":{}}`, "", ErrMalformed, "RFC 3339"},
		{"aliyun bad time", `{"push_data":{"tag":"a","pushed_at":"29/11/2016"},"repository":{"region":"cn","name":"n","namespace":"s"}}`, "", ErrMalformed, "pushed_at"},
		{"aliyun no tag", `{"push_data":{},"repository":{"region":"cn","name":"n","namespace":"s"}}`, "", ErrMalformed, "tag is missing"},
		{"dockerhub bad time", `{"callback_url":"u","push_data":{"tag":"a","pushed_at":-5},"repository":{"repo_name":"a/b"}}`, "", ErrMalformed, "pushed_at"},
		{"dockerhub no repository", `{"callback_url":"u","push_data":{"tag":"a"}}`, "", ErrMalformed, "repository is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := Parse(Notification{Body: []byte(tt.body)}, tt.source)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v (%d events), want %v", err, len(evs), tt.want)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not say %q", err, tt.reason)
			}
			if evs != nil {
				t.Error("events returned with an error")
			}
		})
	}
}

func TestSources(t *testing.T) {
	if got := strings.Join(Sources(), ","); got != "acr,distribution,dockerhub,harbor,tcr" {
		t.Errorf("Sources() = %s", got)
	}
}

// checkEvents is what every fuzz target asserts of a successful parse.
func checkEvents(t *testing.T, evs []event.Event, err error) {
	if err != nil {
		if !errors.Is(err, ErrNotJSON) && !errors.Is(err, ErrUnknownFormat) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupportedEvent) {
			t.Fatalf("error of no known kind: %v", err)
		}
		return
	}
	for _, e := range evs {
		if !e.Action.Valid() || e.Namespace == "" || e.Repository == "" || e.Source == "" {
			t.Fatalf("invalid event from a successful parse: %+v", e)
		}
	}
}

func fuzzSeeds(f *testing.F, dir string) {
	paths, _ := filepath.Glob(filepath.Join(fixtures, dir, "*.json"))
	more, _ := filepath.Glob(filepath.Join(fixtures, dir, "*", "*.json"))
	for _, p := range append(paths, more...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func fuzzSource(f *testing.F, dir, source string) {
	fuzzSeeds(f, dir)
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := Parse(Notification{Body: b, ReceivedAt: receivedAt}, source)
		checkEvents(t, evs, err)
	})
}

func FuzzParseTCR(f *testing.F)          { fuzzSource(f, "tencent-tcr", "tcr") }
func FuzzParseHarbor(f *testing.F)       { fuzzSource(f, "harbor", "harbor") }
func FuzzParseACR(f *testing.F)          { fuzzSource(f, "aliyun-acr", "acr") }
func FuzzParseDockerHub(f *testing.F)    { fuzzSource(f, "docker-hub", "dockerhub") }
func FuzzParseDistribution(f *testing.F) { fuzzSource(f, "distribution", "distribution") }

// FuzzDetect feeds every fixture (all registries) to detection and parsing.
func FuzzDetect(f *testing.F) {
	fuzzSeeds(f, ".")
	for _, d := range []string{"tencent-tcr", "harbor", "aliyun-acr", "docker-hub", "distribution", "quay", "azure-acr"} {
		fuzzSeeds(f, d)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		src, err := Detect(Notification{Body: b})
		if err == nil && src == "" {
			t.Fatal("no source and no error")
		}
		evs, err := Parse(Notification{Body: b, ReceivedAt: receivedAt}, "")
		checkEvents(t, evs, err)
	})
}

func BenchmarkParse(b *testing.B) {
	for _, c := range []struct{ source, file string }{
		{"tcr", "tencent-tcr/pushImage.json"},
		{"harbor", "harbor/v2-default/push_artifact-v2.0-doc.json"},
		{"harbor-cloudevents", "harbor/v2-cloudevents/push_artifact.json"},
		{"acr", "aliyun-acr/push.json"},
		{"dockerhub", "docker-hub/push.json"},
		{"distribution", "distribution/push-envelope-real-keel.json"},
	} {
		body, err := os.ReadFile(filepath.Join(fixtures, c.file))
		if err != nil {
			b.Fatal(err)
		}
		n := Notification{Body: body, ReceivedAt: receivedAt}
		b.Run(c.source, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := Parse(n, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
