package sqsqueue_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// endpoint is the base URL of the fauxqs server TestMain starts.
var endpoint string

// TestMain starts a real fauxqs (an SQS implementation, pinned to 1.9.2 in
// tools/node) on a free loopback port, runs the tests and stops it.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sqsqueue tests:", err)
		return 1
	}
	bin := filepath.Join(root, "tools", "node", "node_modules", ".bin", "fauxqs")
	if _, err := os.Stat(bin); err != nil {
		fmt.Fprintf(os.Stderr, "sqsqueue tests need fauxqs (%s is missing): run `make test-deps` (npm ci --prefix tools/node)\n", bin)
		return 1
	}
	port, err := freePort()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sqsqueue tests: free port:", err)
		return 1
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), fmt.Sprintf("FAUXQS_PORT=%d", port), "FAUXQS_HOST=127.0.0.1")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &syncWriter{w: &logs}, &syncWriter{w: &logs}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "sqsqueue tests: start fauxqs:", err)
		return 1
	}
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	endpoint = fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitReady(endpoint, 20*time.Second); err != nil {
		fmt.Fprintf(os.Stderr, "sqsqueue tests: fauxqs did not answer: %v\n%s\n", err, logs.String())
		return 1
	}
	return m.Run()
}

type syncWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w.Len() < 64<<10 {
		s.w.Write(p)
	}
	return len(p), nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady waits until ListQueues succeeds.
func waitReady(url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	c := newClient(url, nil)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.ListQueues(ctx, &sqs.ListQueuesInput{})
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
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
