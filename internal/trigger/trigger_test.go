package trigger

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/payload"
)

var update = flag.Bool("update", false, "rewrite golden files")

func env(vars map[string]string) LoadOptions {
	return LoadOptions{LookupEnv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }}
}

func TestParseValid(t *testing.T) {
	ts, err := ReadFile("testdata/valid.yaml", env(map[string]string{"DEPLOY_TOKEN": "s3cr3t"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 3 {
		t.Fatalf("got %d triggers, want 3", len(ts))
	}
	nginx, charts, audit := ts[0], ts[1], ts[2]
	if !nginx.Enabled || nginx.Deadline() != 5*time.Second || nginx.Format != payload.TCR {
		t.Errorf("deploy-nginx: %+v", nginx)
	}
	if got := nginx.URL; got != "https://deploy.example.com/hooks/nginx?token=s3cr3t" {
		t.Errorf("url not expanded: %q", got)
	}
	if nginx.Headers["Authorization"] != "Bearer s3cr3t" {
		t.Errorf("header not expanded")
	}
	if charts.Enabled || charts.Tag != "v1;v2;stable" || len(charts.Secrets) != 2 || !charts.Selects(event.DeleteChart) || charts.Selects(event.PushImage) {
		t.Errorf("team-charts: %+v", charts)
	}
	if audit.Format != payload.Default || audit.Deadline() != DefaultTimeout || audit.Repository != "" {
		t.Errorf("audit.all_pulls defaults: %+v", audit)
	}
}

// TestParseInvalid checks that one file with many mistakes reports every one
// of them, each with its trigger's name and line.
func TestParseInvalid(t *testing.T) {
	_, err := ReadFile("testdata/invalid.yaml", env(nil))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("want a validation error, got %v", err)
	}
	got := err.Error()
	golden := filepath.Join("testdata", "invalid.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got+"\n" != string(want) {
		t.Errorf("problems differ from %s (run with -update to refresh):\n%s", golden, got)
	}
	for _, secret := range []string{"s3cretpw", "Set-Cookie", "not-a-secret", "evil.example.com"} {
		if strings.Contains(got, secret) {
			t.Errorf("problem list leaks %q", secret)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"empty", "", "is empty"},
		{"not yaml", "triggers: [", "not valid YAML"},
		{"not a mapping", "- a\n- b\n", "is a mapping"},
		{"no triggers key", "other: 1\n", "no \"triggers:\" list"},
		{"triggers not a list", "triggers: {a: 1}\n", "must be a list"},
		{"item not a mapping", "triggers:\n  - just-a-string\n", "a trigger is a mapping"},
		{"bad env reference", "triggers:\n  - name: a\n    actions: [pushImage]\n    namespace: n\n    url: http://example.com/${1BAD}\n", "not a valid environment variable"},
		{"tag list item with separator", "triggers:\n  - name: a\n    actions: [pushImage]\n    namespace: n\n    url: http://example.com/\n    tag: [a;b, c]\n", "contains ';'"},
		{"nested list in actions", "triggers:\n  - name: a\n    actions: [[pushImage]]\n    namespace: n\n    url: http://example.com/\n", "expected a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.yaml), env(nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestFileTooLarge(t *testing.T) {
	big := "triggers: []\n#" + strings.Repeat("x", MaxFileSize)
	if _, err := Parse(strings.NewReader(big), env(nil)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("got %v", err)
	}
}

func valid() Trigger {
	return Trigger{Name: "ok", Enabled: true, Actions: []event.Action{event.PushImage}, Namespace: "public", URL: "https://example.com/hook", Format: payload.TCR}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Trigger)
		field  string // "" = valid
	}{
		{"valid", func(*Trigger) {}, ""},
		{"name with dots and underscores", func(t *Trigger) { t.Name = "a.b_c-1" }, ""},
		{"name starting with digit", func(t *Trigger) { t.Name = "1st" }, ""},
		{"name uppercase", func(t *Trigger) { t.Name = "Deploy" }, "name"},
		{"name starting with dash", func(t *Trigger) { t.Name = "-x" }, "name"},
		{"name too long", func(t *Trigger) { t.Name = strings.Repeat("a", 65) }, "name"},
		{"name missing", func(t *Trigger) { t.Name = "" }, "name"},
		{"no actions", func(t *Trigger) { t.Actions = nil }, "actions"},
		{"duplicate action", func(t *Trigger) { t.Actions = []event.Action{event.PushImage, event.PushImage} }, "actions"},
		{"unknown action", func(t *Trigger) { t.Actions = []event.Action{"scanImage"} }, "actions"},
		{"namespace missing", func(t *Trigger) { t.Namespace = "" }, "namespace"},
		{"namespace with slash", func(t *Trigger) { t.Namespace = "a/b" }, "namespace"},
		{"repository bad", func(t *Trigger) { t.Repository = "a[0]" }, "repository"},
		{"tag list of 10", func(t *Trigger) { t.Tag = "1;2;3;4;5;6;7;8;9;10" }, ""},
		{"tag list of 11", func(t *Trigger) { t.Tag = "1;2;3;4;5;6;7;8;9;10;11" }, "tag"},
		{"tag regex bad", func(t *Trigger) { t.Tag = "regex:a(" }, "tag"},
		{"url missing", func(t *Trigger) { t.URL = "" }, "url"},
		{"url too long", func(t *Trigger) { t.URL = "https://example.com/" + strings.Repeat("a", MaxURLLength) }, "url"},
		{"url http port 8080", func(t *Trigger) { t.URL = "http://example.com:8080/" }, ""},
		{"url http port 1024", func(t *Trigger) { t.URL = "http://example.com:1024/" }, "url"},
		{"url http port 22", func(t *Trigger) { t.URL = "http://example.com:22/" }, "url"},
		{"url https port 8443", func(t *Trigger) { t.URL = "https://example.com:8443/" }, "url"},
		{"url userinfo", func(t *Trigger) { t.URL = "https://u:p@example.com/" }, "url"},
		{"url scheme", func(t *Trigger) { t.URL = "gopher://example.com/" }, "url"},
		{"url loopback literal", func(t *Trigger) { t.URL = "http://127.0.0.1/" }, "url"},
		{"url metadata literal", func(t *Trigger) { t.URL = "http://169.254.169.254/latest" }, "url"},
		{"url localhost", func(t *Trigger) { t.URL = "http://localhost:8080/" }, "url"},
		{"header ok", func(t *Trigger) { t.Headers = map[string]string{"X-Token": "abc"} }, ""},
		{"header reserved host", func(t *Trigger) { t.Headers = map[string]string{"host": "x"} }, "headers"},
		{"header reserved signature", func(t *Trigger) { t.Headers = map[string]string{"Webhook-Signature": "x"} }, "headers"},
		{"header content-type", func(t *Trigger) { t.Headers = map[string]string{"Content-Type": "text/plain"} }, "headers"},
		{"header bad name", func(t *Trigger) { t.Headers = map[string]string{"X Token": "x"} }, "headers"},
		{"header CRLF", func(t *Trigger) { t.Headers = map[string]string{"X-A": "a\r\nb"} }, "headers"},
		{"header NUL", func(t *Trigger) { t.Headers = map[string]string{"X-A": "a\x00b"} }, "headers"},
		{"header same name twice", func(t *Trigger) { t.Headers = map[string]string{"X-A": "1", "x-a": "2"} }, "headers"},
		{"format unknown", func(t *Trigger) { t.Format = "msteams" }, "format"},
		{"format each known", func(t *Trigger) { t.Format = payload.CloudEvents }, ""},
		{"secret bad", func(t *Trigger) { t.Secrets = []string{"plain"} }, "secret"},
		{"slack without a secret", func(t *Trigger) { t.Format = payload.Slack }, ""},
		{"semver range", func(t *Trigger) { t.Tag = "semver:>=1.4 <2" }, ""},
		{"semver range invalid", func(t *Trigger) { t.Tag = "semver:>=1.x.y" }, "tag"},
		{"exclude-tags globs", func(t *Trigger) { t.ExcludeTags = []string{"*-rc*", "sha-*"} }, ""},
		{"exclude-tags empty glob", func(t *Trigger) { t.ExcludeTags = []string{" "} }, "exclude-tags"},
		{"exclude-tags regex", func(t *Trigger) { t.ExcludeTags = []string{"regex:.*"} }, "exclude-tags"},
		{"exclude-tags bad glob", func(t *Trigger) { t.ExcludeTags = []string{"a[b"} }, "exclude-tags"},
		{"exclude-tags too many", func(t *Trigger) {
			t.ExcludeTags = strings.Split("a,b,c,d,e,f,g,h,i,j,k", ",")
		}, "exclude-tags"},
		{"slack with a secret", func(t *Trigger) {
			t.Format, t.Secrets = payload.Slack, []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
		}, "secret"},
		{"dingtalk with its SEC secret", func(t *Trigger) {
			t.Format, t.Secrets = payload.DingTalk, []string{"SEC0123456789abcdefghijklmnop"}
		}, ""},
		{"dingtalk with a whsec secret", func(t *Trigger) {
			t.Format, t.Secrets = payload.DingTalk, []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
		}, "secret"},
		{"feishu with a secret", func(t *Trigger) { t.Format, t.Secrets = payload.Feishu, []string{"feishu-secret-0123"} }, ""},
		{"flux needs the token", func(t *Trigger) { t.Format = payload.Flux }, "secret"},
		{"flux with its token", func(t *Trigger) { t.Format, t.Secrets = payload.Flux, []string{"flux-token-0123"} }, ""},
		{"dockerhub for pushes", func(t *Trigger) { t.Format = payload.DockerHub }, ""},
		{"dockerhub for deletes", func(t *Trigger) {
			t.Format, t.Actions = payload.DockerHub, []event.Action{event.PushImage, event.DeleteImage}
		}, "actions"},
		{"template", func(t *Trigger) { t.Format, t.Template = payload.Template, `{"image": {{quote .Name}}}` }, ""},
		{"template not JSON", func(t *Trigger) { t.Format, t.Template = payload.Template, `{"image": {{.Name}}}` }, "template"},
		{"template without text", func(t *Trigger) { t.Format = payload.Template }, "template"},
		{"template text with another format", func(t *Trigger) { t.Template = `{}` }, "template"},
		{"three secrets", func(t *Trigger) {
			s := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
			t.Secrets = []string{s, s, s}
		}, "secret"},
		{"timeout 30s", func(t *Trigger) { t.Timeout = Duration(30 * time.Second) }, ""},
		{"timeout 31s", func(t *Trigger) { t.Timeout = Duration(31 * time.Second) }, "timeout"},
		{"timeout negative", func(t *Trigger) { t.Timeout = -1 }, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := valid()
			tt.modify(&tr)
			ps := Validate(&tr)
			if tt.field == "" {
				if len(ps) > 0 {
					t.Fatalf("want valid, got %v", ps)
				}
				return
			}
			if len(ps) != 1 || ps[0].Field != tt.field {
				t.Fatalf("want one problem in %q, got %v", tt.field, ps)
			}
		})
	}
}

func TestValidateSetLimits(t *testing.T) {
	var ts []Trigger
	for i := 0; i < MaxPerPattern; i++ {
		tr := valid()
		tr.Name = "t" + string(rune('a'+i))
		tr.Repository = "/app/**"
		ts = append(ts, tr)
	}
	if err := ValidateSet(ts); err != nil {
		t.Fatalf("%d triggers on one pattern should be fine: %v", MaxPerPattern, err)
	}
	extra := valid()
	extra.Name = "eleventh"
	extra.Repository = "app/**" // the leading slash is optional: same pattern
	err := ValidateSet(append(ts, extra))
	if err == nil || !strings.Contains(err.Error(), "more than 10 triggers") {
		t.Fatalf("want per-pattern limit error, got %v", err)
	}
	other := valid()
	other.Name = "other-namespace"
	other.Namespace = "private"
	other.Repository = "app/**"
	if err := ValidateSet(append(ts, other)); err != nil {
		t.Fatalf("another namespace does not count: %v", err)
	}
	dup := valid()
	dup.Name = ts[0].Name
	dup.Namespace = "elsewhere"
	if err := ValidateSet(append(ts, dup)); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("want duplicate name error, got %v", err)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	tr := valid()
	tr.Timeout = Duration(5 * time.Second)
	tr.Secrets = []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
	b, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"timeout":"5s"`) {
		t.Errorf("timeout not a duration string: %s", b)
	}
	var back Trigger
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Deadline() != 5*time.Second || back.Name != tr.Name {
		t.Errorf("round trip lost data: %+v", back)
	}
}

func TestRedacted(t *testing.T) {
	tr := valid()
	tr.Headers = map[string]string{"Authorization": "Bearer secret"}
	tr.Secrets = []string{"whsec_abc"}
	r := tr.Redacted()
	b, _ := json.Marshal(r)
	if strings.Contains(string(b), "secret") && strings.Contains(string(b), "Bearer") || strings.Contains(string(b), "whsec_abc") {
		t.Errorf("redacted trigger leaks: %s", b)
	}
	if tr.Headers["Authorization"] != "Bearer secret" {
		t.Error("Redacted modified the original")
	}
}

// FuzzParse checks that no trigger file makes Parse panic, and that a file
// it accepts holds only valid triggers.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/valid.yaml", "testdata/invalid.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("triggers: []"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := Parse(strings.NewReader(string(b)), env(map[string]string{"DEPLOY_TOKEN": "x"}))
		if err != nil {
			return
		}
		if err := ValidateSet(ts); err != nil {
			t.Fatalf("Parse accepted triggers that ValidateSet refuses: %v", err)
		}
	})
}

func TestReadFileWarnsOfCredentialsOthersMayRead(t *testing.T) {
	const body = `triggers:
  - name: clear
    actions: [pushImage]
    namespace: public
    url: https://hooks.example.com/x?token=abc
    headers: {Authorization: Bearer abc}
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
  - name: from-env
    actions: [pushImage]
    namespace: public
    url: https://hooks.example.com/x?token=${TOKEN}
    headers: {Authorization: "Bearer ${TOKEN}"}
`
	env := func(string) (string, bool) { return "v", true }
	tests := []struct {
		name string
		mode os.FileMode
		body string
		want string // in the warning; "" for none
	}{
		{name: "others may read, credentials in clear", mode: 0o644, body: body, want: "mode -rw-r--r--) and holds credentials in clear (clear url query, clear headers, clear secret)"},
		{name: "the group may read", mode: 0o640, body: body, want: "clear secret"},
		{name: "owner only", mode: 0o600, body: body},
		{name: "others may read, credentials from the environment", mode: 0o644, body: "triggers:\n  - name: from-env" + strings.SplitN(body, "  - name: from-env", 2)[1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "triggers.yaml")
			if err := os.WriteFile(p, []byte(tt.body), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tt.mode); err != nil { // whatever the umask
				t.Fatal(err)
			}
			var warnings []string
			if _, err := ReadFile(p, LoadOptions{LookupEnv: env, Warn: func(m string) { warnings = append(warnings, m) }}); err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.want == "" && len(warnings) > 0:
				t.Errorf("warned: %v", warnings)
			case tt.want != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], tt.want) || !strings.Contains(warnings[0], "chmod 600 "+p)):
				t.Errorf("warnings %q, want one with %q", warnings, tt.want)
			}
			for _, w := range warnings {
				if strings.Contains(w, "abc") || strings.Contains(w, "whsec_") {
					t.Errorf("the warning quotes a credential: %s", w)
				}
			}
		})
	}
}
