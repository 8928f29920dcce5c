package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// cliRun runs the CLI in-process.
func cliRun(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update after checking):\n%s", path, got)
	}
}

func TestInspect(t *testing.T) {
	for _, f := range []string{"tcr-push", "harbor-push", "distribution-push", "dockerhub-push", "acr-push"} {
		t.Run(f, func(t *testing.T) {
			code, out, errs := cliRun(t, "", "inspect", "../../events/bodies/"+f+".json")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatalf("not a JSON line: %q", line)
				}
				for _, k := range []string{"source", "action", "namespace", "repository", "tag", "digest", "resource_url", "occurred_at", "operator"} {
					if _, ok := m[k]; !ok {
						t.Errorf("missing key %q in %s", k, line)
					}
				}
				if len(m) != 9 {
					t.Errorf("extra keys in %s", line)
				}
			}
			golden(t, "inspect-"+f+".jsonl", out)
		})
	}
}

func TestInspectStdinAndForcedSource(t *testing.T) {
	body, _ := os.ReadFile("testdata/distribution-push.json")
	code, out, _ := cliRun(t, string(body), "inspect", "--source", "distribution", "-")
	if code != 0 || !strings.Contains(out, `"repository":"bar"`) {
		t.Fatalf("exit %d: %s", code, out)
	}
	// A recognised body with no events prints nothing and succeeds.
	code, out, _ = cliRun(t, `{"events":[]}`, "inspect", "-H", "Content-Type: application/vnd.docker.distribution.events.v2+json")
	if code != 0 || out != "" {
		t.Fatalf("exit %d: %q", code, out)
	}
}

func TestInspectErrors(t *testing.T) {
	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"not JSON", "<xml/>", []string{"inspect"}, 1, "not a JSON object"},
		{"unknown format", `{"a":1}`, []string{"inspect"}, 1, "matches no registry"},
		{"unknown source", `{}`, []string{"inspect", "--source", "gitea"}, 2, "not a registry format regtrigger knows"},
		{"missing file", "", []string{"inspect", "nope.json"}, 1, "no such file"},
		{"bad header flag", "{}", []string{"inspect", "-H", "nocolon"}, 2, "Name: value"},
		{"too many args", "", []string{"inspect", "a", "b"}, 2, "accepts at most 1 arg"},
		{"unknown command", "", []string{"frobnicate"}, 2, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := cliRun(t, tt.stdin, tt.args...)
			if code != tt.code || !strings.Contains(errs, tt.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errs, tt.code, tt.want)
			}
			if strings.Count(strings.TrimSpace(errs), "\n") != 0 {
				t.Errorf("the reason should be one line: %q", errs)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	code, out, errs := cliRun(t, "", "match", "-f", "../../examples/triggers.yaml", "../../events/bodies/tcr-push.json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	golden(t, "match-tcr-push.jsonl", out)
	var fired []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var l matchLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		if l.Fired {
			fired = append(fired, l.Trigger)
		}
	}
	if strings.Join(fired, ",") != "deploy-nginx" {
		t.Errorf("fired %v", fired)
	}
	code, out, _ = cliRun(t, "", "match", "-f", "../../examples/triggers.yaml", "--output", "text", "../../events/bodies/tcr-push.json")
	if code != 0 {
		t.Fatal(code)
	}
	golden(t, "match-tcr-push.txt", out)
}

func TestMatchInvalidTriggers(t *testing.T) {
	code, _, errs := cliRun(t, "", "match", "-f", "../../internal/trigger/testdata/invalid.yaml", "../../events/bodies/tcr-push.json")
	if code != 1 || !strings.Contains(errs, "23 problem(s)") || !strings.Contains(errs, "trigger Bad_Name") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if code, _, errs := cliRun(t, "", "match", "../../events/bodies/tcr-push.json"); code != 2 || !strings.Contains(errs, "required flag") {
		t.Errorf("missing -f: %d %s", code, errs)
	}
}

func TestSecret(t *testing.T) {
	code, out, _ := cliRun(t, "", "secret")
	if code != 0 || !strings.HasPrefix(out, "whsec_") {
		t.Fatalf("%d %q", code, out)
	}
}

func TestHelpEverywhere(t *testing.T) {
	for _, cmd := range [][]string{{}, {"inspect"}, {"match"}, {"check-url"}, {"serve"}, {"triggers"}, {"triggers", "apply"}, {"logs"}, {"redeliver"}, {"sink"}, {"secret"}} {
		code, out, _ := cliRun(t, "", append(cmd, "--help")...)
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("%v --help: exit %d", cmd, code)
		}
	}
}

// TestAllowPrivateRefusesEmbeddedForms: every command taking
// --allow-private refuses, as a usage error and before doing anything, an
// entry overlapping an IPv6 form that embeds IPv4 addresses.
func TestAllowPrivateRefusesEmbeddedForms(t *testing.T) {
	data := filepath.Join(t.TempDir(), "rt.db")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"serve", []string{"serve", "--data", data, "--allow-private", "::ffff:0:0/96"}, "overlaps the IPv4-mapped range (::ffff:0:0/96), which no allow-list opens; list the IPv4 range (e.g. 10.0.0.0/8) instead"},
		{"match", []string{"match", "-f", "../../examples/triggers.yaml", "--allow-private", "2002::/16", "../../events/bodies/tcr-push.json"}, "overlaps the 6to4 range"},
		{"triggers apply", []string{"triggers", "apply", "-f", "../../examples/triggers.yaml", "--data", data, "--allow-private", "::/8"}, "overlaps the IPv4-mapped range"},
		{"check-url", []string{"check-url", "--allow-private", "::ffff:10.0.0.0/104", "http://10.0.0.1/"}, "list the IPv4 range 10.0.0.0/8 instead"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := cliRun(t, "", tt.args...)
			if code != 2 || !strings.Contains(errs, "--allow-private") || !strings.Contains(errs, tt.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, errs, tt.want)
			}
		})
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("a store file was created: %v", err)
	}
}
