package outbound

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/net/http/httpproxy"
)

// countingServer is an httptest server on 127.0.0.1 that counts requests.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts, &n
}

func TestNewClientConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"zero", Config{}, ""},
		{"max timeout", Config{Timeout: MaxTimeout}, ""},
		{"too long timeout", Config{Timeout: MaxTimeout + time.Millisecond}, "longer than the maximum"},
		{"negative timeout", Config{Timeout: -time.Second}, "negative"},
		{"negative max body", Config{MaxBody: -1}, "negative"},
		{"invalid prefix", Config{AllowPrivate: []netip.Prefix{{}}}, "invalid"},
		{"every IPv4 address", Config{AllowPrivate: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}, "every address"},
		{"IPv4-mapped prefix", Config{AllowPrivate: []netip.Prefix{netip.MustParsePrefix("::ffff:0:0/96")}}, "overlaps the IPv4-mapped range"},
		{"prefix containing 6to4", Config{AllowPrivate: []netip.Prefix{netip.MustParsePrefix("2000::/3")}}, "overlaps the 6to4 range"},
		{"unmasked loopback prefix", Config{AllowPrivate: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}}, ""},
		{"prefix containing metadata", Config{AllowPrivate: []netip.Prefix{netip.MustParsePrefix("169.254.0.0/16")}}, ""},
		{"user agent with newline", Config{UserAgent: "a\r\nX-Evil: 1"}, "user agent"},
		{"user agent", Config{UserAgent: "regtrigger/1.0"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewClient(tt.cfg)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("NewClient: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("NewClient error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestNewClientProductionSettings pins the transport settings the design
// requires, on a client built exactly as production builds it.
func TestNewClientProductionSettings(t *testing.T) {
	c, err := NewClient(Config{})
	if err != nil {
		t.Fatal(err)
	}
	tr := c.transport
	switch {
	case tr.Proxy != nil:
		t.Error("Transport.Proxy is set; no proxy may come from the environment")
	case tr.DialContext == nil || c.dialer.Control == nil:
		t.Error("dialer has no Control check")
	case c.dialer.Resolver != nil:
		t.Error("production client has a custom resolver")
	case c.dialAddr != nil:
		t.Error("production client has a dial override")
	case tr.TLSClientConfig.InsecureSkipVerify:
		t.Error("TLS verification skipped")
	case tr.TLSClientConfig.MinVersion != tls.VersionTLS12:
		t.Errorf("TLS MinVersion = %x, want TLS 1.2", tr.TLSClientConfig.MinVersion)
	case tr.TLSClientConfig.RootCAs != nil:
		t.Error("RootCAs set without Config.RootCAs")
	case !tr.ForceAttemptHTTP2:
		t.Error("HTTP/2 not attempted")
	case !tr.DisableCompression:
		t.Error("compression not disabled")
	case c.http.CheckRedirect == nil:
		t.Error("redirects would be followed")
	case c.timeout != DefaultTimeout || c.maxBody != DefaultMaxBody:
		t.Errorf("defaults: timeout %v, max body %d", c.timeout, c.maxBody)
	}
}

func TestPostLiteralLoopback(t *testing.T) {
	ts, hits := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Echo-Method", r.Method)
		w.WriteHeader(http.StatusAccepted)
		w.Write(body)
	})

	t.Run("denied without allowance", func(t *testing.T) {
		c := testClient(t, Config{}, nil, "")
		_, err := c.Post(context.Background(), ts.URL+"/hook", nil, []byte("x"))
		if !errors.Is(err, ErrBlocked) {
			t.Fatalf("Post = %v, want blocked", err)
		}
		if hits.Load() != 0 {
			t.Fatal("server was reached")
		}
	})
	t.Run("allowed with 127.0.0.1/32", func(t *testing.T) {
		c := testClient(t, Config{AllowPrivate: loopbackOnly}, nil, "")
		resp, err := c.Post(context.Background(), ts.URL+"/hook", nil, []byte(`{"a":1}`))
		if err != nil {
			t.Fatalf("Post: %v", err)
		}
		if resp.Status != http.StatusAccepted || string(resp.Body) != `{"a":1}` || resp.Truncated {
			t.Fatalf("resp = %d %q truncated=%v", resp.Status, resp.Body, resp.Truncated)
		}
		if resp.Header.Get("X-Echo-Method") != "POST" {
			t.Fatalf("method = %q", resp.Header.Get("X-Echo-Method"))
		}
		if resp.RemoteAddr != ts.Listener.Addr().String() {
			t.Errorf("RemoteAddr = %q, want %q", resp.RemoteAddr, ts.Listener.Addr())
		}
		if resp.Latency <= 0 || resp.Proto != "HTTP/1.1" {
			t.Errorf("Latency = %v, Proto = %q", resp.Latency, resp.Proto)
		}
	})
}

func TestPostRedirectNotFollowed(t *testing.T) {
	tests := []struct {
		name     string
		location string
		want     string
	}{
		{"to metadata", "http://169.254.169.254/latest/meta-data/?token=s3cr3t", "http://169.254.169.254/latest/meta-data/"},
		{"to loopback", "http://127.0.0.1:1/", "http://127.0.0.1:1/"},
		{"relative", "/next?token=s3cr3t", "/next"},
		{"with userinfo", "https://user:s3cr3t@example.com/x", "https://example.com/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, hits := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Location", tt.location)
				w.WriteHeader(http.StatusFound)
			})
			c := testClient(t, Config{AllowPrivate: loopbackOnly}, nil, "")
			resp, err := c.Post(context.Background(), ts.URL+"/hook", nil, nil)
			if err != nil {
				t.Fatalf("Post: %v", err)
			}
			want := tt.want
			if strings.HasPrefix(want, "/") {
				want = ts.URL + want
			}
			if resp.Status != http.StatusFound || resp.Location != want {
				t.Fatalf("resp = %d Location %q, want 302 %q", resp.Status, resp.Location, want)
			}
			if hits.Load() != 1 {
				t.Fatalf("server hit %d times, want 1 (redirect followed?)", hits.Load())
			}
		})
	}
}

func TestPostConnectTimeCheck(t *testing.T) {
	ts, hits := countingServer(t, func(w http.ResponseWriter, r *http.Request) {})
	port := portOf(t, ts.URL)
	dns := newFakeDNS(map[string][]string{
		"rebind.example":      {"127.0.0.1"},
		"metadata.example":    {"169.254.169.254"},
		"v6loop.example":      {"::1"},
		"mapped.example":      {"::ffff:127.0.0.1"},
		"twoaddrs.example":    {"127.0.0.2", "127.0.0.1"},
		"public.example":      {"127.0.0.1"}, // allowed below
		"unspecified.example": {"0.0.0.0"},
	})
	tests := []struct {
		name    string
		allow   []netip.Prefix
		url     string
		blocked bool
		why     string
	}{
		{"name resolving to loopback", nil, "http://rebind.example:" + port + "/", true, "loopback"},
		{"name resolving to metadata", loopbackOnly, "http://metadata.example:" + port + "/", true, "metadata"},
		{"name resolving to v6 loopback", loopbackOnly, "http://v6loop.example:" + port + "/", true, "loopback"},
		{"name resolving to unspecified", []netip.Prefix{netip.MustParsePrefix("0.0.0.0/8")}, "http://unspecified.example:" + port + "/", true, "this network"},
		{"other loopback not in allowance", loopbackOnly, "http://twoaddrs.example:" + port + "/", false, ""},
		{"allowed address", loopbackOnly, "http://public.example:" + port + "/", false, ""},
		{"uppercase and trailing dot", loopbackOnly, "http://PUBLIC.Example.:" + port + "/", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := hits.Load()
			c := testClient(t, Config{AllowPrivate: tt.allow}, dns, "")
			resp, err := c.Post(context.Background(), tt.url+"?token=s3cr3t", nil, nil)
			if !tt.blocked {
				if err != nil {
					t.Fatalf("Post: %v", err)
				}
				if resp.RemoteAddr != ts.Listener.Addr().String() {
					t.Fatalf("RemoteAddr = %q, want %q", resp.RemoteAddr, ts.Listener.Addr())
				}
				return
			}
			var be *BlockedError
			if !errors.As(err, &be) || !errors.Is(err, ErrBlocked) {
				t.Fatalf("Post = %v, want *BlockedError", err)
			}
			if !strings.Contains(be.Reason, "connect-time") || !strings.Contains(be.Reason, tt.why) {
				t.Errorf("reason %q, want connect-time check mentioning %q", be.Reason, tt.why)
			}
			if strings.Contains(err.Error(), "s3cr3t") || be.URL != strings.ToLower(Redact(tt.url)) {
				t.Errorf("error leaks or lacks the URL: %v (URL %q)", err, be.URL)
			}
			if hits.Load() != before {
				t.Fatal("server was reached")
			}
		})
	}
	if dns.queries.Load() == 0 {
		t.Fatal("fake resolver was never asked")
	}
}

func TestPostResolverFailure(t *testing.T) {
	ts, hits := countingServer(t, func(w http.ResponseWriter, r *http.Request) {})
	port := portOf(t, ts.URL)
	tests := []struct {
		name  string
		rcode dnsmessage.RCode
		host  string
	}{
		{"no such host", dnsmessage.RCodeSuccess, "missing.example"},
		{"server failure", dnsmessage.RCodeServerFailure, "rebind.example"},
		{"refused", dnsmessage.RCodeRefused, "rebind.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dns := newFakeDNS(map[string][]string{"rebind.example": {"127.0.0.1"}})
			dns.rcode = tt.rcode
			c := testClient(t, Config{AllowPrivate: loopbackOnly}, dns, "")
			resp, err := c.Post(context.Background(), "http://"+tt.host+":"+port+"/?token=s3cr3t", nil, nil)
			if err == nil || resp != nil {
				t.Fatalf("Post = %v, %v; want an error", resp, err)
			}
			var dnsErr *net.DNSError
			if !errors.As(err, &dnsErr) {
				t.Errorf("error %v does not wrap a *net.DNSError", err)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error leaks the query: %v", err)
			}
			t.Logf("error: %v", err)
			if hits.Load() != 0 {
				t.Fatal("server was reached")
			}
		})
	}
}

func TestPostIgnoresEnvironmentProxy(t *testing.T) {
	proxy, proxyHits := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})
	ts, hits := countingServer(t, func(w http.ResponseWriter, r *http.Request) {})
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"} {
		t.Setenv(k, proxy.URL)
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")

	target := "http://hook.example:" + portOf(t, ts.URL) + "/"
	// Sanity: a client honouring the environment would use the proxy for
	// this URL (http.ProxyFromEnvironment caches the environment, so ask
	// x/net's httpproxy, which reads it now).
	u, _ := url.Parse(target)
	if p, err := httpproxy.FromEnvironment().ProxyFunc()(u); err != nil || p == nil {
		t.Fatalf("environment proxy not configured for %s: %v %v", target, p, err)
	}

	dns := newFakeDNS(map[string][]string{"hook.example": {"127.0.0.1"}})
	c := testClient(t, Config{AllowPrivate: loopbackOnly}, dns, "")
	resp, err := c.Post(context.Background(), target, nil, nil)
	if err != nil {
		t.Fatalf("Post: %v", err)
	}
	if resp.Status != http.StatusOK || hits.Load() != 1 || proxyHits.Load() != 0 {
		t.Fatalf("status %d, target hits %d, proxy hits %d", resp.Status, hits.Load(), proxyHits.Load())
	}
}

func TestPostNoCompression(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("hello hello hello"))
	zw.Close()
	var acceptEncoding atomic.Value
	ts, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		acceptEncoding.Store(r.Header.Values("Accept-Encoding"))
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(gz.Bytes())
	})
	c := testClient(t, Config{AllowPrivate: loopbackOnly}, nil, "")
	resp, err := c.Post(context.Background(), ts.URL+"/", nil, nil)
	if err != nil {
		t.Fatalf("Post: %v", err)
	}
	if got := acceptEncoding.Load().([]string); len(got) != 0 {
		t.Errorf("Accept-Encoding sent: %q", got)
	}
	if !bytes.Equal(resp.Body, gz.Bytes()) {
		t.Errorf("body was decoded: %q", resp.Body)
	}
}

func TestPostHeaders(t *testing.T) {
	var got atomic.Value
	ts, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Clone())
	})
	tests := []struct {
		name   string
		ua     string
		header http.Header
		wantUA string
	}{
		{"configured UA", "regtrigger/1.0", nil, "regtrigger/1.0"},
		{"caller UA wins", "regtrigger/1.0", http.Header{"User-Agent": {"custom/2"}}, "custom/2"},
		{"no UA configured", "", http.Header{"X-A": {"1"}}, "Go-http-client/1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testClient(t, Config{AllowPrivate: loopbackOnly, UserAgent: tt.ua}, nil, "")
			if _, err := c.Post(context.Background(), ts.URL+"/", tt.header, nil); err != nil {
				t.Fatalf("Post: %v", err)
			}
			h := got.Load().(http.Header)
			if h.Get("User-Agent") != tt.wantUA {
				t.Errorf("User-Agent = %q, want %q", h.Get("User-Agent"), tt.wantUA)
			}
			if tt.header != nil && tt.header.Get("X-A") != "" && h.Get("X-A") != "1" {
				t.Errorf("X-A = %q", h.Get("X-A"))
			}
		})
	}
	// The caller's header is not modified.
	h := http.Header{"X-A": {"1"}}
	c := testClient(t, Config{AllowPrivate: loopbackOnly, UserAgent: "ua"}, nil, "")
	if _, err := c.Post(context.Background(), ts.URL+"/", h, nil); err != nil {
		t.Fatal(err)
	}
	if len(h) != 1 {
		t.Errorf("caller header modified: %v", h)
	}
}

func TestPostErrorsAreRedacted(t *testing.T) {
	// A closed port on 127.0.0.1: connection refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	c := testClient(t, Config{AllowPrivate: loopbackOnly}, nil, "")
	tests := []struct {
		name   string
		url    string
		header http.Header
	}{
		{"connection refused", "http://" + closed + "/p?token=s3cr3t", nil},
		{"blocked", "http://127.0.0.2:8080/p?token=s3cr3t", nil},
		{"userinfo", "http://user:s3cr3t@" + closed + "/p", nil},
		{"bad header value", "http://" + closed + "/p?token=s3cr3t", http.Header{"X-Token": {"s3cr3t\r\nX-Evil: 1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Post(context.Background(), tt.url, tt.header, nil)
			if err == nil {
				t.Fatal("Post succeeded")
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Fatalf("error leaks a secret: %v", err)
			}
			t.Logf("error: %v", err)
			var ue *url.Error
			if errors.As(err, &ue) {
				t.Fatalf("error still wraps a *url.Error: %v", err)
			}
		})
	}
}

func TestPostTimeout(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	tests := []struct {
		name     string
		handler  http.HandlerFunc
		wantResp bool
	}{
		{"no headers", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}, false},
		{"body stalls", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, _ := countingServer(t, tt.handler)
			c := testClient(t, Config{AllowPrivate: loopbackOnly, Timeout: 300 * time.Millisecond}, nil, "")
			start := time.Now()
			resp, err := c.Post(context.Background(), ts.URL+"/?token=s3cr3t", nil, nil)
			elapsed := time.Since(start)
			if err == nil {
				t.Fatal("Post succeeded")
			}
			if elapsed < 250*time.Millisecond || elapsed > 2*time.Second {
				t.Errorf("Post took %v, want about 300ms", elapsed)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("errors.Is(%v, DeadlineExceeded) = false", err)
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("error %v is not a net.Error timeout", err)
			}
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				t.Errorf("error %T is not itself a net.Error timeout", err)
			}
			if errors.Is(err, ErrBlocked) || strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("bad error: %v", err)
			}
			t.Logf("error: %v", err)
			if tt.wantResp && (resp == nil || resp.Status != 200 || string(resp.Body) != "partial") {
				t.Errorf("resp = %+v, want the partial answer", resp)
			}
			if !tt.wantResp && resp != nil {
				t.Errorf("resp = %+v, want nil", resp)
			}
		})
	}
}

// TestPostCallerContext checks that the caller's deadline and the client's
// timeout (1s here) bound a request together, whichever ends first.
func TestPostCallerContext(t *testing.T) {
	ts, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	c := testClient(t, Config{AllowPrivate: loopbackOnly, Timeout: time.Second}, nil, "")
	tests := []struct {
		name     string
		deadline time.Duration // of the caller's context; 0 for none
		cancel   time.Duration // the caller cancels after this; 0 for never
		min, max time.Duration
		want     error
	}{
		{"caller's deadline first", 100 * time.Millisecond, 0, 80 * time.Millisecond, 800 * time.Millisecond, context.DeadlineExceeded},
		{"client's timeout first", 5 * time.Second, 0, 900 * time.Millisecond, 3 * time.Second, context.DeadlineExceeded},
		{"no caller deadline", 0, 0, 900 * time.Millisecond, 3 * time.Second, context.DeadlineExceeded},
		{"caller cancels", 5 * time.Second, 100 * time.Millisecond, 80 * time.Millisecond, 800 * time.Millisecond, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			if tt.cancel > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				time.AfterFunc(tt.cancel, cancel)
			}
			start := time.Now()
			_, err := c.Post(ctx, ts.URL+"/", nil, nil)
			if d := time.Since(start); d < tt.min || d > tt.max {
				t.Errorf("Post took %v, want %v to %v", d, tt.min, tt.max)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Post = %v, want %v", err, tt.want)
			}
			var ne net.Error
			if timeout := errors.As(err, &ne) && ne.Timeout(); timeout != (tt.want == context.DeadlineExceeded) {
				t.Errorf("Timeout() = %v for %v", timeout, err)
			}
		})
	}
}

// TestPostEmptyAnswers checks that an answer without a body (which net/http
// gives as http.NoBody, not read) has an empty, non-nil Body like any other.
func TestPostEmptyAnswers(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		length string // Content-Length to send; "" lets net/http choose
	}{
		{"204", http.StatusNoContent, "", ""},
		{"200 with Content-Length 0", http.StatusOK, "", "0"},
		{"202 with a body", http.StatusAccepted, `{"ok":true}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.length != "" {
					w.Header().Set("Content-Length", tt.length)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			c := testClient(t, Config{AllowPrivate: loopbackOnly}, nil, "")
			resp, err := c.Post(context.Background(), ts.URL+"/", nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != tt.status || resp.Body == nil || string(resp.Body) != tt.body || resp.Truncated {
				t.Errorf("status %d body %q (nil: %v) truncated %v, want %d %q", resp.Status, resp.Body, resp.Body == nil, resp.Truncated, tt.status, tt.body)
			}
		})
	}
}

func TestPostBodyCap(t *testing.T) {
	const total = 100 << 20
	tests := []struct {
		name      string
		maxBody   int64
		size      int
		wantLen   int
		truncated bool
	}{
		{"100 MB streamed", 0, total, DefaultMaxBody, true},
		{"exactly the cap", 0, DefaultMaxBody, DefaultMaxBody, false},
		{"one over the cap", 0, DefaultMaxBody + 1, DefaultMaxBody, true},
		{"small cap", 10, 11, 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			written := make(chan int64, 1)
			ts, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(tt.size))
				chunk := bytes.Repeat([]byte("x"), 32<<10)
				var n int64
				for n < int64(tt.size) {
					c := chunk[:min(len(chunk), tt.size-int(n))]
					m, err := w.Write(c)
					n += int64(m)
					if err != nil {
						break
					}
				}
				written <- n
			})
			c := testClient(t, Config{AllowPrivate: loopbackOnly, MaxBody: tt.maxBody}, nil, "")
			start := time.Now()
			resp, err := c.Post(context.Background(), ts.URL+"/", nil, nil)
			if err != nil {
				t.Fatalf("Post: %v", err)
			}
			if len(resp.Body) != tt.wantLen || resp.Truncated != tt.truncated {
				t.Fatalf("body %d bytes truncated=%v, want %d truncated=%v", len(resp.Body), resp.Truncated, tt.wantLen, tt.truncated)
			}
			if tt.size == total {
				// The connection was closed, not drained: the server's
				// writes fail long before 100 MB, and quickly.
				select {
				case n := <-written:
					if n >= total/2 {
						t.Errorf("server wrote %d bytes: the body was drained", n)
					}
					t.Logf("server wrote %d of %d bytes before the connection closed", n, total)
				case <-time.After(5 * time.Second):
					t.Fatal("server still writing 5s later: connection not closed")
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("took %v", d)
				}
			}
		})
	}
}

// tlsServer starts an HTTPS test server (HTTP/2 enabled) on 127.0.0.1.
// Its certificate is valid for example.com and *.example.com.
func tlsServer(t *testing.T, cfg *tls.Config, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	ts.EnableHTTP2 = true
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // expected handshake failures
	if cfg != nil {
		ts.TLS = cfg
	}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts, &n
}

// TestPostTLS uses https://example.com/ (port 443, as the rules demand),
// resolved by the fake DNS to 127.0.0.1 and dialled on the test server's
// port through the test-only dial override; see testClient.
func TestPostTLS(t *testing.T) {
	ts, hits := tlsServer(t, nil, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(r.Proto))
	})
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	emptyPool := x509.NewCertPool()
	dns := newFakeDNS(map[string][]string{"example.com": {"127.0.0.1"}, "hooks.example.com": {"127.0.0.1"}})
	port := portOf(t, ts.URL)

	tests := []struct {
		name    string
		roots   *x509.CertPool
		url     string
		wantErr string
	}{
		{"trusted test CA negotiates HTTP/2", pool, "https://example.com/hook", ""},
		{"subdomain", pool, "https://hooks.example.com/hook", ""},
		{"self-signed refused with system roots", nil, "https://example.com/hook", "certificate"},
		{"self-signed refused with a pool lacking it", emptyPool, "https://example.com/hook", "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := hits.Load()
			c := testClient(t, Config{AllowPrivate: loopbackOnly, RootCAs: tt.roots}, dns, port)
			resp, err := c.Post(context.Background(), tt.url, nil, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Post = %v, want error mentioning %q", err, tt.wantErr)
				}
				if errors.Is(err, ErrBlocked) {
					t.Errorf("TLS failure reported as blocked: %v", err)
				}
				if hits.Load() != before {
					t.Fatal("handler ran despite the bad certificate")
				}
				return
			}
			if err != nil {
				t.Fatalf("Post: %v", err)
			}
			if resp.Proto != "HTTP/2.0" || string(resp.Body) != "HTTP/2.0" {
				t.Fatalf("Proto = %q, server saw %q; want HTTP/2.0", resp.Proto, resp.Body)
			}
		})
	}
}

func TestPostTLSRules(t *testing.T) {
	dns := newFakeDNS(map[string][]string{"example.com": {"127.0.0.1"}})

	t.Run("TLS 1.1 server refused", func(t *testing.T) {
		ts, hits := tlsServer(t, &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, func(w http.ResponseWriter, r *http.Request) {})
		pool := x509.NewCertPool()
		pool.AddCert(ts.Certificate())
		c := testClient(t, Config{AllowPrivate: loopbackOnly, RootCAs: pool}, dns, portOf(t, ts.URL))
		_, err := c.Post(context.Background(), "https://example.com/", nil, nil)
		if err == nil || hits.Load() != 0 {
			t.Fatalf("Post = %v, hits %d; want a handshake failure", err, hits.Load())
		}
		t.Logf("refused: %v", err)
	})
	t.Run("https on 8443 refused before dialling", func(t *testing.T) {
		c := testClient(t, Config{AllowPrivate: loopbackOnly}, dns, "1")
		_, err := c.Post(context.Background(), "https://example.com:8443/", nil, nil)
		if !errors.Is(err, ErrBlocked) {
			t.Fatalf("Post = %v, want blocked", err)
		}
	})
	t.Run("connect-time check applies to TLS", func(t *testing.T) {
		ts, hits := tlsServer(t, nil, func(w http.ResponseWriter, r *http.Request) {})
		c := testClient(t, Config{}, dns, portOf(t, ts.URL))
		_, err := c.Post(context.Background(), "https://example.com/", nil, nil)
		if !errors.Is(err, ErrBlocked) || hits.Load() != 0 {
			t.Fatalf("Post = %v, hits %d; want blocked", err, hits.Load())
		}
	})
}

func TestPostBodyCapHTTP2(t *testing.T) {
	const total = 100 << 20
	written := make(chan int64, 1)
	ts, _ := tlsServer(t, nil, func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat([]byte("y"), 32<<10)
		var n int64
		for n < total {
			m, err := w.Write(chunk)
			n += int64(m)
			if err != nil {
				break
			}
		}
		written <- n
	})
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	dns := newFakeDNS(map[string][]string{"example.com": {"127.0.0.1"}})
	c := testClient(t, Config{AllowPrivate: loopbackOnly, RootCAs: pool}, dns, portOf(t, ts.URL))
	resp, err := c.Post(context.Background(), "https://example.com/", nil, nil)
	if err != nil {
		t.Fatalf("Post: %v", err)
	}
	if resp.Proto != "HTTP/2.0" || len(resp.Body) != DefaultMaxBody || !resp.Truncated {
		t.Fatalf("%s body %d bytes truncated=%v", resp.Proto, len(resp.Body), resp.Truncated)
	}
	select {
	case n := <-written:
		if n >= total/2 {
			t.Errorf("server wrote %d bytes: the stream was drained", n)
		}
		t.Logf("server wrote %d of %d bytes before the stream was reset", n, total)
	case <-time.After(5 * time.Second):
		t.Fatal("server still writing 5s later: stream not reset")
	}
}

// TestNumericHosts covers hosts that a C resolver (getaddrinfo, inet_aton)
// or a browser reads as IPv4 addresses. The guard must not depend on which
// resolver runs: CheckURL denies them before any lookup. Below that layer,
// should one reach the dialer anyway, Go's resolver either refuses an
// all-numeric name outright (it is not a valid domain name: "no such host",
// no query sent) or, for names like 0x7f.1, looks it up; here the fake DNS
// maps it to 127.0.0.1, as inet_aton would, and the Control check denies it.
func TestNumericHosts(t *testing.T) {
	hosts := []string{"2130706433", "0x7f000001", "0x7f.1", "0177.0.0.1", "127.1", "017700000001"}
	dnsHosts := map[string][]string{}
	for _, h := range hosts {
		dnsHosts[h] = []string{"127.0.0.1"}
	}
	dns := newFakeDNS(dnsHosts)
	c := testClient(t, Config{}, dns, "")
	for _, h := range hosts {
		t.Run(h, func(t *testing.T) {
			_, err := c.Post(context.Background(), "http://"+h+":8080/", nil, nil)
			var be *BlockedError
			if !errors.As(err, &be) || !strings.Contains(be.Reason, "numeric host") {
				t.Fatalf("Post = %v, want statically blocked", err)
			}
			if dns.queries.Load() != 0 {
				t.Fatal("the resolver was asked")
			}
			conn, err := c.dialContext(context.Background(), "tcp", net.JoinHostPort(h, "8080"))
			if err == nil {
				conn.Close()
				t.Fatal("dial succeeded")
			}
			var dnsErr *net.DNSError
			switch {
			case errors.As(err, &be) && strings.Contains(be.Reason, "loopback"):
				t.Logf("resolved and denied at connect time: %v", err)
			case errors.As(err, &dnsErr) && dnsErr.IsNotFound && dns.queries.Load() == 0:
				t.Logf("Go's resolver refused the name without a query: %v", err)
			default:
				t.Fatalf("dial = %v, want the Control check to deny loopback or the resolver to refuse the name", err)
			}
			dns.queries.Store(0)
		})
	}
}

func TestPostHeaderLimit(t *testing.T) {
	ts, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Big", strings.Repeat("h", 100<<10))
	})
	c := testClient(t, Config{AllowPrivate: loopbackOnly}, nil, "")
	_, err := c.Post(context.Background(), ts.URL+"/", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "header") {
		t.Fatalf("Post = %v, want a response header size error", err)
	}
}
