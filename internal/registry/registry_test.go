package registry

import (
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
	"github.com/regtrigger/regtrigger/internal/fixture"
)

var update = flag.Bool("update", false, "rewrite golden files")

const fixtures = "testdata/registry-payloads"

var receivedAt = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

type manifestEntry = fixture.Entry

func manifest(t testing.TB) []manifestEntry {
	t.Helper()
	m, err := fixture.Open(fixtures).Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// expectedSource maps the fixture corpus's source directories to the
// source names regtrigger gives them. Every directory MANIFEST.json names
// must be here: a fixture of a registry regtrigger does not support fails
// TestFixtures until a parser (or a decision to refuse it) exists.
var expectedSource = map[string]string{
	"tencent-tcr":              "tcr",
	"harbor":                   "harbor",
	"aliyun-acr":               "acr",
	"docker-hub":               "dockerhub",
	"distribution":             "distribution",
	"quay":                     "quay",
	"azure-acr":                "azure",
	"aws-ecr":                  "ecr",
	"ghcr":                     "ghcr",
	"jfrog-artifactory":        "jfrog",
	"nexus":                    "nexus",
	"google-artifact-registry": "gar",
}

// readHeaders reads a .headers.txt file (see fixture.ReadHeaders).
func readHeaders(t testing.TB, path string) http.Header {
	h, err := fixture.ReadHeaders(path)
	if err != nil {
		t.Fatal(err)
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

// TestFixtures parses every body of the corpus against its golden events
// (detected, and with the source forced). The Distribution fragment, which
// no registry sends, must be refused as an unknown format.
func TestFixtures(t *testing.T) {
	for _, e := range manifest(t) {
		t.Run(e.File, func(t *testing.T) {
			n := notification(t, e)
			want, ok := expectedSource[e.Source]
			if !ok {
				t.Fatalf("fixture source %q has no expected source name: add a parser, or decide and document why it is refused", e.Source)
			}
			evs, err := Parse(n, "")
			if e.Format == "distribution-event-fragment" {
				// Only a fragment of an event, not an envelope a registry sends.
				if !errors.Is(err, ErrUnknownFormat) {
					t.Fatalf("want ErrUnknownFormat for a fragment, got %v (%d events)", err, len(evs))
				}
				if src, err := Detect(n); !errors.Is(err, ErrUnknownFormat) || src != "" {
					t.Fatalf("Detect = %q, %v; want ErrUnknownFormat", src, err)
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
			checkEvents(t, want, n.Body, evs, nil)
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
	t.Run("distribution empty envelope needs the content type", func(t *testing.T) {
		n := Notification{Body: []byte(`{"events":[]}`), Header: http.Header{"Content-Type": {DistributionEventsV2 + "; charset=utf-8"}}}
		if s, err := Detect(n); s != "distribution" || err != nil {
			t.Errorf("%q %v", s, err)
		}
		n.Header = nil
		if s, err := Detect(n); !errors.Is(err, ErrUnknownFormat) {
			t.Errorf("without the content type: %q %v, want ErrUnknownFormat", s, err)
		}
	})
	t.Run("distribution content type without events is not distribution", func(t *testing.T) {
		n := Notification{Body: body(t, "distribution/delete-target-fragment-doc.json"), Header: http.Header{"Content-Type": {DistributionEventsV1}}}
		_, err := Parse(n, "")
		if !errors.Is(err, ErrUnknownFormat) || !strings.Contains(err.Error(), "[target]") || !strings.Contains(err.Error(), DistributionEventsV1) {
			t.Errorf("%v", err)
		}
	})
	t.Run("distribution ignored actions and blobs", func(t *testing.T) {
		// None of these needs a repository or a valid timestamp: they are skipped first.
		b := []byte(`{"events":[
			{"action":"mount","timestamp":"bad","target":{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"sha256:1","fromRepository":"x/y"}},
			{"action":"push","target":{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:2"}},
			{"action":"pull","target":{"mediaType":"application/octet-stream","digest":"sha256:3"}},
			{"action":"delete","target":{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:4"}},
			{"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:5","repository":"a/b"}},
			{"action":"pull","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:6","repository":"a/b"}},
			{"action":"frobnicate","target":{}}
		]}`)
		evs, err := Parse(Notification{Body: b, ReceivedAt: receivedAt}, "")
		if err != nil || len(evs) != 0 {
			t.Fatalf("%+v %v", evs, err)
		}
	})
	t.Run("distribution batch keeps order, tag delete keeps tag", func(t *testing.T) {
		b := []byte(`{"events":[
			{"action":"push","timestamp":"2024-01-02T03:04:05+08:00","target":{"mediaType":"application/vnd.oci.image.index.v1+json; charset=utf-8","repository":"team/app","tag":"v2","digest":"sha256:aa"},"request":{"host":"reg.example.com"},"actor":{"name":"ci"}},
			{"action":"delete","timestamp":"0001-01-01T00:00:00Z","target":{"repository":"team/app","tag":"v1"},"request":{"host":"reg.example.com"}},
			{"action":"delete","target":{"repository":"team/app"},"request":{"host":"reg.example.com"}}
		]}`)
		evs, err := Parse(Notification{Body: b, ReceivedAt: receivedAt}, "")
		if err != nil || len(evs) != 3 {
			t.Fatalf("%+v %v", evs, err)
		}
		if e := evs[0]; e.Action != event.PushImage || e.Tag != "v2" || e.Operator != "ci" || !e.OccurredAt.Equal(time.Date(2024, 1, 1, 19, 4, 5, 0, time.UTC)) || e.OccurredAt.Location() != time.UTC {
			t.Errorf("push %+v", e)
		}
		if e := evs[1]; e.Action != event.DeleteImage || e.Tag != "v1" || e.Digest != "" || e.ResourceURL != "reg.example.com/team/app:v1" || !e.OccurredAt.Equal(receivedAt) {
			t.Errorf("tag delete %+v", e)
		}
		if e := evs[2]; e.Action != event.DeleteImage || e.Tag != "" || e.Digest != "" || e.ResourceURL != "reg.example.com/team/app" {
			t.Errorf("repository delete %+v", e)
		}
	})
	t.Run("distribution host from target.url", func(t *testing.T) {
		b := []byte(`{"events":[{"action":"push","target":{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","repository":"a/b","tag":"t","url":"https://reg.example.com:5000/v2/a/b/manifests/sha256:1"}}]}`)
		evs, err := Parse(Notification{Body: b, ReceivedAt: receivedAt}, "")
		if err != nil || len(evs) != 1 || evs[0].Registry != "reg.example.com:5000" || evs[0].ResourceURL != "reg.example.com:5000/a/b:t" {
			t.Fatalf("%+v %v", evs, err)
		}
	})
	t.Run("harbor push with a nested repository name", func(t *testing.T) {
		b := bytes.Replace(body(t, "harbor/v2-default/scanning_completed-nested-repo-zulip.json"), []byte("SCANNING_COMPLETED"), []byte("PUSH_ARTIFACT"), 1)
		evs, err := Parse(Notification{Body: b, ReceivedAt: receivedAt}, "")
		if err != nil || len(evs) != 1 {
			t.Fatalf("%+v %v", evs, err)
		}
		if e := evs[0]; e.Namespace != "test" || e.Repository != "alpine/helm" || e.Tag != "3.8.1" || e.FullName() != "test/alpine/helm" {
			t.Errorf("%+v", e)
		}
	})
	t.Run("harbor name from repo_full_name", func(t *testing.T) {
		b := []byte(`{"type":"pushImage","occur_at":1,"event_data":{"resources":[{"tag":"v1","resource_url":"h.example.com/p/a/b:v1"}],"repository":{"namespace":"p","repo_full_name":"p/a/b"}}}`)
		evs, err := Parse(Notification{Body: b}, "")
		if err != nil || len(evs) != 1 || evs[0].Namespace != "p" || evs[0].Repository != "a/b" {
			t.Fatalf("%+v %v", evs, err)
		}
	})
	t.Run("harbor one event per resource", func(t *testing.T) {
		b := []byte(`{"type":"DELETE_ARTIFACT","occur_at":1,"event_data":{"resources":[{"tag":"v1","digest":"sha256:1"},{"digest":"sha256:2"}],"repository":{"namespace":"p","name":"a"}}}`)
		evs, err := Parse(Notification{Body: b}, "")
		if err != nil || len(evs) != 2 || evs[0].Tag != "v1" || evs[1].Tag != "" || evs[1].Digest != "sha256:2" || evs[1].Action != event.DeleteImage {
			t.Fatalf("%+v %v", evs, err)
		}
	})
	t.Run("tcr detected by host with port and scheme", func(t *testing.T) {
		b := []byte(`{"type":"deleteChart","occur_at":1,"event_data":{"resources":[{"tag":"0.1.0","resource_url":"https://demo.TencentCloudCR.com:443/chartrepo/p/charts/c-0.1.0.tgz"}],"repository":{"namespace":"p","name":"c"}}}`)
		evs, err := Parse(Notification{Body: b}, "")
		if err != nil || len(evs) != 1 || evs[0].Source != "tcr" || evs[0].Action != event.DeleteChart || evs[0].Tag != "0.1.0" {
			t.Fatalf("%+v %v", evs, err)
		}
	})
	t.Run("tcr body forced as harbor and back", func(t *testing.T) {
		n := Notification{Body: body(t, "harbor/v1/pushImage-keel.json"), ReceivedAt: receivedAt}
		evs, err := Parse(n, "tcr")
		if err != nil || len(evs) != 1 || evs[0].Source != "tcr" {
			t.Fatalf("%+v %v", evs, err)
		}
	})
	t.Run("no time in the body: received time in UTC", func(t *testing.T) {
		at := time.Date(2026, 1, 2, 11, 0, 0, 0, time.FixedZone("X", 3600))
		b := []byte(`{"callback_url":"u","push_data":{"tag":"a"},"repository":{"repo_name":"a/b"}}`)
		evs, err := Parse(Notification{Body: b, ReceivedAt: at}, "")
		if err != nil || len(evs) != 1 || !evs[0].OccurredAt.Equal(at) || evs[0].OccurredAt.Location() != time.UTC {
			t.Fatalf("%+v %v", evs, err)
		}
	})
}

// TestForcedWrongSource forces every other source on each fixture that
// yields events: the answer must be a ParseError of the forced source, not
// events. tcr and harbor share one shape, so they are not "wrong" for each other.
func TestForcedWrongSource(t *testing.T) {
	same := map[string]string{"tcr": "harbor", "harbor": "tcr"}
	for _, e := range manifest(t) {
		want, ok := expectedSource[e.Source]
		if !ok || e.Format == "distribution-event-fragment" {
			continue
		}
		n := notification(t, e)
		n.Header = nil // the Content-Type must not rescue a wrong source
		if evs, err := Parse(n, want); err != nil || len(evs) == 0 {
			continue
		}
		for _, forced := range Sources() {
			if forced == want || same[forced] == want {
				continue
			}
			t.Run(e.File+"/as-"+forced, func(t *testing.T) {
				evs, err := Parse(n, forced)
				var pe *ParseError
				if !errors.As(err, &pe) || !errors.Is(err, ErrMalformed) || pe.Source != forced || !strings.HasPrefix(err.Error(), forced+": ") {
					t.Fatalf("got %v (%d events), want a %s ParseError", err, len(evs), forced)
				}
			})
		}
	}
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
		{"empty object", "{}", "", ErrUnknownFormat, "JSON object with keys [] matches no registry format regtrigger knows"},
		{"deep nesting", `{"a":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, "", ErrNotJSON, "exceeded max depth"},
		{"trailing garbage", `{"events":[]} {}`, "", ErrNotJSON, "after top-level value"},
		{"forced source, not JSON", "[1]", "harbor", ErrNotJSON, "array"},
		{"unknown keys", `{"hello": "world"}`, "", ErrUnknownFormat, "[hello]"},
		{"unknown forced source", "{}", "gitea", ErrUnknownSource, "known sources"},
		{"harbor occur_at string", `{"type":"pushImage","occur_at":"x","event_data":{}}`, "", ErrMalformed, "harbor: occur_at: want Unix seconds"},
		{"harbor occur_at too late", `{"type":"pushImage","occur_at":99999999999999,"event_data":{}}`, "", ErrMalformed, "between 1970 and 9999"},
		{"harbor occur_at float too late", `{"type":"pushImage","occur_at":1e300,"event_data":{}}`, "", ErrMalformed, "between 1970 and 9999"},
		{"harbor type wrong type", `{"type":7,"occur_at":1,"event_data":{}}`, "", ErrMalformed, "type: want a JSON string, found a JSON number"},
		{"harbor missing type forced", `{"occur_at":1,"event_data":{}}`, "harbor", ErrMalformed, "harbor: type is missing"},
		{"harbor chart without version", `{"type":"UPLOAD_CHART","occur_at":1,"event_data":{"resources":[{"digest":"sha256:1"}],"repository":{"name":"n","namespace":"p"}}}`, "", ErrMalformed, "resources[0].tag (the chart version) is missing"},
		{"harbor resource without tag or digest", `{"type":"PUSH_ARTIFACT","occur_at":1,"event_data":{"resources":[{"resource_url":"x"}],"repository":{"name":"n","namespace":"p"}}}`, "", ErrMalformed, "neither tag nor digest"},
		{"tcr no namespace", `{"type":"pushImage","occur_at":1,"event_data":{"resources":[{"tag":"a","resource_url":"x.tencentcloudcr.com/p/n:a"}],"repository":{"name":"n"}}}`, "", ErrMalformed, "tcr: event_data.repository.namespace is missing"},
		{"harbor no namespace", `{"type":"pushImage","occur_at":1,"event_data":{"resources":[{"tag":"a"}],"repository":{"name":"n"}}}`, "", ErrMalformed, "namespace is missing"},
		{"harbor no resources", `{"type":"PUSH_ARTIFACT","occur_at":1,"event_data":{"repository":{"name":"n","namespace":"p"}}}`, "", ErrMalformed, "resources is empty"},
		{"harbor no repository", `{"type":"PUSH_ARTIFACT","occur_at":1,"event_data":{"resources":[{"tag":"a"}]}}`, "", ErrMalformed, "repository is missing"},
		{"harbor resources wrong type", `{"type":"PUSH_ARTIFACT","occur_at":1,"event_data":{"resources":"a"}}`, "", ErrMalformed, "event_data.resources: want a JSON array, found a JSON string"},
		{"harbor unknown type", `{"type":"LABEL_ADDED","occur_at":1,"event_data":{}}`, "", ErrUnsupportedEvent, "LABEL_ADDED"},
		{"harbor empty type", `{"type":"","occur_at":1,"event_data":{}}`, "", ErrMalformed, "type is missing"},
		{"forced harbor on docker hub body", `{"push_data":{"tag":"x"},"callback_url":"u"}`, "harbor", ErrMalformed, "type is missing"},
		{"forced distribution without events", `{"target":{"repository":"a"}}`, "distribution", ErrMalformed, "events is missing"},
		{"distribution no repository", `{"events":[{"action":"push","target":{"tag":"x","mediaType":"application/vnd.oci.image.manifest.v1+json"}}]}`, "", ErrMalformed, "events[0].target.repository is missing"},
		{"distribution bad timestamp", `{"events":[{"action":"delete","timestamp":"yesterday","target":{"repository":"a/b","digest":"sha256:1"}}]}`, "", ErrMalformed, "timestamp"},
		{"distribution events not an array", `{"events":{"a":1}}`, "distribution", ErrMalformed, "events: want a JSON array, found a JSON object"},
		{"distribution event not an object", `{"events":[1]}`, "distribution", ErrMalformed, "want a JSON object, found a JSON number"},
		{"distribution events null", `{"events":null}`, "distribution", ErrMalformed, "events is missing"},
		{"distribution fragment", `{"target":{"digest":"sha256:1","repository":"library/test"}}`, "", ErrUnknownFormat, "[target]"},
		{"cloudevents bad time", `{"specversion":"1.0","type":"harbor.artifact.pushed","time":"now","data":{}}`, "", ErrMalformed, "RFC 3339"},
		{"cloudevents time before year 1 in UTC", `{"specversion":"1.0","type":"harbor.artifact.pushed","time":"0000-01-01T00:00:00+01:00","data":{}}`, "", ErrMalformed, "years 1-9999"},
		{"cloudevents no repository", `{"specversion":"1.0","type":"harbor.artifact.pulled","data":{"resources":[{"tag":"a"}]}}`, "", ErrMalformed, "harbor: data.repository is missing"},
		{"cloudevents unknown harbor type", `{"specversion":"1.0","type":"harbor.artifact.labeled","data":{}}`, "", ErrUnsupportedEvent, "harbor.artifact.labeled"},
		{"aliyun bad time", `{"push_data":{"tag":"a","pushed_at":"29/11/2016"},"repository":{"region":"cn","name":"n","namespace":"s"}}`, "", ErrMalformed, "pushed_at"},
		{"aliyun no tag", `{"push_data":{},"repository":{"region":"cn","name":"n","namespace":"s"}}`, "", ErrMalformed, "tag is missing"},
		{"aliyun time out of range", `{"push_data":{"tag":"a","pushed_at":"0000-01-01 05:00:00"},"repository":{"region":"cn","name":"n","namespace":"s"}}`, "", ErrMalformed, "years 1-9999"},
		{"aliyun bad region", `{"push_data":{"tag":"a"},"repository":{"region":"cn/../x","name":"n","namespace":"s"}}`, "", ErrMalformed, "not a region name"},
		{"aliyun pushed_at number", `{"push_data":{"tag":"a","pushed_at":1},"repository":{"region":"cn","name":"n","namespace":"s"}}`, "", ErrMalformed, "push_data.pushed_at: want a JSON string, found a JSON number"},
		{"dockerhub bad time", `{"callback_url":"u","push_data":{"tag":"a","pushed_at":-5},"repository":{"repo_name":"a/b"}}`, "", ErrMalformed, "pushed_at"},
		{"dockerhub no repository", `{"callback_url":"u","push_data":{"tag":"a"}}`, "", ErrMalformed, "repository is missing"},
		{"dockerhub pushed_at string", `{"callback_url":"u","push_data":{"tag":"a","pushed_at":"2020"},"repository":{"repo_name":"a/b"}}`, "", ErrMalformed, "want Unix seconds"},
		{"dockerhub no tag", `{"callback_url":"u","push_data":{},"repository":{"repo_name":"a/b"}}`, "", ErrMalformed, "dockerhub: push_data.tag is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRefused(t, Notification{Body: []byte(tt.body)}, tt.source, tt.want, tt.reason)
		})
	}
}

// checkRefused parses n and checks it is refused with want, a message
// saying reason, no events, and a *ParseError for malformed bodies.
func checkRefused(t *testing.T, n Notification, source string, want error, reason string) {
	t.Helper()
	evs, err := Parse(n, source)
	if !errors.Is(err, want) {
		t.Fatalf("got %v (%d events), want %v", err, len(evs), want)
	}
	if !strings.Contains(err.Error(), reason) {
		t.Errorf("error %q does not say %q", err, reason)
	}
	if evs != nil {
		t.Error("events returned with an error")
	}
	var pe *ParseError
	if errors.Is(err, ErrMalformed) && !errors.As(err, &pe) {
		t.Errorf("malformed without a *ParseError: %T", err)
	}
}

func TestParseError(t *testing.T) {
	_, err := Parse(Notification{Body: []byte(`{"type":"pushImage","occur_at":1,"event_data":{"resources":[{"tag":"a"}],"repository":{"name":"n"}}}`)}, "harbor")
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Source != "harbor" || pe.Reason != "event_data.repository.namespace is missing" || pe.Err != ErrMalformed {
		t.Fatalf("%#v", err)
	}
	if err.Error() != "harbor: event_data.repository.namespace is missing" {
		t.Errorf("Error() = %q", err.Error())
	}
	_, err = Parse(Notification{Body: []byte(`{"type":"NEW_THING","occur_at":1,"event_data":{}}`)}, "")
	if !errors.As(err, &pe) || !errors.Is(err, ErrUnsupportedEvent) || !errors.Is(err, ErrMalformed) || err.Error() != `harbor: event type "NEW_THING" is not supported` {
		t.Errorf("unsupported: %v", err)
	}
	for _, other := range []error{ErrNotJSON, ErrUnknownFormat, ErrUnknownSource} {
		if errors.Is(err, other) {
			t.Errorf("unsupported is also %v", other)
		}
	}
}

func TestSources(t *testing.T) {
	if got := strings.Join(Sources(), ","); got != "acr,azure,distribution,dockerhub,ecr,gar,ghcr,harbor,jfrog,nexus,quay,tcr" {
		t.Errorf("Sources() = %s", got)
	}
}

// checkEvents asserts what holds of every parse: an error is of a known
// kind and comes without events; a success gives events that are valid
// (known action, namespace and repository, the source, a UTC time, the
// original body) and that can be stored as JSON. source "" accepts any
// source name.
func checkEvents(t *testing.T, source string, body []byte, evs []event.Event, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, ErrNotJSON) && !errors.Is(err, ErrUnknownFormat) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error of no known kind: %v", err)
		}
		if evs != nil {
			t.Fatalf("events returned with error %v", err)
		}
		return
	}
	for _, e := range evs {
		if !e.Action.Valid() || e.Namespace == "" || e.Repository == "" || e.Source == "" || (source != "" && e.Source != source) {
			t.Fatalf("invalid event from a successful parse: %+v", e)
		}
		if e.OccurredAt.IsZero() || e.OccurredAt.Location() != time.UTC {
			t.Fatalf("occurred_at %v is not a UTC time", e.OccurredAt)
		}
		if !bytes.Equal(e.Raw, body) {
			t.Fatalf("Raw is not the body")
		}
		if e.Tag == "" && e.Digest == "" && e.Action != event.DeleteImage {
			t.Fatalf("%s event with neither tag nor digest: %+v", e.Action, e)
		}
	}
	if _, err := json.Marshal(evs); err != nil {
		t.Fatalf("events cannot be stored as JSON: %v", err)
	}
}

// fuzzSeeds adds every body under the corpus directory dir ("." for all).
func fuzzSeeds(f *testing.F, dir string, add func(body []byte, contentType string)) {
	err := filepath.WalkDir(filepath.Join(fixtures, dir), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") || d.Name() == "MANIFEST.json" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		ct := readHeaders(f, strings.TrimSuffix(path, ".json")+".headers.txt").Get("Content-Type")
		add(b, ct)
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}
}

func fuzzSource(f *testing.F, dir, source string) {
	fuzzSeeds(f, dir, func(b []byte, _ string) { f.Add(b) })
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := Parse(Notification{Body: b, ReceivedAt: receivedAt}, source)
		checkEvents(t, source, b, evs, err)
	})
}

func FuzzParseTCR(f *testing.F)          { fuzzSource(f, "tencent-tcr", "tcr") }
func FuzzParseHarbor(f *testing.F)       { fuzzSource(f, "harbor", "harbor") }
func FuzzParseACR(f *testing.F)          { fuzzSource(f, "aliyun-acr", "acr") }
func FuzzParseDockerHub(f *testing.F)    { fuzzSource(f, "docker-hub", "dockerhub") }
func FuzzParseDistribution(f *testing.F) { fuzzSource(f, "distribution", "distribution") }

// FuzzDetect feeds every fixture body of the corpus (all registries, with
// its Content-Type) to detection and parsing: they must agree.
func FuzzDetect(f *testing.F) {
	fuzzSeeds(f, ".", func(b []byte, ct string) { f.Add(b, ct) })
	f.Add([]byte(`{"events":[]}`), DistributionEventsV2)
	f.Add([]byte(eventGridArray), "application/json")
	f.Add([]byte(`[{"a":1}]`), "")
	f.Fuzz(func(t *testing.T, b []byte, contentType string) {
		n := Notification{Body: b, Header: http.Header{}, ReceivedAt: receivedAt}
		if contentType != "" {
			n.Header.Set("Content-Type", contentType)
		}
		src, derr := Detect(n)
		if (derr == nil) == (src == "") {
			t.Fatalf("Detect = %q, %v", src, derr)
		}
		if derr != nil && !errors.Is(derr, ErrNotJSON) && !errors.Is(derr, ErrUnknownFormat) {
			t.Fatalf("Detect error of no known kind: %v", derr)
		}
		evs, err := Parse(n, "")
		checkEvents(t, src, b, evs, err)
		if derr != nil && !errors.Is(err, derr) && err.Error() != derr.Error() {
			t.Fatalf("Detect said %v, Parse said %v", derr, err)
		}
		if derr == nil && (errors.Is(err, ErrNotJSON) || errors.Is(err, ErrUnknownFormat)) {
			t.Fatalf("Detect found %s, Parse said %v", src, err)
		}
	})
}

// BenchmarkParse parses one fixture body of every format in the corpus
// (MANIFEST.json's "format"), with detection and no headers, as
// docs/benchmarks.md reports it. The first fourteen names are those of
// earlier runs; keep them, and their fixtures, so old numbers stay
// comparable. The Distribution event fragment is left out: it is not
// something a registry sends, and Parse refuses it.
func BenchmarkParse(b *testing.B) {
	for _, c := range []struct {
		source, file string
		// array wraps the body in a JSON array, as Event Grid delivers
		// events of its own schema (the corpus holds single events).
		array bool
	}{
		{source: "tcr", file: "tencent-tcr/pushImage.json"},
		{source: "harbor", file: "harbor/v2-default/push_artifact-v2.0-doc.json"},
		{source: "harbor-cloudevents", file: "harbor/v2-cloudevents/push_artifact.json"},
		{source: "acr", file: "aliyun-acr/push.json"},
		{source: "dockerhub", file: "docker-hub/push.json"},
		{source: "distribution", file: "distribution/push-envelope-real-keel.json"},
		{source: "quay", file: "quay/repo_push.json"},
		{source: "azure", file: "azure-acr/push.json"},
		{source: "azure-eventgrid", file: "azure-acr/eventgrid-ImagePushed-eventgridschema.json"},
		{source: "ecr", file: "aws-ecr/image-action-push.json"},
		{source: "ghcr", file: "ghcr/package-create-ghcr-real-keel.json"},
		{source: "jfrog", file: "jfrog-artifactory/docker-pushed.json"},
		{source: "nexus", file: "nexus/component-created-docker-real-fluxrecv.json"},
		{source: "gar", file: "google-artifact-registry/pubsub-push-envelope-gcr-real-fluxrecv.json"},
		// Added 2026-12-02: the remaining formats of the corpus.
		{source: "harbor-v1", file: "harbor/v1/pushImage-keel.json"},
		{source: "azure-eventgrid-array", file: "azure-acr/eventgrid-ImagePushed-eventgridschema.json", array: true},
		{source: "azure-eventgrid-cloudevents", file: "azure-acr/eventgrid-ImagePushed-cloudeventschema.json"},
		{source: "ghcr-registry_package", file: "ghcr/registry_package-published-real-keel-2019.json"},
		{source: "quay-legacy", file: "quay/repo_push-legacy-2013-gist.json"},
		{source: "gar-message", file: "google-artifact-registry/message-data-insert-digest-and-tag-gardoc.json"},
	} {
		body, err := os.ReadFile(filepath.Join(fixtures, c.file))
		if err != nil {
			b.Fatal(err)
		}
		if c.array {
			body = append(append([]byte("["), body...), ']')
		}
		n := Notification{Body: body, ReceivedAt: receivedAt}
		// A body that parses to nothing would measure the wrong path.
		if evs, err := Parse(n, ""); err != nil || len(evs) == 0 {
			b.Fatalf("%s: %d events, %v", c.file, len(evs), err)
		}
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
