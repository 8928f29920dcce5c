package dynamostore

import (
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/delivery/healthtest"
)

// TestHealth runs the delivery.Health contract, racing writers and the
// bounded-attempts simulation on dynalite.
func TestHealth(t *testing.T) {
	s := newStore(t, newClock(time.Now()), time.Hour)
	healthtest.Run(t, s.Health())
}
