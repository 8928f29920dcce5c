package boltstore

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestLockHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rt.db")
	if pid, ok := LockHolder(path); ok {
		t.Fatalf("no file: holder %d", pid)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pid, ok := LockHolder(path)
	switch {
	case runtime.GOOS != "linux":
		if ok {
			t.Errorf("holder %d reported where the system lists none", pid)
		}
	case !ok:
		if _, err := os.Stat("/proc/locks"); err != nil {
			t.Skipf("no /proc/locks: %v", err)
		}
		t.Error("the holder of an open store is not found")
	case pid != os.Getpid():
		t.Errorf("holder %d, want this process (%d)", pid, os.Getpid())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if pid, ok := LockHolder(path); ok {
		t.Errorf("closed store: holder %d", pid)
	}
}
