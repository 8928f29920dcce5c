// Package filelock names the process that holds a store's file lock, so
// that a second serve, or a CLI command while serve runs, can say which
// process it waits for instead of only "another process".
package filelock

// Holder returns the id of the process that holds a lock on the file at
// path, when the system says.
//
// On Linux it reads /proc/locks, where the kernel lists every lock with
// its owner, device and inode: nothing is written beside the store (a pid
// file would outlive a crash and name a process that is gone, or another
// one that reused its id). ok is false when the holder is not known:
// another system, no /proc, no lock on the file, or a holder in another
// pid namespace (a container), which /proc/locks shows as pid 0.
func Holder(path string) (pid int, ok bool) { return holder(path) }
