package dynamostore

import (
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/coalesce/coalescetest"
)

// TestWindows runs the coalesce.Store contract on dynalite: the
// compare-and-swap of racing writers and a burst of 8 joined from two
// writers and closed by two tasks at once.
func TestWindows(t *testing.T) {
	s := newStore(t, newClock(time.Now()), time.Hour)
	coalescetest.Run(t, s.Windows())
}
