package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// TriggerWriter reads and updates triggers, for auto-disable-after;
// trigger.Store satisfies it. It must read the store, not a cache: the
// update is conditional on the version read.
type TriggerWriter interface {
	Get(ctx context.Context, name string) (trigger.Trigger, error)
	Update(ctx context.Context, t trigger.Trigger) (trigger.Trigger, error)
}

var _ TriggerWriter = (trigger.Store)(nil)

// autoDisable disables tr when all its deliveries have failed for its
// auto-disable-after: since the first failure after its last success, or
// after its last edit (enabling it again, or a new URL, starts the clock
// anew). It turns the attempt's record into the record that says why and
// reports whether it disabled the trigger.
func (e *Engine) autoDisable(ctx context.Context, st State, tr *trigger.Trigger, rec *record.Record, now time.Time) bool {
	after := tr.DisableAfter()
	if e.Disable == nil || after <= 0 || st.FailingSince.IsZero() {
		return false
	}
	since := st.FailingSince
	if tr.UpdatedAt.After(since) {
		since = tr.UpdatedAt
	}
	if now.Sub(since) < after {
		return false
	}
	// Read it again from the store: the engine's copy may be cached, and
	// the update is conditional on the version read.
	cur, err := e.Disable.Get(ctx, tr.Name)
	if err != nil || !cur.Enabled || cur.Namespace != tr.Namespace || cur.UpdatedAt.After(since) {
		return false
	}
	why := fmt.Sprintf("auto-disabled: every delivery failed since %s (%v, auto-disable-after %v); the last: %s",
		since.UTC().Format(time.RFC3339), now.Sub(since).Round(time.Second), after, rec.Error)
	cur.Enabled, cur.DisabledReason, cur.DisabledAt = false, why, now.UTC()
	if _, err := e.Disable.Update(ctx, cur); err != nil {
		if !errors.Is(err, trigger.ErrConflict) {
			e.logger().LogAttrs(ctx, slog.LevelError, "auto-disable trigger", slog.String("trigger", tr.Name), slog.String("error", err.Error()))
		}
		return false // edited meanwhile: the edit restarts the clock
	}
	if c, ok := e.Triggers.(*TriggerCache); ok {
		// Its other tasks here are skipped from now on, not sent until
		// the cached read expires.
		c.Drop(tr.Name)
	}
	if e.Health != nil {
		if err := e.Health.Recovered(ctx, "", tr.Name); err != nil {
			e.logger().LogAttrs(ctx, slog.LevelWarn, "forget the disabled trigger's failures", slog.String("trigger", tr.Name), slog.String("error", err.Error()))
		}
	}
	e.logger().LogAttrs(ctx, slog.LevelWarn, "trigger auto-disabled", slog.String("trigger", tr.Name), slog.String("namespace", tr.Namespace),
		slog.String("target", rec.Target), slog.Time("failing_since", since.UTC()), slog.Duration("auto_disable_after", after), slog.String("reason", why))
	rec.Status, rec.ErrorClass, rec.Error = record.Failed, record.ClassAutoDisabled, "trigger "+why
	rec.NextAttemptAt = time.Time{}
	return true
}
