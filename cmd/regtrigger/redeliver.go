package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/regtrigger/regtrigger/internal/boltstore"
)

func newRedeliver() *cobra.Command {
	var sf storeFlags
	c := &cobra.Command{
		Use:   "redeliver TASK_ID",
		Short: "Queue a finished task again, with a fresh attempt count",
		Long: `redeliver puts a task that succeeded or failed for good back on the queue; serve
delivers it on its next start (or at once if it is running against another store).
The task keeps its id, which goes out as webhook-id. Task ids are in regtrigger logs.`,
		Example: "  regtrigger logs --status failed\n  regtrigger redeliver tsk_0123456789abcdef0123456789abcdef",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return sf.with(func(s *boltstore.Store) error {
				err := boltstore.NewTaskQueue(s).Redeliver(c.Context(), args[0])
				switch {
				case errors.Is(err, boltstore.ErrNoItem):
					return fail("no finished task %q is kept (tasks are kept for the log retention period; see regtrigger logs)", args[0])
				case errors.Is(err, boltstore.ErrQueued):
					return fail("task %q is still queued: it will be delivered without help", args[0])
				case err != nil:
					return fail("%v", err)
				}
				fmt.Fprintf(c.OutOrStdout(), "%s queued for delivery\n", args[0])
				return nil
			})
		},
	}
	sf.register(c)
	return c
}
