package embedded

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/regtrigger/regtrigger/internal/backend"
)

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, store, kind string
		opts              Options
		wantErr           bool
	}{
		{"bolt path", filepath.Join(dir, "a.db"), backend.Bolt, Options{}, false},
		{"bolt url", "bolt://" + filepath.Join(dir, "b.db"), backend.Bolt, Options{}, false},
		{"pebble url", "pebble://" + filepath.Join(dir, "p"), backend.Pebble, Options{}, false},
		{"pebble that must exist", "pebble://" + filepath.Join(dir, "none"), "", Options{MustExist: true}, true},
		{"redis", "redis://127.0.0.1:1/0", "", Options{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Open(tt.store, tt.opts)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				return
			}
			defer b.Close()
			if b.Kind != tt.kind || b.Triggers == nil || b.Records == nil || b.Dedupe == nil || b.Queue == nil || b.Local == nil || b.LocalQueue == nil || b.TargetHealth == nil {
				t.Errorf("%+v", b)
			}
		})
	}
}

// TestLocked: a second Open of a held store is ErrLocked, and the holder
// (this process) is named where the system says.
func TestLocked(t *testing.T) {
	for _, kind := range []string{backend.Bolt, backend.Pebble} {
		t.Run(kind, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s")
			b, err := Open(kind+"://"+path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if _, err := Open(kind+"://"+path, Options{}); !ErrLocked(err) {
				t.Fatalf("second open: %v", err)
			}
			if _, err := os.Stat("/proc/locks"); err == nil {
				if pid, ok := LockHolder(kind, path); !ok || pid != os.Getpid() {
					t.Errorf("holder %d %v, want %d", pid, ok, os.Getpid())
				}
			}
			if ErrLocked(errors.New("other")) {
				t.Error("any error is ErrLocked")
			}
		})
	}
}
