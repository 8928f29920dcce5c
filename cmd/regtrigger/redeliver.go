package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

// redeliverNeeds: redeliver reads the task archive in the records table and
// sends to the queue.
var redeliverNeeds = needs{records: true, queue: true}

func newRedeliver() *cobra.Command {
	var sf *storeFlags // set below, before RunE runs
	c := &cobra.Command{
		Use:   "redeliver TASK_ID",
		Short: "Queue a finished task again, with a fresh attempt count",
		Long: `redeliver puts a task that succeeded or failed for good back on the queue; serve
delivers it on its next start (or at once if it is running against another store).
The task keeps its id, which goes out as webhook-id. Task ids are in regtrigger logs.

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
			return sf.withRedeliverer(c.Context(), func(r redeliverer) error {
				err := r.Redeliver(c.Context(), args[0])
				switch {
				case errors.Is(err, errNotKept):
					return fail("no finished task %q is kept (tasks are kept for the log retention period; see regtrigger logs)", args[0])
				case errors.Is(err, errStillQueued):
					return fail("task %q is still queued: it will be delivered without help", args[0])
				case err != nil:
					return fail("%v", err)
				}
				fmt.Fprintf(c.OutOrStdout(), "%s queued for delivery\n", args[0])
				return nil
			})
		},
	}
	sf = registerStore(c, redeliverNeeds)
	return c
}
