//go:build !linux

package filelock

// holder: only Linux lists the owners of file locks (/proc/locks).
func holder(string) (int, bool) { return 0, false }
