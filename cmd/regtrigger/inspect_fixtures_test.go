package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// registryFixtures is the corpus of real registry bodies internal/registry
// tests against.
const registryFixtures = "../../internal/registry/testdata/registry-payloads"

// fixtureHeaders turns a corpus .headers.txt file into -H flags: every
// "Name: value" line with a valid header name, comments removed.
func fixtureHeaders(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var args []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || k == "" || strings.ContainsAny(k, " <>()|,/") {
			continue
		}
		args = append(args, "-H", k+": "+strings.TrimSpace(v))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return args
}

// TestInspectFixtures runs `regtrigger inspect` on every body of the corpus
// (with its headers): each must succeed and print one JSON line per event,
// as many as internal/registry's golden events for it, and nothing for a
// body that holds none. The Distribution fragment is not something a
// registry sends and must be refused.
func TestInspectFixtures(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(registryFixtures, "MANIFEST.json"))
	if err != nil {
		t.Fatal(err)
	}
	var manifest []struct {
		File        string  `json:"file"`
		Format      string  `json:"format"`
		HeadersFile *string `json:"headers_file"`
	}
	if err := json.Unmarshal(raw, &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest) == 0 {
		t.Fatal("empty MANIFEST.json")
	}
	for _, e := range manifest {
		t.Run(e.File, func(t *testing.T) {
			args := []string{"inspect"}
			if e.HeadersFile != nil {
				args = append(args, fixtureHeaders(t, filepath.Join(registryFixtures, *e.HeadersFile))...)
			}
			args = append(args, filepath.Join(registryFixtures, e.File))
			code, out, errs := cliRun(t, "", args...)
			if e.Format == "distribution-event-fragment" {
				if code != 1 || !strings.Contains(errs, "matches no registry format") {
					t.Fatalf("exit %d, stderr %q; want the fragment refused", code, errs)
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			var lines []string
			if out != "" {
				if !strings.HasSuffix(out, "\n") {
					t.Fatalf("output does not end in a newline: %q", out)
				}
				lines = strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			}
			for _, line := range lines {
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatalf("not a JSON line: %q", line)
				}
				for _, k := range []string{"source", "action", "namespace", "repository", "tag", "digest", "resource_url", "occurred_at", "operator"} {
					if _, ok := m[k]; !ok {
						t.Errorf("missing key %q in %s", k, line)
					}
				}
				if m["source"] == "" || m["namespace"] == "" || m["repository"] == "" {
					t.Errorf("empty source, namespace or repository: %s", line)
				}
			}
			// The number of lines is the number of events the registry
			// package's golden file holds for this body.
			golden, err := os.ReadFile(filepath.Join("../../internal/registry/testdata/golden", strings.TrimSuffix(e.File, ".json")+".events.json"))
			if err != nil {
				t.Fatal(err)
			}
			var want []json.RawMessage
			if err := json.Unmarshal(golden, &want); err != nil {
				t.Fatal(err)
			}
			if len(lines) != len(want) {
				t.Errorf("%d lines, want %d (the golden events):\n%s", len(lines), len(want), out)
			}
		})
	}
}
