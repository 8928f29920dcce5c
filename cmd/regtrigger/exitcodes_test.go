package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/pebblestore"
	"github.com/regtrigger/regtrigger/internal/record"
)

// writeFile writes a file of the test and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const publicTriggers = `triggers:
  - name: deploy-nginx
    actions: [pushImage]
    namespace: public
    repository: nginx
    url: https://hooks.example.com/deploy
    headers:
      X-Deploy-Key: headersecret
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
`

// busyPort holds a port for the test and returns its address.
func busyPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// TestExitCodes runs each command in-process where it succeeds (0), where
// the work fails (1) and where the command line is wrong (2), the README's
// table. The cases run in order on one store file.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "rt.db")
	missing := filepath.Join(dir, "missing.db")
	good := writeFile(t, dir, "good.yaml", publicTriggers)
	invalid := "../../internal/trigger/testdata/invalid.yaml"
	body := "../../events/bodies/tcr-push.json"
	busy := busyPort(t)
	tests := []struct {
		name string
		args []string
		code int
		want string // in stdout or stderr
	}{
		{"bare regtrigger", nil, exitUsage, "regtrigger needs a command: one of"},
		{"version", []string{"--version"}, exitOK, "regtrigger version"},
		{"unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},

		{"inspect", []string{"inspect", body}, exitOK, `"action":"pushImage"`},
		{"inspect a body it cannot use", []string{"inspect", "../../go.mod"}, exitFail, "not a JSON object"},
		{"inspect --source bogus", []string{"inspect", "--source", "bogus", body}, exitUsage, `--source "bogus" is not a registry format regtrigger knows`},
		{"inspect -o xml", []string{"inspect", "-o", "xml", body}, exitUsage, `--output "xml": use table, json or yaml`},

		{"match", []string{"match", "-f", good, body}, exitOK, `"fired":true`},
		{"match invalid triggers", []string{"match", "-f", invalid, body}, exitFail, "problem(s)"},
		{"match without -f", []string{"match", body}, exitUsage, `required flag(s) "file" not set`},
		{"match --source bogus", []string{"match", "-f", good, "--source", "bogus", body}, exitUsage, "not a registry format"},

		{"check-url allowed", []string{"check-url", "--allow-private", "127.0.0.1/32", "http://127.0.0.1:1025/"}, exitOK, "verdict  allowed"},
		{"check-url refused", []string{"check-url", "http://127.0.0.1:1025/"}, exitFail, "loopback"},
		{"check-url without a URL", []string{"check-url"}, exitUsage, "accepts 1 arg(s)"},

		{"triggers list without a store", []string{"triggers", "list", "--data", missing}, exitFail, "no store directory"},
		{"triggers apply", []string{"triggers", "apply", "-f", good, "--data", data}, exitOK, "created"},
		{"triggers apply invalid", []string{"triggers", "apply", "-f", invalid, "--data", data}, exitFail, "invalid.yaml: 23 problem(s)"},
		{"triggers apply without -f", []string{"triggers", "apply", "--data", data}, exitUsage, `required flag(s) "file" not set`},
		{"triggers apply --store bogus", []string{"triggers", "apply", "-f", good, "--store", "bogus"}, exitUsage, "--store bogus: use bolt, pebble or dynamodb"},
		{"triggers list", []string{"triggers", "list", "--data", data}, exitOK, "deploy-nginx"},
		{"triggers list -o xml", []string{"triggers", "list", "-o", "xml", "--data", data}, exitUsage, "--output"},
		{"triggers get", []string{"triggers", "get", "deploy-nginx", "--data", data}, exitOK, "deploy-nginx"},
		{"triggers get unknown", []string{"triggers", "get", "nope", "--data", data}, exitFail, `no trigger named "nope"`},
		{"triggers get without a name", []string{"triggers", "get", "--data", data}, exitUsage, "accepts 1 arg(s)"},
		{"triggers disable", []string{"triggers", "disable", "deploy-nginx", "--data", data}, exitOK, "deploy-nginx disabled"},
		{"triggers enable", []string{"triggers", "enable", "deploy-nginx", "--data", data}, exitOK, "deploy-nginx enabled"},
		{"triggers enable unknown", []string{"triggers", "enable", "nope", "--data", data}, exitFail, `no trigger named "nope"`},
		{"triggers disable without a name", []string{"triggers", "disable", "--data", data}, exitUsage, "accepts 1 arg(s)"},
		{"triggers without a command", []string{"triggers"}, exitUsage, "regtrigger triggers needs a command: one of apply"},
		{"triggers unknown command", []string{"triggers", "frob"}, exitUsage, `unknown command "frob" for "regtrigger triggers"`},

		{"tasks list", []string{"tasks", "list", "--data", data}, exitOK, "TASK"},
		{"tasks list -o xml", []string{"tasks", "list", "-o", "xml", "--data", data}, exitUsage, "--output"},
		{"tasks cancel unknown trigger", []string{"tasks", "cancel", "--trigger", "nope", "--data", data}, exitFail, `no trigger named "nope"`},
		{"tasks cancel without --trigger", []string{"tasks", "cancel", "--data", data}, exitUsage, `required flag(s) "trigger" not set`},
		{"tasks without a command", []string{"tasks"}, exitUsage, "regtrigger tasks needs a command"},

		{"logs", []string{"logs", "--data", data}, exitOK, "TIME"},
		{"logs without a store", []string{"logs", "--data", missing}, exitFail, "no store directory"},
		{"logs --status bogus", []string{"logs", "--status", "bogus", "--data", data}, exitUsage, `--status "bogus"`},
		{"logs --since bogus", []string{"logs", "--since", "bogus", "--data", data}, exitUsage, `invalid argument "bogus" for "--since"`},

		{"redeliver unknown task", []string{"redeliver", "tsk_0123", "--data", data}, exitFail, `no task with id "tsk_0123" (untriggered events have no task`},
		{"redeliver without an id", []string{"redeliver", "--data", data}, exitUsage, "accepts 1 arg(s)"},

		{"serve on a port in use", []string{"serve", "--addr", busy, "--data", filepath.Join(dir, "serve.db")}, exitFail, "is already in use"},
		{"serve --log-format bogus", []string{"serve", "--log-format", "bogus", "--data", data}, exitUsage, `--log-format "bogus": use text or json`},
		{"serve --addr without a port", []string{"serve", "--addr", "localhost", "--data", filepath.Join(dir, "serve.db")}, exitUsage, `--addr "localhost": want HOST:PORT`},

		{"sink on a port in use", []string{"sink", "--addr", busy}, exitFail, "is already in use"},
		{"sink --status 42", []string{"sink", "--status", "42"}, exitUsage, "--status 42: use an HTTP status from 100 to 599"},
		{"sink --secret bogus", []string{"sink", "--secret", "bogus"}, exitUsage, "--secret"},

		{"secret", []string{"secret"}, exitOK, "whsec_"},
		{"completion bash", []string{"completion", "bash"}, exitOK, "bash completion"},
		{"completion without a shell", []string{"completion"}, exitUsage, "needs a command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := cliRun(t, "", tt.args...)
			if code != tt.code || !strings.Contains(out+errs, tt.want) {
				t.Fatalf("regtrigger %s: exit %d, want %d and %q\nstdout %q\nstderr %q", strings.Join(tt.args, " "), code, tt.code, tt.want, out, errs)
			}
			if code != exitOK && !strings.HasPrefix(errs, "regtrigger: ") && !strings.Contains(errs, "\nregtrigger: ") {
				t.Errorf("a failure should say why on standard error: %q", errs)
			}
		})
	}
}

// TestServeBindsBeforeApplying: a serve that cannot bind its port leaves
// the store's triggers as they were.
func TestServeBindsBeforeApplying(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "rt.db")
	file := writeFile(t, dir, "t.yaml", publicTriggers)
	addr := busyPort(t)
	_, port, _ := net.SplitHostPort(addr)
	code, _, errs := cliRun(t, "", "serve", "--addr", addr, "--data", data, "--triggers", file)
	if code != exitFail || !strings.Contains(errs, "port "+port+" is already in use") || !strings.Contains(errs, "pick a free port with --addr 127.0.0.1:PORT") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if code, out, errs := cliRun(t, "", "triggers", "list", "-o", "json", "--data", data); code != exitOK || out != "" {
		t.Errorf("after a serve that did not start, the store holds: exit %d %q %q", code, out, errs)
	}
}

// TestLockedStoreNamesTheHolder: the store file is held (here by this
// process, as serve would hold it); serve and the management commands say
// so, with the holder's pid where the system tells it.
func TestLockedStoreNamesTheHolder(t *testing.T) {
	data := filepath.Join(t.TempDir(), "rt.db")
	s, err := pebblestore.Open(data, pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	who := "held by another regtrigger process"
	if pid, ok := pebblestore.LockHolder(data); ok {
		who += fmt.Sprintf(" (pid %d: ", pid)
	}
	tests := []struct {
		name string
		args []string
		hint string
	}{
		{"serve", []string{"serve", "--addr", "127.0.0.1:0", "--data", data}, "stop it, or give this serve another --data directory"},
		{"logs", []string{"logs", "--data", data}, "stop serve first, or apply triggers at start with serve --triggers FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := cliRun(t, "", tt.args...)
			if code != exitFail || !strings.Contains(errs, "store "+data+" is "+who) || !strings.Contains(errs, tt.hint) {
				t.Fatalf("exit %d: %s", code, errs)
			}
		})
	}
}

// TestApplyWithServesAllowList: after serve stored triggers that deliver
// to loopback (allowed by its --allow-private), apply of another file
// validates them under its own --allow-private: without it the error names
// the stored trigger, where it is stored, and what to pass.
func TestApplyWithServesAllowList(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "rt.db")
	local := writeFile(t, dir, "local.yaml", "triggers:\n  - name: local-sink\n    actions: [pushImage]\n    namespace: public\n    url: http://127.0.0.1:9000/tcr\n")
	other := writeFile(t, dir, "other.yaml", publicTriggers)
	if code, _, errs := cliRun(t, "", "triggers", "apply", "-f", local, "--allow-private", "127.0.0.1/32", "--data", data); code != exitOK {
		t.Fatalf("apply with the allow-list: exit %d: %s", code, errs)
	}
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"without the allow-list", []string{"--dry-run"}, exitFail, []string{
			"stored trigger local-sink (in " + data + ", not in the file): url:",
			"allow it with --allow-private 127.0.0.1/32",
			"checked too, with this command's --allow-private",
		}},
		{"with serve's allow-list", []string{"--dry-run", "--allow-private", "127.0.0.1/32"}, exitOK, []string{"deploy-nginx  would be created"}},
		{"with --prune the stored one goes", []string{"--dry-run", "--prune"}, exitOK, []string{"local-sink    would be deleted"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := cliRun(t, "", append([]string{"triggers", "apply", "-f", other, "--data", data}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s%s", code, tt.code, out, errs)
			}
			for _, w := range tt.want {
				if !strings.Contains(out+errs, w) {
					t.Errorf("output lacks %q:\n%s%s", w, out, errs)
				}
			}
			if strings.Contains(errs, "other.yaml:") {
				t.Errorf("the file is blamed for a stored trigger: %s", errs)
			}
		})
	}
}

// TestOutputFormats: every command that prints objects takes -o table,
// json and yaml; json and yaml hold the same fields; none shows a secret.
func TestOutputFormats(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "rt.db")
	file := writeFile(t, dir, "t.yaml", publicTriggers)
	if code, _, errs := cliRun(t, "", "triggers", "apply", "-f", file, "--data", data); code != exitOK {
		t.Fatal(errs)
	}
	putRecord(t, data, record.UntriggeredRecord("tsk_untriggered", "deploy-nginx", event.Event{Action: event.PushImage, Namespace: "public", Repository: "nginx", Tag: "v1"}, "tag not matched", time.Now()))
	body := "../../events/bodies/tcr-push.json"
	tests := []struct {
		name  string
		args  []string
		table string // in the table
		key   string // a field of the JSON and YAML objects
	}{
		{"inspect", []string{"inspect", body}, "SOURCE  ACTION", "resource_url"},
		{"match", []string{"match", "-f", file, body}, "ACTION     REPOSITORY", "fired"},
		{"triggers list", []string{"triggers", "list", "--data", data}, "NAME          ENABLED", "namespace"},
		{"triggers get", []string{"triggers", "get", "deploy-nginx", "--data", data}, "X-Deploy-Key: <redacted>", "headers"},
		{"triggers apply", []string{"triggers", "apply", "-f", file, "--dry-run", "--data", data}, "deploy-nginx  unchanged", "change"},
		{"logs", []string{"logs", "--data", data}, "untriggered", "reason"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outputs := map[string]string{}
			for _, o := range []string{outTable, outJSON, outYAML} {
				code, out, errs := cliRun(t, "", append(tt.args, "-o", o)...)
				if code != exitOK {
					t.Fatalf("-o %s: exit %d: %s", o, code, errs)
				}
				for _, secret := range []string{"headersecret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"} {
					if strings.Contains(out, secret) {
						t.Errorf("-o %s shows a secret: %s", o, out)
					}
				}
				outputs[o] = out
			}
			if !strings.Contains(outputs[outTable], tt.table) {
				t.Errorf("table lacks %q:\n%s", tt.table, outputs[outTable])
			}
			var fromJSON, fromYAML []map[string]any
			for _, line := range strings.Split(strings.TrimSpace(outputs[outJSON]), "\n") {
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatalf("json line %q: %v", line, err)
				}
				fromJSON = append(fromJSON, m)
			}
			dec := yaml.NewDecoder(strings.NewReader(outputs[outYAML]))
			for {
				var m map[string]any
				if err := dec.Decode(&m); err != nil {
					break
				}
				fromYAML = append(fromYAML, m)
			}
			if len(fromJSON) == 0 || len(fromJSON) != len(fromYAML) {
				t.Fatalf("%d JSON objects, %d YAML documents:\n%s", len(fromJSON), len(fromYAML), outputs[outYAML])
			}
			for i := range fromJSON {
				if _, ok := fromJSON[i][tt.key]; !ok {
					t.Errorf("JSON object lacks %q: %v", tt.key, fromJSON[i])
				}
				if fmt.Sprint(keys(fromJSON[i])) != fmt.Sprint(keys(fromYAML[i])) {
					t.Errorf("JSON fields %v, YAML fields %v", keys(fromJSON[i]), keys(fromYAML[i]))
				}
			}
		})
	}
}

// TestRedeliverUntriggered: the id of an untriggered record names no task.
func TestRedeliverUntriggered(t *testing.T) {
	data := filepath.Join(t.TempDir(), "rt.db")
	putRecord(t, data, record.UntriggeredRecord("tsk_0123456789abcdef0123456789abcdef", "deploy-nginx", event.Event{Action: event.PushImage, Namespace: "public", Repository: "nginx", Tag: "v1"}, "tag not matched", time.Now()))
	code, _, errs := cliRun(t, "", "redeliver", "tsk_0123456789abcdef0123456789abcdef", "--data", data)
	if code != exitFail || !strings.Contains(errs, `no task with id "tsk_0123456789abcdef0123456789abcdef" (untriggered events have no task`) {
		t.Fatalf("exit %d: %s", code, errs)
	}
}

// putRecord writes a log record into the store file.
func putRecord(t *testing.T, data string, r record.Record) {
	t.Helper()
	s, err := pebblestore.Open(data, pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Records().Put(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
