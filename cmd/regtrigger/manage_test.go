package main

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/trigger"
)

// cliFail runs the binary and expects it to fail with code and a message.
func cliFail(t *testing.T, code int, want string, args ...string) {
	t.Helper()
	out, err := exec.Command(binary, args...).CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != code || !strings.Contains(string(out), want) {
		t.Errorf("regtrigger %v: %v, output %q; want exit %d and %q", args, err, out, code, want)
	}
}

func TestTriggerManagement(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "rt.db")
	file := writeTriggers(t, dir, "http://hooks.example.com:8080")

	cliFail(t, 1, "no store directory", "triggers", "list", "--data", data)
	if out := cli(t, "triggers", "apply", "-f", file, "--data", data, "--dry-run"); !strings.Contains(out, "would be created") {
		t.Errorf("dry run: %s", out)
	}
	if out := cli(t, "triggers", "apply", "-f", file, "--data", data); strings.Count(out, "created") != 3 {
		t.Errorf("apply: %s", out)
	}
	if out := cli(t, "triggers", "apply", "-f", file, "--data", data); strings.Count(out, "unchanged") != 3 {
		t.Errorf("re-apply: %s", out)
	}

	list := cli(t, "triggers", "list", "--data", data)
	if !strings.Contains(list, "deploy-nginx") || strings.Contains(list, "querysecret") || !strings.Contains(list, "?<redacted>") {
		t.Errorf("list: %s", list)
	}
	get := cli(t, "triggers", "get", "deploy-nginx", "-o", "json", "--data", data)
	var tr trigger.Trigger
	if err := json.Unmarshal([]byte(get), &tr); err != nil || tr.Name != "deploy-nginx" {
		t.Fatalf("get: %v %s", err, get)
	}
	if strings.Contains(get, "headersecret") || strings.Contains(get, e2eSecret) || strings.Contains(get, "querysecret") {
		t.Errorf("get leaks a secret: %s", get)
	}
	cli(t, "triggers", "disable", "deploy-nginx", "--data", data)
	if out := cli(t, "triggers", "list", "-o", "json", "--data", data); !strings.Contains(out, `"name":"deploy-nginx","enabled":false`) {
		t.Errorf("after disable: %s", out)
	}
	cli(t, "triggers", "enable", "deploy-nginx", "--data", data)
	cli(t, "triggers", "delete", "wrong-tag", "--data", data)
	cliFail(t, 1, `no trigger named "wrong-tag"`, "triggers", "get", "wrong-tag", "--data", data)
	cliFail(t, 1, `no trigger named "nope"`, "triggers", "delete", "nope", "--data", data)

	// Prune removes what the file does not list.
	small := filepath.Join(dir, "small.yaml")
	os.WriteFile(small, []byte("triggers:\n  - name: only\n    actions: [pushImage]\n    namespace: x\n    url: https://example.com/\n"), 0o600)
	out := cli(t, "triggers", "apply", "-f", small, "--prune", "--data", data)
	if !strings.Contains(out, "only") || strings.Count(out, "deleted") != 2 {
		t.Errorf("prune: %s", out)
	}
	cliFail(t, 1, "problem(s)", "triggers", "apply", "-f", "../../internal/trigger/testdata/invalid.yaml", "--data", data)
	cliFail(t, 2, "--status", "logs", "--status", "bogus", "--data", data)
	cliFail(t, 2, "--output", "triggers", "list", "-o", "xml", "--data", data)
}

func TestLogsAndRedeliver(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "rt.db")
	tg := newTarget(t, 404, 200)
	s := startServe(t, data, "--triggers", writeTriggers(t, dir, tg.srv.URL))
	if status, _ := s.post(t, "/v1/notify", "testdata/tcr-push.json", e2eToken); status != http.StatusAccepted {
		t.Fatal(status)
	}
	tg.wait(t, 1, 10*time.Second)
	s.waitLog(t, `"msg":"task finished"`, 10*time.Second)

	// While serve holds the store, the CLI says so.
	cliFail(t, 1, "is held by another regtrigger process (pid ", "logs", "--data", data)
	s.stop(t)

	failed := records(t, data, "--status", "failed")
	if len(failed) != 1 || failed[0].HTTPStatus != 404 {
		t.Fatalf("failed: %+v", failed)
	}
	if out := cli(t, "logs", "--data", data, "--trigger", "deploy-nginx"); !strings.Contains(out, "failed") || !strings.Contains(out, "http_4xx") {
		t.Errorf("table: %s", out)
	}
	if recs := records(t, data, "--since", "1h", "--limit", "1"); len(recs) != 1 {
		t.Errorf("limit: %d", len(recs))
	}
	cli(t, "redeliver", failed[0].TaskID, "--data", data)
	cliFail(t, 1, "still queued", "redeliver", failed[0].TaskID, "--data", data)
	cliFail(t, 1, `no task with id "tsk_unknown" (untriggered events have no task`, "redeliver", "tsk_unknown", "--data", data)

	s2 := startServe(t, data)
	got := tg.wait(t, 2, 10*time.Second)
	if got[1].header.Get("webhook-id") != failed[0].TaskID {
		t.Errorf("redelivery has webhook-id %q", got[1].header.Get("webhook-id"))
	}
	s2.waitLog(t, `"status":"success"`, 10*time.Second)
	s2.stop(t)
}
