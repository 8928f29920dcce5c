package journal

import (
	"errors"
	"os"
	"syscall"
)

// fdatasync makes f's data durable, without its times (the segments never
// change size after they are created). It retries when a signal
// interrupts it, as os.File.Sync does.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
