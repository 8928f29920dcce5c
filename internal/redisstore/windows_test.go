package redisstore

import (
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/coalesce/coalescetest"
)

// TestWindows runs the coalesce.Store contract on redis-server: WATCH
// rounds of racing writers and a burst of 8 from two writers, closed by
// two tasks at once.
func TestWindows(t *testing.T) {
	coalescetest.Run(t, newStore(t, time.Now).Windows())
}
