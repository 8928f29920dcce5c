package dynamostore

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/regtrigger/regtrigger/internal/testserver"
)

// endpoint is the dynalite server TestMain started.
var endpoint string

// TestMain starts dynalite (tools/node, installed by `make test-deps`) on a
// free loopback port, runs the tests and stops it.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	srv, err := testserver.Dynalite()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dynamostore tests:", err)
		return 1
	}
	defer srv.Stop()
	endpoint = srv.URL
	return m.Run()
}

// client returns a DynamoDB client for url with at most attempts tries per
// call, 20 ms apart.
func client(url string, attempts int) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(url),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = attempts
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 20 * time.Millisecond, nil })
		}),
	})
}

// clock is a settable test clock.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(0, c.t.Load()).UTC() }
func (c *clock) add(d time.Duration) { c.t.Add(int64(d)) }
func newClock(at time.Time) *clock   { c := &clock{}; c.t.Store(at.UnixNano()); return c }

var tableSeq atomic.Int64

// newStore returns a Store on fresh tables in dynalite.
func newStore(t *testing.T, c *clock, retention time.Duration) *Store {
	t.Helper()
	n := tableSeq.Add(1)
	s, err := New(Config{
		Client:        client(endpoint, 3),
		TriggersTable: fmt.Sprintf("triggers-%d", n),
		RecordsTable:  fmt.Sprintf("records-%d", n),
		DedupeTable:   fmt.Sprintf("dedupe-%d", n),
		Retention:     retention,
		Now:           c.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.CreateTables(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}
