package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/regtrigger/regtrigger/internal/trigger"
)

// redeliverNeeds: redeliver reads the task archive in the records table,
// the task's trigger as it is now, and sends to the queue.
var redeliverNeeds = needs{triggers: true, records: true, queue: true}

func newRedeliver() *cobra.Command {
	var sf *storeFlags // set below, before RunE runs
	c := &cobra.Command{
		Use:   "redeliver TASK_ID",
		Short: "Queue a finished task again, with a fresh attempt count, for the trigger as it is now",
		Long: `redeliver puts a task that succeeded, failed, was skipped or was cancelled back on
the queue; serve delivers it on its next start (or at once if it is running against
another store). The task keeps its id, which goes out as webhook-id. Task ids are in
regtrigger logs.

A task refers to its trigger: it is delivered to the trigger's current URL, headers,
format and secret, so redeliver after fixing a wrong URL is what you want. It refuses a
task whose trigger was deleted or is disabled (enable it first).

On --store dynamodb it reads the task the dispatcher function archived in the records
table and sends it to the SQS queue, where the dispatcher picks it up at once. SQS
cannot be asked whether a task is queued (it has no lookup by id), and the archive
keeps a task after a redelivery: redeliver cannot refuse a task that is still in
flight, as it does on bolt ("still queued"), so running it twice delivers the task
twice. Both deliveries carry the same webhook-id, which receivers dedupe on.

` + storeHelp(redeliverNeeds),
		Example: "  regtrigger logs --status failed\n  regtrigger redeliver tsk_0123456789abcdef0123456789abcdef",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			id := args[0]
			return sf.with(c.Context(), mustExist, func(b *backend) error {
				ctx := c.Context()
				task, err := b.tasks.Archived(ctx, id)
				switch {
				case errors.Is(err, errNotKept):
					return fail("no task with id %q (untriggered events have no task; a finished task is kept for the log retention period, and regtrigger logs shows the ids)", id)
				case errors.Is(err, errStillQueued):
					return fail("task %q is still queued: serve delivers it when it is due (regtrigger logs --task %s shows its attempts)", id, id)
				case err != nil:
					return fail("%v", err)
				}
				name := task.Trigger.Name
				tr, err := b.triggers.Get(ctx, name)
				switch {
				case errors.Is(err, trigger.ErrNotFound) || (err == nil && tr.Namespace != task.Trigger.Namespace):
					return fail("task %q cannot be redelivered: its trigger %q (namespace %s) was deleted", id, name, task.Trigger.Namespace)
				case err != nil:
					return fail("read trigger %s: %v", name, err)
				case !tr.Enabled:
					return fail("task %q cannot be redelivered: its trigger %q is disabled (regtrigger triggers enable %s)", id, name, name)
				}
				err = b.tasks.Requeue(ctx, task.Requeued(&tr))
				switch {
				case errors.Is(err, errStillQueued):
					return fail("task %q is still queued: serve delivers it when it is due (regtrigger logs --task %s shows its attempts)", id, id)
				case err != nil:
					return fail("%v", err)
				}
				fmt.Fprintf(c.OutOrStdout(), "%s queued for delivery to trigger %s (revision %d)\n", id, name, tr.Version)
				return nil
			})
		},
	}
	sf = registerStore(c, redeliverNeeds)
	return c
}
