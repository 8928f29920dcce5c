package config

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromEnv(t *testing.T) {
	c, err := FromEnv(env(map[string]string{
		EnvRegistries: "harbor=0123456789abcdef0123", EnvTriggersTable: "t", EnvQueueURL: "http://q",
		EnvTriggerCacheTTL: "5s", EnvRetentionDays: "7", EnvAllowPrivate: "10.0.0.0/8, 192.168.1.10",
		EnvMaxAttempts: "3", EnvLogLevel: "debug", EnvDrainIdle: "30s",
	}), EnvTriggersTable, EnvQueueURL)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Registries) != 1 || c.TriggerCacheTTL != 5*time.Second || c.Retention != 7*24*time.Hour ||
		len(c.AllowPrivate) != 2 || c.MaxAttempts != 3 || c.LogLevel != slog.LevelDebug || c.DedupeWindow != 10*time.Minute || c.DrainIdle != 30*time.Second {
		t.Errorf("%+v", c)
	}
}

func TestFromEnvReportsEveryProblem(t *testing.T) {
	_, err := FromEnv(env(map[string]string{
		EnvTriggerCacheTTL: "soon", EnvRetentionDays: "0", EnvAllowPrivate: "not-a-cidr", EnvLogLevel: "loud",
		EnvRegistries: "no-equals-sign-here", EnvDrainIdle: "-1s",
	}), EnvQueueURL)
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"QUEUE_URL is required", "TRIGGER_CACHE_TTL", "RETENTION_DAYS", "ALLOW_PRIVATE_CIDRS", "LOG_LEVEL", "REGTRIGGER_REGISTRIES", "DRAIN_IDLE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "no-equals-sign-here") {
		t.Error("the registries value (it may hold a token) is echoed")
	}
}

// TestFromEnvAllowPrivate: ALLOW_PRIVATE_CIDRS goes through the same
// parser as serve --allow-private, so an entry overlapping an IPv6 form
// that embeds IPv4 stops the function at start, and a range containing a
// metadata endpoint is accepted (the endpoint stays refused by the guard).
func TestFromEnvAllowPrivate(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		entries int
		wantErr string
	}{
		{"VPC ranges", "10.0.0.0/8,fd00::/8", 2, ""},
		{"contains metadata", "169.254.0.0/16", 1, ""},
		{"IPv4-mapped", "10.0.0.0/8 ::ffff:0:0/96", 0, "overlaps the IPv4-mapped range (::ffff:0:0/96), which no allow-list opens; list the IPv4 range (e.g. 10.0.0.0/8) instead"},
		{"inside IPv4-mapped", "::ffff:10.0.0.0/104", 0, "list the IPv4 range 10.0.0.0/8 instead"},
		{"6to4", "2002::/16", 0, "overlaps the 6to4 range"},
		{"broader prefix", "::/8", 0, "overlaps the IPv4-mapped range"},
		{"everything", "::/0", 0, "overlaps the IPv4-mapped range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := FromEnv(env(map[string]string{EnvQueueURL: "http://q", EnvAllowPrivate: tt.value}), EnvQueueURL)
			if tt.wantErr == "" {
				if err != nil || len(c.AllowPrivate) != tt.entries {
					t.Fatalf("FromEnv: %v, %v; want %d entries", c.AllowPrivate, err, tt.entries)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), EnvAllowPrivate) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("FromEnv error = %v, want %s and %q", err, EnvAllowPrivate, tt.wantErr)
			}
		})
	}
}
