package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regtrigger/regtrigger/internal/payload"
)

// TestExampleFormatFiles: the example trigger files of every format are
// accepted by triggers apply, and match --render shows what each sends.
func TestExampleFormatFiles(t *testing.T) {
	t.Setenv("FLUX_RECEIVER_TOKEN", "flux-token-0123")
	data := filepath.Join(t.TempDir(), "rt.db")
	for _, f := range []string{"../../examples/chat-triggers.yaml", "../../examples/gitops-triggers.yaml"} {
		if code, out, errs := cliRun(t, "", "triggers", "apply", "-f", f, "--data", data); code != 0 || strings.Count(out, "created") < 3 {
			t.Fatalf("apply %s: exit %d\n%s%s", f, code, out, errs)
		}
	}

	code, out, errs := cliRun(t, "", "match", "-f", "../../examples/chat-triggers.yaml", "--render", "../../events/bodies/tcr-push.json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	seen := map[payload.Format]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var l matchLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		if !l.Fired || l.Request == nil || l.Request.Error != "" || !json.Valid(l.Request.Body) || l.Request.ContentType != payload.ContentTypeJSON {
			t.Errorf("%s: %+v", l.Trigger, l.Request)
			continue
		}
		seen[l.Request.Format] = true
		if !strings.Contains(string(l.Request.Body), "nginx") {
			t.Errorf("%s: the message does not name the repository: %s", l.Trigger, l.Request.Body)
		}
		if strings.Contains(string(l.Request.Body), "feishu-signing-secret") {
			t.Errorf("%s: the body holds the secret", l.Trigger)
		}
	}
	for _, f := range []payload.Format{payload.Slack, payload.Teams, payload.WeCom, payload.DingTalk, payload.Feishu, payload.Template} {
		if !seen[f] {
			t.Errorf("no %s request rendered", f)
		}
	}

	code, out, _ = cliRun(t, "", "match", "-f", "../../examples/chat-triggers.yaml", "--render", "-o", "text", "../../events/bodies/tcr-push.json")
	if code != 0 || !strings.Contains(out, "== wecom-releases public/nginx:v1.10.0 -> wecom (application/json)") || !strings.Contains(out, `"msgtype": "markdown"`) {
		t.Errorf("text render: %s", out)
	}
	// Without --render nothing is rendered.
	if _, out, _ = cliRun(t, "", "match", "-f", "../../examples/chat-triggers.yaml", "../../events/bodies/tcr-push.json"); strings.Contains(out, `"request"`) {
		t.Errorf("rendered without --render: %s", out)
	}
}

// TestMatchExplainsVersionFilters: a semver filter and exclusions, read
// from a file, explained by match like every other miss.
func TestMatchExplainsVersionFilters(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "t.yaml")
	body := `triggers:
  - name: v1-line
    actions: [pushImage]
    namespace: public
    tag: "semver:>=1.4 <2"
    url: https://example.com/a
  - name: v2-line
    actions: [pushImage]
    namespace: public
    tag: "semver:^2"
    url: https://example.com/b
  - name: no-v1-10
    actions: [pushImage]
    namespace: public
    exclude-tags: ["v1.10.*", "sha-*"]
    url: https://example.com/c
`
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := cliRun(t, "", "match", "-f", file, "-o", "text", "../../events/bodies/tcr-push.json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"v1-line   true   fired",
		`tag "v1.10.0" is outside the range "^2"`,
		`tag "v1.10.0" is excluded by "v1.10.*"`,
	} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("triggers:\n  - name: x\n    actions: [pushImage]\n    namespace: public\n    tag: \"semver:>=1.x.y\"\n    url: https://example.com/\n"), 0o600)
	if code, _, errs := cliRun(t, "", "match", "-f", bad, "../../events/bodies/tcr-push.json"); code != 1 || !strings.Contains(errs, "trigger x (line 2): tag: invalid pattern") {
		t.Errorf("exit %d: %s", code, errs)
	}
}
