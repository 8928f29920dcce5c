package receiver

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/record"
)

// dropTime is a ReplaceAttr that leaves the time out of log lines, so
// that tests can compare them.
func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// attrLogger is what *slog.Logger and requestLog have in common.
type attrLogger interface {
	LogAttrs(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr)
}

// TestRequestLog checks that requestLog writes the lines a logger made
// with Logger.With(request_id, sender) writes, byte for byte, in both
// handler formats, for plain lines and for records.
func TestRequestLog(t *testing.T) {
	noTime := &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: dropTime}
	handlers := map[string]func(*bytes.Buffer) slog.Handler{
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, noTime) },
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, noTime) },
	}
	rec := record.UntriggeredRecord("tsk_1", "deploy", event.Event{Source: "tcr", Action: event.PushImage, Namespace: "public", Repository: "nginx", Tag: "v1"},
		"tag \"v1\" does not match \"v2\"", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	tests := []struct {
		name   string
		sender string
		write  func(ctx context.Context, l attrLogger)
		record bool
	}{
		{name: "before authentication", write: func(ctx context.Context, l attrLogger) {
			l.LogAttrs(ctx, slog.LevelWarn, "notification refused", slog.Int("status", 401), slog.String("error", "no credentials"))
		}},
		{name: "with a sender, many attributes", sender: "harbor", write: func(ctx context.Context, l attrLogger) {
			l.LogAttrs(ctx, slog.LevelInfo, "notification accepted", slog.String("source", "tcr"), slog.Int("events", 1), slog.Int("tasks", 3),
				slog.String("a", "x\"y"), slog.Bool("b", true), slog.Duration("c", time.Second))
		}},
		{name: "below the level", sender: "harbor", write: func(ctx context.Context, l attrLogger) {
			l.LogAttrs(ctx, slog.LevelDebug-1, "dropped")
		}},
		{name: "record", sender: "harbor", record: true},
		{name: "record before authentication", record: true},
	}
	for hname, mk := range handlers {
		for _, tt := range tests {
			t.Run(hname+"/"+tt.name, func(t *testing.T) {
				ctx := context.Background()
				var want, got bytes.Buffer
				with := slog.New(mk(&want)).With(slog.String("request_id", "req_1"))
				if tt.sender != "" {
					with = with.With(slog.String("sender", tt.sender))
				}
				rl := requestLog{l: slog.New(mk(&got)), id: "req_1", sender: tt.sender}
				if tt.record {
					record.Log(ctx, with, rec)
					rl.Record(ctx, rec)
				} else {
					tt.write(ctx, with)
					tt.write(ctx, rl)
				}
				if got.String() != want.String() {
					t.Errorf("got  %s\nwant %s", got.String(), want.String())
				}
			})
		}
	}
}

// TestRequestLogSource checks that a line's source is the caller of
// requestLog.LogAttrs, not the helper.
func TestRequestLogSource(t *testing.T) {
	var b bytes.Buffer
	rl := requestLog{l: slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{AddSource: true})), id: "req_1"}
	rl.LogAttrs(context.Background(), slog.LevelInfo, "hello")
	if !strings.Contains(b.String(), "log_test.go:") {
		t.Errorf("source is not the caller: %s", b.String())
	}
}
