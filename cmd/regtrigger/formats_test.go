package main

import (
	"encoding/json"
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
