package receiver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/regtrigger/regtrigger/internal/auth"
	"github.com/regtrigger/regtrigger/internal/registry"
)

// Endpoint is the receiver's HTTP face, independent of how the request
// arrived (net/http for serve, a Lambda Function URL or API Gateway event, an
// SCF API Gateway event):
//
//	POST    /v1/notify           format detected from the body ("/" too, for a bare function URL)
//	POST    /v1/notify/{source}  format forced
//	OPTIONS the same paths       the CloudEvents webhook validation handshake (Azure Event Grid)
//	GET     /healthz             200 when the store answers
//	GET     /                    a short JSON index of these endpoints, for a person with a browser
//
// Every refusal is logged with the request id, the client's address where
// the adapter knows it, the status and why.
// A notification is authenticated on its raw body (signatures) before
// anything parses it. An Azure Event Grid subscription-validation event is
// answered after authentication instead of being parsed into events. Every
// platform adapter builds an Inbound and sends back the Response, headers
// included, so the answers are the same everywhere.
type Endpoint struct {
	Service *Service
	Auth    *auth.Authenticator
	// Health reports whether the store and queue answer; nil means healthy.
	Health func(ctx context.Context) error
}

// Inbound is one HTTP request as a platform delivered it.
type Inbound struct {
	ID     string // the platform's request id; "" makes one
	Method string
	Path   string
	Header http.Header
	Query  url.Values
	// Body is the request body; a body over MaxBody must be passed with
	// TooLarge set instead (adapters should not read more than MaxBody+1).
	Body     []byte
	TooLarge bool
	// Loopback is true when the client is on this machine (never on a cloud platform).
	Loopback bool
	// Remote is the client's address as the platform saw it, for the log
	// lines ("" when unknown).
	Remote string
}

// allowNotify is the Allow header of the notification paths.
var allowNotify = http.Header{"Allow": {"POST, OPTIONS"}}

// Handle answers one request.
func (e *Endpoint) Handle(ctx context.Context, in Inbound) Response {
	if in.ID == "" {
		in.ID = newRequestID()
	}
	log := requestLog{l: e.Service.logger(), id: in.ID, remote: in.Remote}
	path := strings.TrimSuffix(in.Path, "/")
	// Paths and methods nothing answers are refused at Info: browsers and
	// scanners send them, registries do not.
	turnAway := func(resp Response, why string) Response {
		log.LogAttrs(ctx, slog.LevelInfo, "request refused", slog.Int("status", resp.Status), slog.String("method", in.Method),
			slog.String("path", in.Path), slog.String("error", why))
		return resp
	}
	const notifyHere = "post notifications to /v1/notify or /v1/notify/{source}"
	switch {
	case path == "/healthz":
		if in.Method != http.MethodGet && in.Method != http.MethodHead {
			return turnAway(ErrorResponse(http.StatusMethodNotAllowed, "method not allowed", "use GET"), "/healthz answers GET")
		}
		return e.health(ctx)
	case path == "" && (in.Method == http.MethodGet || in.Method == http.MethodHead):
		return Response{Status: http.StatusOK, Body: index}
	case path == "" || path == "/v1/notify" || strings.HasPrefix(path, "/v1/notify/"):
	default:
		return turnAway(ErrorResponse(http.StatusNotFound, "not found", notifyHere), "no such path")
	}
	if in.Method != http.MethodPost && in.Method != http.MethodOptions {
		resp := ErrorResponse(http.StatusMethodNotAllowed, "method not allowed", "registries POST notifications")
		resp.Header = allowNotify.Clone()
		return turnAway(resp, "the notification paths answer POST and OPTIONS")
	}
	source := strings.TrimPrefix(strings.TrimPrefix(path, "/v1/notify"), "/")
	if strings.Contains(source, "/") {
		return turnAway(ErrorResponse(http.StatusNotFound, "not found", notifyHere), "no such path")
	}
	if in.Header == nil {
		in.Header = http.Header{}
	}
	tooLarge := in.TooLarge || len(in.Body) > MaxBody
	reg, err := e.Auth.Check(auth.Credentials{Header: in.Header, Query: in.Query, Body: in.Body, Loopback: in.Loopback})
	// A signature cannot match a body that was cut (or not passed) for
	// being too large: that is a 413, not a 401 that would send the
	// operator after a secret that is fine. Without a well-formed signature
	// the request is refused as unauthenticated first, as for tokens.
	if err != nil && !(tooLarge && errors.Is(err, auth.ErrBadSignature)) {
		return refuse(ctx, log, err)
	}
	if tooLarge {
		log.sender = reg.Name
		log.LogAttrs(ctx, slog.LevelWarn, "notification refused", slog.Int("status", http.StatusRequestEntityTooLarge),
			slog.String("error", "the body is larger than 1 MiB, the most a notification may be"))
		return ErrorResponse(http.StatusRequestEntityTooLarge, "body too large", "a notification may be at most 1 MiB")
	}
	log.sender = reg.Name
	log.LogAttrs(ctx, slog.LevelDebug, "sender authenticated", slog.String("scheme", string(reg.Scheme)))
	if in.Method == http.MethodOptions {
		return webhookValidation(ctx, log, in.Header)
	}
	if answer, ok := registry.Handshake(registry.Notification{Body: in.Body, Header: in.Header}); ok {
		log.LogAttrs(ctx, slog.LevelInfo, "event grid subscription validated")
		return Response{Status: http.StatusOK, Body: answer}
	}
	if source == "" {
		source = reg.Source
	}
	return e.Service.Receive(ctx, Request{ID: in.ID, Body: in.Body, Header: in.Header, Source: source, Sender: reg.Name, Remote: in.Remote, MaxAge: e.maxAge(reg)})
}

// index is the answer to GET /: what this is and where to post.
var index = []byte(`{"service":"regtrigger","endpoints":{` +
	`"POST /v1/notify":"a registry notification; the format is detected from the body",` +
	`"POST /v1/notify/{source}":"a notification in the named format (tcr, harbor, acr, dockerhub, distribution, quay, azure, ecr, ghcr, jfrog, nexus, gar)",` +
	`"GET /healthz":"200 when the store answers"},` +
	`"docs":"https://github.com/regtrigger/regtrigger#configuring-registries"}`)

// refuse answers a request that failed authentication: 403 in loopback-only
// mode (no credential could help), else 401. The message names the header
// and what was wrong; it never holds a secret or the presented value.
func refuse(ctx context.Context, log requestLog, err error) Response {
	status := http.StatusUnauthorized
	if errors.Is(err, auth.ErrLoopbackOnly) {
		status = http.StatusForbidden
	}
	log.LogAttrs(ctx, slog.LevelWarn, "notification refused", slog.Int("status", status), slog.String("error", err.Error()))
	resp := ErrorResponse(status, http.StatusText(status), err.Error())
	if status == http.StatusUnauthorized {
		resp.Header = http.Header{"Www-Authenticate": {`Bearer realm="regtrigger"`}}
	}
	return resp
}

// maxAge is the event-age bound of a request from reg: for the signature
// schemes the registry's own max age, by default the dedupe window, so a
// replayed body is a duplicate within the window and refused after it;
// nothing for tokens, which do not cover the body.
func (e *Endpoint) maxAge(reg auth.Registry) time.Duration {
	switch {
	case !reg.Scheme.Signed(), reg.MaxAge == auth.MaxAgeOff:
		return 0
	case reg.MaxAge > 0:
		return reg.MaxAge
	}
	return e.Service.window()
}

// maxOrigin bounds the WebHook-Request-Origin echoed back (a host name).
const maxOrigin = 255

// webhookValidation answers the CloudEvents webhook validation handshake
// (CloudEvents HTTP Webhook spec, section 4; Azure Event Grid's CloudEvents
// schema): an OPTIONS request naming the sender in WebHook-Request-Origin
// gets 200 with that origin in WebHook-Allowed-Origin and no rate limit. It
// runs after authentication, so only a sender holding a token can make
// regtrigger agree to receive its events; Event Grid keeps the endpoint
// URL, ?token= included, for this request. The optional
// WebHook-Request-Callback is ignored: the answer is given at once, and
// regtrigger never fetches a URL a request names.
func webhookValidation(ctx context.Context, log requestLog, h http.Header) Response {
	origin := strings.TrimSpace(h.Get("WebHook-Request-Origin"))
	if origin == "" {
		resp := ErrorResponse(http.StatusBadRequest, "not a webhook validation request",
			"OPTIONS is the CloudEvents webhook handshake: send WebHook-Request-Origin; notifications are POSTed")
		resp.Header = allowNotify.Clone()
		return resp
	}
	if len(origin) > maxOrigin || strings.ContainsFunc(origin, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return ErrorResponse(http.StatusBadRequest, "bad WebHook-Request-Origin",
			"want a host name such as eventgrid.azure.net: visible ASCII characters, at most 255")
	}
	log.LogAttrs(ctx, slog.LevelInfo, "webhook validation answered", slog.String("origin", origin))
	return Response{
		Status: http.StatusOK,
		Header: http.Header{
			"Webhook-Allowed-Origin": {origin},
			"Webhook-Allowed-Rate":   {"*"},
			"Allow":                  {"POST, OPTIONS"},
		},
		Body: []byte(`{"status":"ok"}`),
	}
}

func (e *Endpoint) health(ctx context.Context) Response {
	if e.Health != nil {
		if err := e.Health(ctx); err != nil {
			return ErrorResponse(http.StatusServiceUnavailable, "unhealthy", err.Error())
		}
	}
	return Response{Status: http.StatusOK, Body: []byte(`{"status":"ok"}`)}
}

// ServeHTTP adapts the Endpoint to net/http (`regtrigger serve`).
func (e *Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	in := Inbound{Method: r.Method, Path: r.URL.Path, Header: r.Header, Loopback: isLoopback(r.RemoteAddr), Remote: r.RemoteAddr}
	if r.URL.RawQuery != "" { // most registries send none: no empty map to make
		in.Query = r.URL.Query()
	}
	if r.Method == http.MethodPost {
		body, err := readBody(r.Body, r.ContentLength)
		if err != nil {
			e.Service.logger().LogAttrs(r.Context(), slog.LevelWarn, "notification refused", slog.String("remote", r.RemoteAddr),
				slog.Int("status", http.StatusBadRequest), slog.String("error", "read the body: "+err.Error()))
			write(w, ErrorResponse(http.StatusBadRequest, "read body", err.Error()))
			return
		}
		in.Body, in.TooLarge = body, len(body) > MaxBody
	}
	write(w, e.Handle(r.Context(), in))
}

// readBody reads a request body up to MaxBody bytes and one more, which
// tells a body over the limit. declared is the request's Content-Length
// (-1 when unknown): when it is within the limit the buffer is made that
// size at once (plus the byte that finds the end without growing it),
// one allocation instead of io.ReadAll's growing chunks and final copy.
// The body is read to its end either way; declared only sizes the buffer.
func readBody(r io.Reader, declared int64) ([]byte, error) {
	size := int64(512)
	if declared >= 0 && declared <= MaxBody {
		size = declared + 1
	}
	buf := make([]byte, 0, size)
	lr := io.LimitedReader{R: r, N: MaxBody + 1}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // grow
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func write(w http.ResponseWriter, resp Response) {
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.Status)
	_, _ = w.Write(append(resp.Body, '\n'))
}

func isLoopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// newRequestID returns a random id for logs and answers.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:])
}
