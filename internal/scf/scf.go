// Package scf adapts regtrigger to Tencent Cloud's Serverless Cloud Function
// platform (SCF), on github.com/tencentyun/scf-go-lib: API Gateway trigger
// events to the receiver's Endpoint and back, a timer-triggered dispatcher
// that drains the SQS queue with the same Pool `regtrigger serve` runs, and
// JSON logs carrying SCF's request id.
//
// The functions' SCF entry points (functions/*/main_scf.go, build tag scf)
// only wire these to config and the adapters of internal/cloud. See
// docs/tencent-scf.md for the deployment and its trade-offs.
package scf

import (
	"context"
	"io"
	"log/slog"

	"github.com/tencentyun/scf-go-lib/functioncontext"
)

// NewLogger returns a JSON logger writing to w (stdout on SCF, which ships
// it to CLS) that adds the invocation's requestId to every line logged with
// its context.
func NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(&logHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})})
}

type logHandler struct{ slog.Handler }

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("requestId", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logHandler{h.Handler.WithAttrs(attrs)}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	return &logHandler{h.Handler.WithGroup(name)}
}

// RequestID is the SCF invocation's request id, or "".
func RequestID(ctx context.Context) string {
	if fc, ok := functioncontext.FromContext(ctx); ok {
		return fc.RequestID
	}
	return ""
}
