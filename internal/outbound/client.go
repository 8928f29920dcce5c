package outbound

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// maxResponseHeaderBytes bounds the response headers like MaxBody bounds
// the body.
const maxResponseHeaderBytes = 64 << 10

// Client sends requests to user-supplied URLs under the outbound rules. It
// is safe for concurrent use and keeps connections alive between requests.
type Client struct {
	allow     []netip.Prefix
	userAgent string
	timeout   time.Duration
	maxBody   int64
	check     Config // for CheckURL: AllowPrivate only

	dialer    *net.Dialer
	transport *http.Transport
	http      *http.Client

	// dialAddr, when non-nil, rewrites the host:port about to be dialled.
	// Only tests in this package set it, to reach an https test server on
	// 127.0.0.1:<random port> for a URL on port 443 (an unprivileged test
	// cannot listen on 443). The rewritten address still goes through the
	// Control check. Production code cannot set it: it is unexported and
	// NewClient leaves it nil.
	dialAddr func(addr string) string
}

// Response is the answer to one request.
type Response struct {
	Status int
	// Header is the response header as received. It may hold secrets
	// (cookies, tokens, the raw Location): do not log it wholesale.
	Header http.Header
	// Body holds at most Config.MaxBody bytes of the body.
	Body []byte
	// Truncated reports that the body was longer than MaxBody; the rest was
	// not read (the connection was closed instead).
	Truncated bool
	// Location is the redirect target of a 3xx answer, resolved against the
	// request URL and redacted (no query, no userinfo), so it can be logged.
	// Redirects are never followed. Empty for other answers.
	Location string
	// Latency runs from sending the request to the end of reading the body.
	Latency time.Duration
	// RemoteAddr is the ip:port the request went to.
	RemoteAddr string
	// Proto is the protocol of the answer, "HTTP/1.1" or "HTTP/2.0".
	Proto string
}

// NewClient returns a Client for cfg. It fails when the configuration is
// out of bounds: a negative or too long Timeout, a negative MaxBody, an
// invalid prefix or one ParseCIDRs refuses (/0, an IPv4-embedding IPv6
// form), or a User-Agent that is not a valid header value.
func NewClient(cfg Config) (*Client, error) {
	timeout := cfg.Timeout
	switch {
	case timeout == 0:
		timeout = DefaultTimeout
	case timeout < 0:
		return nil, fmt.Errorf("outbound: timeout %v is negative", timeout)
	case timeout > MaxTimeout:
		return nil, fmt.Errorf("outbound: timeout %v is longer than the maximum %v", timeout, MaxTimeout)
	}
	maxBody := cfg.MaxBody
	switch {
	case maxBody == 0:
		maxBody = DefaultMaxBody
	case maxBody < 0:
		return nil, fmt.Errorf("outbound: max body %d is negative", maxBody)
	}
	allow := make([]netip.Prefix, 0, len(cfg.AllowPrivate))
	for _, p := range cfg.AllowPrivate {
		if !p.IsValid() {
			return nil, fmt.Errorf("outbound: allowed prefix %v is invalid", p)
		}
		p = p.Masked()
		if why := allowProblem(p); why != "" {
			return nil, fmt.Errorf("outbound: allowed prefix %v %s", p, why)
		}
		allow = append(allow, p)
	}
	if !httpguts.ValidHeaderFieldValue(cfg.UserAgent) {
		return nil, errors.New("outbound: user agent is not a valid header value")
	}

	c := &Client{
		allow:     allow,
		userAgent: cfg.UserAgent,
		timeout:   timeout,
		maxBody:   maxBody,
		check:     Config{AllowPrivate: allow},
	}
	c.dialer = &net.Dialer{
		Timeout:   timeout,
		KeepAlive: 30 * time.Second,
		Control:   c.control,
	}
	c.transport = &http.Transport{
		Proxy:       nil, // never from the environment
		DialContext: c.dialContext,
		TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			RootCAs:    cfg.RootCAs, // nil: system roots
		},
		ForceAttemptHTTP2:      true,
		DisableCompression:     true,
		TLSHandshakeTimeout:    timeout,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    16,
		IdleConnTimeout:        90 * time.Second,
	}
	c.http = &http.Client{
		Transport: c.transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return c, nil
}

// CloseIdleConnections closes the kept-alive connections.
func (c *Client) CloseIdleConnections() { c.transport.CloseIdleConnections() }

// dialContext dials addr; the Control hook checks the resolved address.
func (c *Client) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if c.dialAddr != nil {
		addr = c.dialAddr(addr)
	}
	return c.dialer.DialContext(ctx, network, addr)
}

// control runs after the socket is created and before it connects, with
// the address actually being dialled: the one place where DNS rebinding
// cannot get around the check.
func (c *Client) control(network, address string, _ syscall.RawConn) error {
	if network != "tcp4" && network != "tcp6" {
		return &BlockedError{Reason: "connect-time check: network " + strconv.Quote(network) + " is not allowed"}
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &BlockedError{Reason: "connect-time check: cannot parse dialled address " + strconv.Quote(address)}
	}
	if err := c.checkDialled(ap.Addr()); err != nil {
		return &BlockedError{Reason: "connect-time check: " + err.(*BlockedError).Reason}
	}
	return nil
}

// dialledAddr is the address a connection to the resolved address ip goes
// to. net.Dialer connects to an IPv4-mapped result (::ffff:a.b.c.d, from an
// AAAA record or /etc/hosts) over IPv4, as a.b.c.d, and hands Control the
// IPv4 address; a tcp6 socket given the mapped form would reach the same
// IPv4 host. So the mapped form is judged as the IPv4 address.
func dialledAddr(ip netip.Addr) netip.Addr { return ip.Unmap() }

// checkDialled is the connect-time rule for one address, shared by Control
// and Resolve so that check-url's verdict is the one a delivery gets.
func (c *Client) checkDialled(ip netip.Addr) error {
	return CheckIP(dialledAddr(ip), c.allow)
}

// Verdict is the guard's judgement of one address a host resolves to.
type Verdict struct {
	// Addr is the address as it is dialled (see Resolve).
	Addr netip.Addr
	// Err is nil when a connection to Addr is allowed, else a
	// *BlockedError whose Reason says why not.
	Err error
}

// Resolve looks host up with the resolver the client dials with and judges
// each address as the connect-time check will when it is dialled, with the
// client's allow-list: an IPv4-mapped result is judged (and returned) as
// its IPv4 address, since that is what is connected to. An IP literal is
// judged without a lookup, as the dialer does. The addresses come in the
// resolver's order. A lookup failure is returned wrapped (it wraps the
// *net.DNSError), never as a BlockedError.
//
// A connection tries the addresses in turn and the check refuses each
// denied one before connecting, so a host with one allowed address is
// delivered to, and only to allowed addresses; see Check.
func (c *Client) Resolve(ctx context.Context, host string) ([]Verdict, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []Verdict{{Addr: dialledAddr(ip), Err: c.checkDialled(ip)}}, nil
	}
	r := c.dialer.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("outbound: resolve %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("outbound: resolve %s: %w", host, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true})
	}
	out := make([]Verdict, len(addrs))
	for i, a := range addrs {
		out[i] = Verdict{Addr: dialledAddr(a), Err: c.checkDialled(a)}
	}
	return out, nil
}

// CheckResult is what Check found.
type CheckResult struct {
	// URL is the normalised URL, as Post requests it.
	URL *url.URL
	// Addrs are the verdicts on each address of the URL's host (one for
	// an IP literal). Nil when the URL is refused before any lookup, or
	// the lookup fails.
	Addrs []Verdict
}

// Check gives the verdict Post would reach for rawURL, without connecting:
// the static rules of CheckURL with the client's allow-list, then Resolve
// on the host. It returns nil when a request would be allowed to connect
// (at least one address is allowed: a connection never goes to a denied
// one); the URL's *BlockedError when it is refused statically; a
// *BlockedError with the first address's reason when every address is
// denied (the reason Post reports, after "connect-time check: "); or the
// wrapped resolver error. The result is nil only for a statically refused
// URL.
//
// It is a verdict at one moment: a name may resolve differently when a
// delivery dials it, which is why every connection is checked again.
func (c *Client) Check(ctx context.Context, rawURL string) (*CheckResult, error) {
	u, err := c.check.CheckURL(rawURL)
	if err != nil {
		return nil, err
	}
	res := &CheckResult{URL: u}
	vs, err := c.Resolve(ctx, u.Hostname())
	if err != nil {
		return res, err
	}
	res.Addrs = vs
	for _, v := range vs {
		if v.Err == nil {
			return res, nil
		}
	}
	return res, &BlockedError{URL: Redact(u.String()), Reason: vs[0].Err.(*BlockedError).Reason}
}

// Post sends one POST of body to rawURL with header (cloned; User-Agent set
// from the Config when header has none).
//
// A 3xx is NOT followed: it is returned as a Response with Location set, not
// as an error. Any status is a Response; judging it is the caller's job.
//
// Errors: a *BlockedError (errors.Is(err, ErrBlocked)) when the URL or the
// dialled address is denied; this is final, never retry it. Otherwise the
// transport error, wrapped: timeouts satisfy errors.Is(err,
// context.DeadlineExceeded) and are net.Errors whose Timeout() is true. A
// name that does not resolve, or a resolver failure, means no connection
// is made (fail closed); the error wraps the *net.DNSError and is not a
// BlockedError, since DNS trouble can be transient. A failure while reading
// the body after the status arrived returns the Response read so far
// together with the error. No error contains the URL's query or userinfo,
// nor a header value.
func (c *Client) Post(ctx context.Context, rawURL string, header http.Header, body []byte) (*Response, error) {
	u, err := c.check.CheckURL(rawURL)
	if err != nil {
		return nil, err
	}
	target := u.String() // redacted only for an error: Redact parses it again

	// Bound the request by the client's timeout, unless ctx already ends
	// sooner (the delivery engine gives each attempt its trigger's
	// deadline): a second timer would never fire first.
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > c.timeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}

	var remote string
	trace := &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			remote = info.Conn.RemoteAddr().String()
		},
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("outbound: build request for %s: %w", Redact(target), errors.New(parseProblem(err)))
	}
	req.Header = header.Clone()
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	if c.userAgent != "" && len(req.Header.Values("User-Agent")) == 0 {
		req.Header.Set("User-Agent", c.userAgent)
	}

	start := time.Now()
	hr, err := c.http.Do(req)
	if err != nil {
		return nil, c.wrapErr(ctx, "POST", Redact(target), err)
	}
	defer hr.Body.Close()

	resp := &Response{
		Status:     hr.StatusCode,
		Header:     hr.Header,
		RemoteAddr: remote,
		Proto:      hr.Proto,
	}
	if hr.StatusCode >= 300 && hr.StatusCode < 400 {
		if loc := hr.Header.Get("Location"); loc != "" {
			resp.Location = redactLocation(u, loc)
		}
	}
	// Read one byte past the cap to tell a body of exactly MaxBody bytes
	// from a longer one; closing the body before EOF closes the connection
	// (HTTP/1) or resets the stream (HTTP/2) instead of draining it.
	data := []byte{}
	if hr.Body != http.NoBody { // net/http's body of a 204, 304 or Content-Length: 0
		data, err = io.ReadAll(io.LimitReader(hr.Body, c.maxBody+1))
	}
	if int64(len(data)) > c.maxBody {
		data = data[:c.maxBody]
		resp.Truncated = true
	}
	resp.Body = data
	resp.Latency = time.Since(start)
	if err != nil {
		return resp, c.wrapErr(ctx, "read response from", Redact(target), err)
	}
	return resp, nil
}

// redactLocation resolves a Location header against the request URL and
// redacts it.
func redactLocation(base *url.URL, loc string) string {
	ref, err := base.Parse(loc)
	if err != nil {
		return redactByHand(loc)
	}
	return Redact(ref.String())
}

// wrapErr turns a net/http error into the package's errors. *url.Error is
// dropped because its message holds the full URL, query included.
func (c *Client) wrapErr(ctx context.Context, op, redacted string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var blocked *BlockedError
	if errors.As(err, &blocked) {
		return &BlockedError{URL: redacted, Reason: blocked.Reason}
	}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		err = fmt.Errorf("%w: %w", ctxErr, err)
	}
	return &requestError{op: op, url: redacted, err: err}
}

// requestError is a transport failure of one request. It is a net.Error so
// that callers can ask Timeout() directly.
type requestError struct {
	op  string
	url string // redacted
	err error
}

func (e *requestError) Error() string {
	return "outbound: " + e.op + " " + e.url + ": " + e.err.Error()
}
func (e *requestError) Unwrap() error { return e.err }

// Timeout reports whether the request ran out of time.
func (e *requestError) Timeout() bool {
	if errors.Is(e.err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(e.err, &ne) && ne.Timeout()
}

// Temporary is part of net.Error; it means the same as Timeout here.
func (e *requestError) Temporary() bool { return e.Timeout() }
