package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/pebblestore"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// An auto-disabled trigger shows why in `triggers get`, `triggers enable`
// clears it, and `logs` shows the records the delivery policies write.
func TestPolicyVisibility(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "rt.db")
	cli(t, "triggers", "apply", "-f", writeTriggers(t, dir, "http://hooks.example.com:8080"), "--data", data)

	const why = "auto-disabled: every delivery failed since 2026-03-01T00:00:00Z (120h0m0s, auto-disable-after 120h0m0s); the last: HTTP 503"
	s, err := pebblestore.Open(data, pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tr, err := s.Triggers().Get(ctx, "deploy-nginx")
	if err != nil {
		t.Fatal(err)
	}
	tr.Enabled, tr.DisabledReason, tr.DisabledAt = false, why, time.Now().UTC()
	if _, err := s.Triggers().Update(ctx, tr); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for _, r := range []record.Record{
		{TaskID: "tsk_held", Trigger: "deploy-nginx", Namespace: "public", Repository: "nginx", Target: "hooks.example.com:8080", Status: record.Retrying, ErrorClass: record.ClassCircuitOpen, Error: "circuit open", Time: now},
		{TaskID: "tsk_last", Trigger: "deploy-nginx", Namespace: "public", Repository: "nginx", Target: "hooks.example.com:8080", Status: record.Failed, ErrorClass: record.ClassAutoDisabled, Error: "trigger " + why, Time: now.Add(time.Second)},
	} {
		if err := s.Records().Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	var got trigger.Trigger
	if err := json.Unmarshal([]byte(cli(t, "triggers", "get", "deploy-nginx", "-o", "json", "--data", data)), &got); err != nil {
		t.Fatal(err)
	}
	if got.Enabled || got.DisabledReason != why || got.DisabledAt.IsZero() {
		t.Errorf("triggers get: enabled %v, disabled_reason %q, disabled_at %v", got.Enabled, got.DisabledReason, got.DisabledAt)
	}
	if table := cli(t, "triggers", "get", "deploy-nginx", "--data", data); !strings.Contains(table, "disabled:") || !strings.Contains(table, why) {
		t.Errorf("triggers get does not say why it is disabled:\n%s", table)
	}
	logs := cli(t, "logs", "--trigger", "deploy-nginx", "--data", data)
	for _, want := range []string{"circuit_open", "auto_disabled"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lacks %s:\n%s", want, logs)
		}
	}
	if failed := cli(t, "logs", "--status", "failed", "--data", data); !strings.Contains(failed, "auto_disabled") {
		t.Errorf("logs --status failed:\n%s", failed)
	}
	cli(t, "triggers", "enable", "deploy-nginx", "--data", data)
	got = trigger.Trigger{}
	if err := json.Unmarshal([]byte(cli(t, "triggers", "get", "deploy-nginx", "-o", "json", "--data", data)), &got); err != nil {
		t.Fatal(err)
	}
	if !got.Enabled || got.DisabledReason != "" || !got.DisabledAt.IsZero() {
		t.Errorf("after enable: enabled %v, disabled_reason %q, disabled_at %v", got.Enabled, got.DisabledReason, got.DisabledAt)
	}
}
