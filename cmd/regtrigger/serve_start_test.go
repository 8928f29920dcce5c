package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// firstLogLine is serve's first log line, decoded.
func (s *server) firstLogLine(t *testing.T) map[string]any {
	t.Helper()
	line, _, _ := strings.Cut(s.logText(), "\n")
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("first log line %q: %v", line, err)
	}
	return m
}

// TestServeFirstLineNamesTheStore: serve's first log line names the store
// file, says a new one is kept between runs, and at a restart how many
// triggers it holds and how many queued tasks were recovered.
func TestServeFirstLineNamesTheStore(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "rt.db")
	tg := newTarget(t, 503)
	s := startServe(t, data, "--triggers", writeTriggers(t, dir, tg.srv.URL), "--retry-schedule", "1h")
	if m := s.firstLogLine(t); !strings.HasPrefix(m["msg"].(string), "store "+data+": a new Pebble directory (kept between runs") {
		t.Errorf("first line of a new store: %v", m)
	}
	if status, _ := s.post(t, "/v1/notify", "testdata/tcr-push.json", e2eToken); status != http.StatusAccepted {
		t.Fatal(status)
	}
	tg.wait(t, 1, 10*time.Second)
	s.waitLog(t, `"msg":"task rescheduled"`, 10*time.Second) // due in an hour
	s.kill()

	s2 := startServe(t, data, "--retry-schedule", "1h")
	m := s2.firstLogLine(t)
	if m["msg"] != "store "+data+": 3 triggers, 1 queued task recovered" || m["triggers"] != float64(3) || m["queued"] != float64(1) || m["next_due"] == nil {
		t.Errorf("first line after a restart: %v", m)
	}
	s2.stop(t)
}
