package backend

import (
	"context"
	"path/filepath"
	"testing"
)

func TestKind(t *testing.T) {
	tests := []struct {
		url, want string
		wantErr   bool
	}{
		{"./regtrigger.db", Bolt, false},
		{"bolt:///var/lib/regtrigger.db", Bolt, false},
		{"pebble:///var/lib/regtrigger", Pebble, false},
		{"redis://127.0.0.1:6379/0", Redis, false},
		{"rediss://10.0.0.5:6380/1", Redis, false},
		{"dynamodb", Dynamo, false},
		{"", "", true},
		{"mysql://x", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := Kind(tt.url)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("Kind = %q, %v", got, err)
			}
		})
	}
}

// TestOpen: each kind opens without touching the network, and refuses a
// queue it cannot use.
func TestOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tests := []struct {
		name, store, queue string
		wantErr            bool
		queueSet           bool
	}{
		{"bolt: package embedded's", filepath.Join(dir, "a.db"), "", true, false},
		{"pebble: package embedded's", "pebble://" + filepath.Join(dir, "p"), "", true, false},
		{"redis without a queue", "redis://127.0.0.1:1/0", "", false, false},
		{"redis and kafka", "redis://127.0.0.1:1/0?prefix=p", "kafka://127.0.0.1:1/tasks", false, true},
		{"redis, bad queue", "redis://127.0.0.1:1/0", "kafka://127.0.0.1:1", true, false},
		{"dynamodb, kafka queue", "dynamodb", "kafka://k:9092/t", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Open(ctx, tt.store, tt.queue, Options{})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				return
			}
			defer b.Close()
			if b.Triggers == nil || b.Records == nil || b.Dedupe == nil || (b.Queue != nil) != tt.queueSet {
				t.Errorf("%+v", b)
			}
		})
	}
}
