package redisstore

import (
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/delivery/healthtest"
)

// TestHealth runs the delivery.Health contract, racing writers and the
// bounded-attempts simulation on redis-server.
func TestHealth(t *testing.T) {
	healthtest.Run(t, newStore(t, time.Now).Health())
}
