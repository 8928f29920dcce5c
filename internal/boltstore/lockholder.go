package boltstore

// LockHolder returns the id of the process that holds the file lock of
// the store file at path, when the system says: a second serve, or a CLI
// command while serve runs, can then name the process it waits for
// instead of only "another process" (ErrLocked).
//
// On Linux it reads /proc/locks, where the kernel lists every lock with
// its owner, device and inode: nothing is written beside the store (a pid
// file would outlive a crash and name a process that is gone, or another
// one that reused its id). ok is false when the holder is not known:
// another system, no /proc, no lock on the file, or a holder in another
// pid namespace (a container), which /proc/locks shows as pid 0.
func LockHolder(path string) (pid int, ok bool) { return lockHolder(path) }
