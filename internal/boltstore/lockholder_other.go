//go:build !linux

package boltstore

// lockHolder: only Linux lists the owners of file locks (/proc/locks).
func lockHolder(string) (int, bool) { return 0, false }
