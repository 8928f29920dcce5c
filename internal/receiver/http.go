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

	"github.com/regtrigger/regtrigger/internal/auth"
)

// HTTPHandler serves the receiver over plain HTTP (`regtrigger serve`):
//
//	POST /v1/notify           format detected from the body
//	POST /v1/notify/{source}  format forced
//	GET  /healthz             200 when the store answers
type HTTPHandler struct {
	Service *Service
	Auth    *auth.Authenticator
	// Health reports whether the store and queue answer; nil means healthy.
	Health func(ctx context.Context) error
}

// Routes returns the handler's mux.
func (h *HTTPHandler) Routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/notify", h.notify)
	mux.HandleFunc("POST /v1/notify/{source}", h.notify)
	mux.HandleFunc("GET /healthz", h.health)
	return mux
}

func (h *HTTPHandler) notify(w http.ResponseWriter, r *http.Request) {
	id := newRequestID()
	ctx := r.Context()
	log := h.Service.logger().With(slog.String("request_id", id))
	reg, err := h.Auth.Check(auth.Credentials{Header: r.Header, Query: r.URL.Query(), Loopback: isLoopback(r.RemoteAddr)})
	if err != nil {
		status := http.StatusUnauthorized
		if errors.Is(err, auth.ErrLoopbackOnly) {
			status = http.StatusForbidden
		}
		log.LogAttrs(ctx, slog.LevelWarn, "notification refused", slog.Int("status", status), slog.String("error", err.Error()), slog.String("client", r.RemoteAddr))
		w.Header().Set("WWW-Authenticate", `Bearer realm="regtrigger"`)
		write(w, ErrorResponse(status, http.StatusText(status), err.Error()))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			log.LogAttrs(ctx, slog.LevelWarn, "notification refused", slog.Int("status", http.StatusRequestEntityTooLarge))
			write(w, ErrorResponse(http.StatusRequestEntityTooLarge, "body too large", "a notification may be at most 1 MiB"))
			return
		}
		write(w, ErrorResponse(http.StatusBadRequest, "read body", err.Error()))
		return
	}
	source := r.PathValue("source")
	if source == "" {
		source = reg.Source
	}
	write(w, h.Service.Receive(ctx, Request{ID: id, Body: body, Header: r.Header, Source: source, Sender: reg.Name}))
}

func (h *HTTPHandler) health(w http.ResponseWriter, r *http.Request) {
	if h.Health != nil {
		if err := h.Health(r.Context()); err != nil {
			write(w, ErrorResponse(http.StatusServiceUnavailable, "unhealthy", err.Error()))
			return
		}
	}
	write(w, Response{Status: http.StatusOK, Body: []byte(`{"status":"ok"}`)})
}

func write(w http.ResponseWriter, resp Response) {
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
