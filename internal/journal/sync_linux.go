package journal

import (
	"os"
	"syscall"
)

// fdatasync makes f's data durable, without its times (the segments never
// change size after they are created).
func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
