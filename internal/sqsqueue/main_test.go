package sqsqueue_test

import (
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/regtrigger/regtrigger/internal/testserver"
)

// endpoint is the base URL of the fauxqs server TestMain starts.
var endpoint string

// TestMain starts a real fauxqs (an SQS implementation, pinned to 1.9.2 in
// tools/node) on a free loopback port, runs the tests and stops it.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	srv, err := testserver.Fauxqs()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sqsqueue tests:", err)
		return 1
	}
	defer srv.Stop()
	endpoint = srv.URL
	return m.Run()
}

// newClient is an SQS client for url with static test credentials. A nil
// transport uses the default one.
func newClient(url string, transport http.RoundTripper, opts ...func(*sqs.Options)) *sqs.Client {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	}
	if transport != nil {
		cfg.HTTPClient = &http.Client{Transport: transport}
	}
	return sqs.NewFromConfig(cfg, append([]func(*sqs.Options){func(o *sqs.Options) { o.BaseEndpoint = aws.String(url) }}, opts...)...)
}

// countingTransport counts requests per SQS action (X-Amz-Target).
type countingTransport struct {
	mu    sync.Mutex
	calls map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.")]++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingTransport) count(action string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[action]
}

var nonName = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

// queueName is a queue name unique to the test.
func queueName(t *testing.T) string {
	n := nonName.ReplaceAllString(t.Name(), "-")
	if len(n) > 50 {
		n = n[:50]
	}
	return fmt.Sprintf("%s-%d", n, time.Now().UnixNano()%1e9)
}
