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
