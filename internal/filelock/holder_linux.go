package filelock

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// holder finds a lock on path in /proc/locks: an flock (bbolt) or a
// POSIX record lock (Pebble's LOCK file). A line reads
//
//	1: FLOCK  ADVISORY  WRITE 27747 fe:00:9977994 0 EOF
//	2: POSIX  ADVISORY  WRITE 27801 fe:00:9978012 0 EOF
//
// with the owner's pid and major:minor:inode (hexadecimal device numbers);
// a process waiting for the lock has a "->" line, which is skipped.
func holder(path string) (int, bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, false
	}
	dev := uint64(st.Dev)
	// The kernel's device encoding (glibc's gnu_dev_major / gnu_dev_minor).
	major := (dev>>8)&0xfff | (dev>>32)&^uint64(0xfff)
	minor := dev&0xff | (dev>>12)&^uint64(0xff)
	want := fmt.Sprintf("%02x:%02x:%d", major, minor, st.Ino)

	f, err := os.Open("/proc/locks")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || (fields[1] != "FLOCK" && fields[1] != "POSIX") || fields[5] != want {
			continue
		}
		if pid, err := strconv.Atoi(fields[4]); err == nil && pid > 0 {
			return pid, true
		}
	}
	return 0, false
}
