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

	"github.com/regtrigger/regtrigger/internal/auth"
)

// Endpoint is the receiver's HTTP face, independent of how the request
// arrived (net/http for serve, a Lambda Function URL or API Gateway event, an
// SCF API Gateway event):
//
//	POST /v1/notify           format detected from the body ("/" too, for a bare function URL)
//	POST /v1/notify/{source}  format forced
//	GET  /healthz             200 when the store answers
//
// Every platform adapter builds an Inbound and sends back the Response, so
// the answers are the same everywhere.
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
}

// Handle answers one request.
func (e *Endpoint) Handle(ctx context.Context, in Inbound) Response {
	if in.ID == "" {
		in.ID = newRequestID()
	}
	log := e.Service.logger().With(slog.String("request_id", in.ID))
	path := strings.TrimSuffix(in.Path, "/")
	switch {
	case path == "/healthz":
		if in.Method != http.MethodGet && in.Method != http.MethodHead {
			return ErrorResponse(http.StatusMethodNotAllowed, "method not allowed", "use GET")
		}
		return e.health(ctx)
	case path == "" || path == "/v1/notify" || strings.HasPrefix(path, "/v1/notify/"):
	default:
		return ErrorResponse(http.StatusNotFound, "not found", "post notifications to /v1/notify or /v1/notify/{source}")
	}
	if in.Method != http.MethodPost {
		return ErrorResponse(http.StatusMethodNotAllowed, "method not allowed", "registries POST notifications")
	}
	source := strings.TrimPrefix(strings.TrimPrefix(path, "/v1/notify"), "/")
	if strings.Contains(source, "/") {
		return ErrorResponse(http.StatusNotFound, "not found", "post notifications to /v1/notify or /v1/notify/{source}")
	}
	if in.Header == nil {
		in.Header = http.Header{}
	}
	reg, err := e.Auth.Check(auth.Credentials{Header: in.Header, Query: in.Query, Loopback: in.Loopback})
	if err != nil {
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
	if in.TooLarge || len(in.Body) > MaxBody {
		log.LogAttrs(ctx, slog.LevelWarn, "notification refused", slog.Int("status", http.StatusRequestEntityTooLarge))
		return ErrorResponse(http.StatusRequestEntityTooLarge, "body too large", "a notification may be at most 1 MiB")
	}
	if source == "" {
		source = reg.Source
	}
	return e.Service.Receive(ctx, Request{ID: in.ID, Body: in.Body, Header: in.Header, Source: source, Sender: reg.Name})
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
	in := Inbound{Method: r.Method, Path: r.URL.Path, Header: r.Header, Query: r.URL.Query(), Loopback: isLoopback(r.RemoteAddr)}
	if r.Method == http.MethodPost {
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
		if err != nil {
			write(w, ErrorResponse(http.StatusBadRequest, "read body", err.Error()))
			return
		}
		in.Body, in.TooLarge = body, len(body) > MaxBody
	}
	write(w, e.Handle(r.Context(), in))
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
