package cloud

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

var complete = map[string]string{
	config.EnvTriggersTable: "t", config.EnvRecordsTable: "r", config.EnvDedupeTable: "d",
	config.EnvQueueURL: "https://sqs.us-east-1.amazonaws.com/000000000000/q", config.EnvRegistries: "tcr=0123456789abcdef0123",
	config.EnvTriggerCacheTTL: "3s", config.EnvMaxAttempts: "2",
}

// TestFromEnvDoesNoIO: the adapters of a complete configuration are built
// at once, against endpoints that do not exist: nothing is dialled at start.
func TestFromEnvDoesNoIO(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := FromEnv(ctx, env(complete), "test", ReceiverRequires...)
	if err != nil {
		t.Fatal(err)
	}
	if s.Triggers.TTL != 3*time.Second || s.Queue.URL != complete[config.EnvQueueURL] || s.Store.Tables().Dedupe != "d" {
		t.Errorf("stack %+v", s)
	}
	ep, err := s.Endpoint(nil)
	if err != nil || ep.Auth.Open() {
		t.Errorf("endpoint: %v (open %v)", err, ep != nil && ep.Auth.Open())
	}
	eng, err := s.Engine(nil)
	if err != nil || eng.Policy.MaxAttempts != 2 || eng.UserAgent != "regtrigger/test" || eng.Health == nil {
		t.Errorf("engine %+v, %v", eng, err)
	}
}

func TestFromEnvRefuses(t *testing.T) {
	for _, tt := range []struct {
		name string
		drop string
		set  map[string]string
		want string
	}{
		{"a required table", config.EnvTriggersTable, nil, "TRIGGERS_TABLE is required"},
		{"the queue", config.EnvQueueURL, nil, "QUEUE_URL is required"},
		{"a bad setting", "", map[string]string{config.EnvMaxAttempts: "0"}, "MAX_ATTEMPTS"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]string{}
			for k, v := range complete {
				m[k] = v
			}
			delete(m, tt.drop)
			for k, v := range tt.set {
				m[k] = v
			}
			if _, err := FromEnv(context.Background(), env(m), "test", DispatcherRequires...); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
