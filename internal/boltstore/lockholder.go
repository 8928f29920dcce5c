package boltstore

import "github.com/regtrigger/regtrigger/internal/filelock"

// LockHolder returns the id of the process that holds the file lock of
// the store file at path, when the system says (filelock.Holder).
func LockHolder(path string) (pid int, ok bool) { return filelock.Holder(path) }
