package record

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/event"
)

func TestLog(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ev := event.Event{Source: "tcr", Action: event.PushImage, Namespace: "public", Repository: "nginx", Tag: "v1"}
	full := FromEvent("tsk_1", "deploy", ev)
	full.Target, full.Status, full.HTTPStatus, full.Latency, full.Attempt = "hooks.example.com", Retrying, 503, 1500*time.Microsecond, 2
	full.ErrorClass, full.Error, full.Location, full.Reason, full.NextAttemptAt, full.Time = ClassHTTP5xx, "HTTP 503", "https://x.example.com/y", "r", at, at
	success := FromEvent("tsk_2", "deploy", ev)
	success.Status, success.HTTPStatus = Success, 204
	tests := []struct {
		name  string
		rec   Record
		level slog.Level
		attrs []slog.Attr
		want  string
	}{
		{
			name: "every field", rec: full, level: slog.LevelDebug,
			want: `level=INFO msg=delivery task_id=tsk_1 trigger=deploy source=tcr action=pushImage namespace=public repository=nginx tag=v1 ` +
				`target=hooks.example.com status=retrying http_status=503 latency_ms=1.5 attempt=2 error_class=http_5xx error="HTTP 503" ` +
				`location=https://x.example.com/y reason=r next_attempt_at=2026-01-02T03:04:05.000Z` + "\n",
		},
		{
			name: "leading attributes", rec: success, level: slog.LevelInfo, attrs: []slog.Attr{slog.String("request_id", "req_1"), slog.String("sender", "harbor")},
			want: `level=INFO msg=delivery request_id=req_1 sender=harbor task_id=tsk_2 trigger=deploy source=tcr action=pushImage namespace=public repository=nginx tag=v1 status=success http_status=204` + "\n",
		},
		{
			name: "untriggered is a debug line", rec: UntriggeredRecord("tsk_3", "other", ev, "tag not matched", at), level: slog.LevelDebug,
			want: `level=DEBUG msg=untriggered task_id=tsk_3 trigger=other source=tcr action=pushImage namespace=public repository=nginx tag=v1 status=untriggered reason="tag not matched"` + "\n",
		},
		{
			name: "untriggered dropped at info", rec: UntriggeredRecord("tsk_3", "other", ev, "tag not matched", at), level: slog.LevelInfo,
			attrs: []slog.Attr{slog.String("request_id", "req_1")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			l := slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: tt.level, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}}))
			Log(context.Background(), l, tt.rec, tt.attrs...)
			if b.String() != tt.want {
				t.Errorf("got  %s\nwant %s", b.String(), tt.want)
			}
			// Attrs and AppendAttrs agree, and AppendAttrs keeps what dst held.
			dst := tt.rec.AppendAttrs([]slog.Attr{slog.String("first", "x")})
			if got, want := slog.GroupValue(dst[1:]...).String(), slog.GroupValue(tt.rec.Attrs()...).String(); got != want || dst[0].Key != "first" {
				t.Errorf("AppendAttrs = %v, Attrs = %v", dst, want)
			}
		})
	}
}
