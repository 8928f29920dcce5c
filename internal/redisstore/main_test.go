package redisstore

import (
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/regtrigger/regtrigger/internal/testserver"
)

var server *testserver.Redis

// TestMain starts one redis-server for the package; each test works under
// a key prefix of its own.
func TestMain(m *testing.M) {
	var err error
	if server, err = testserver.StartRedis(); err != nil {
		fmt.Fprintln(os.Stderr, "redisstore:", err)
		os.Exit(1)
	}
	code := m.Run()
	server.Stop()
	os.Exit(code)
}

var prefixes atomic.Int64

// newStore is a store under a fresh prefix, with the clock now().
func newStore(t testing.TB, now func() time.Time) *Store {
	t.Helper()
	opts, err := ParseURL(server.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts.Redis)
	t.Cleanup(func() { c.Close() })
	s, err := New(Config{Client: c, Prefix: "t" + strconv.FormatInt(prefixes.Add(1), 10), Retention: time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
