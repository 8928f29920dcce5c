package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/regtrigger/regtrigger/internal/trigger"
)

// tasksNeeds: the tasks commands read and mark the trigger, read the queue
// (and, on DynamoDB, the trigger log).
var tasksNeeds = needs{triggers: true, records: true, queue: true}

func newTasks() *cobra.Command {
	c := &cobra.Command{
		Use:   "tasks",
		Short: "See and cancel queued deliveries",
		Long: `tasks shows the deliveries still queued (new, or waiting for a retry) and cancels
those of a trigger.

A queued task refers to its trigger by name and the revision it matched; it holds no
URL, header or secret. cancel marks the trigger (cancel_through: its current
revision), so that every task matched against that revision or an older one is
cancelled when it comes due, with a "cancelled" record, on every store. On --store
bolt the queued tasks are also taken off the queue at once. Notifications that match
after the cancel are delivered as usual (on the cloud functions, those within
TRIGGER_CACHE_TTL of it may still have matched the old revision and are cancelled too).

` + storeHelp(tasksNeeds),
		Example: "  regtrigger tasks list --trigger deploy-nginx\n  regtrigger tasks cancel --trigger deploy-nginx\n  regtrigger triggers disable deploy-nginx --cancel-queued",
	}
	sf := registerStore(c, tasksNeeds)
	c.AddCommand(newTasksList(sf), newTasksCancel(sf))
	return c
}

func newTasksList(sf *storeFlags) *cobra.Command {
	var (
		name   string
		output string
	)
	c := &cobra.Command{
		Use:   "list [--trigger NAME]",
		Short: "List queued tasks, soonest due first",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			return sf.with(c.Context(), mustExist, func(b *backend) error {
				v, err := b.tasks.Queued(c.Context(), name)
				if err != nil {
					return fail("list queued tasks: %v", err)
				}
				return printQueued(c.OutOrStdout(), c.ErrOrStderr(), output, v)
			})
		},
	}
	c.Flags().StringVar(&name, "trigger", "", "only the tasks of the trigger named `NAME`")
	outputFlag(c, &output)
	return c
}

func printQueued(w, notes io.Writer, output string, v queueView) error {
	if v.Note != "" {
		fmt.Fprintln(notes, "note: "+v.Note)
	}
	return printObjects(w, output, v.Tasks, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "TASK\tTRIGGER\tREVISION\tACTION\tREPOSITORY\tTAG\tATTEMPTS\tDUE")
		for _, t := range v.Tasks {
			due := "-"
			if !t.Due.IsZero() {
				due = t.Due.Local().Format(time.DateTime)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s/%s\t%s\t%d\t%s\n", t.ID, t.Trigger, t.Revision, t.Action, t.Namespace, t.Repository, t.Tag, t.Attempts, due)
		}
	})
}

func newTasksCancel(sf *storeFlags) *cobra.Command {
	var name string
	c := &cobra.Command{
		Use:   "cancel --trigger NAME",
		Short: "Cancel the queued tasks of a trigger",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return sf.with(c.Context(), mustExist, func(b *backend) error {
				return cancelQueued(c.Context(), c.OutOrStdout(), b, name, false)
			})
		},
	}
	c.Flags().StringVar(&name, "trigger", "", "cancel the queued tasks of the trigger named `NAME`")
	_ = c.MarkFlagRequired("trigger")
	return c
}

// cancelQueued marks the trigger so that its queued tasks are cancelled
// (disabling it too with disable), then takes off the queue what the
// backend can remove at once.
func cancelQueued(ctx context.Context, w io.Writer, b *backend, name string, disable bool) error {
	t, err := markCancelled(ctx, b.triggers, name, disable)
	if err != nil {
		return err
	}
	how := "regtrigger tasks cancel"
	if disable {
		how = "regtrigger triggers disable --cancel-queued"
	}
	n, later, err := b.tasks.Cancel(ctx, name, fmt.Sprintf("cancelled by %s (revisions up to %d)", how, t.CancelThrough))
	if err != nil {
		return fail("the trigger is marked, so its queued tasks are cancelled when they come due; taking them off the queue now failed: %v", err)
	}
	if disable {
		fmt.Fprintf(w, "%s disabled\n", name)
	}
	if later {
		fmt.Fprintf(w, "%s: its queued tasks (matched against revision %d or older) are cancelled when they come due\n", name, t.CancelThrough)
		return nil
	}
	fmt.Fprintf(w, "%s: %d queued task(s) cancelled\n", name, n)
	return nil
}

// markCancelled sets the trigger's CancelThrough to its current revision
// (and disables it with disable), retrying when someone else changed the
// trigger meanwhile. It returns the trigger as it was before the write:
// CancelThrough is its Version.
func markCancelled(ctx context.Context, ts trigger.Store, name string, disable bool) (trigger.Trigger, error) {
	for try := 0; ; try++ {
		t, err := ts.Get(ctx, name)
		if err != nil {
			return t, notFound(name, err)
		}
		t.CancelThrough = t.Version
		if disable {
			t.Enabled = false
		}
		_, err = ts.Update(ctx, t)
		switch {
		case err == nil:
			return t, nil
		case errors.Is(err, trigger.ErrConflict) && try < 3:
			continue
		}
		return t, fail("mark the queued tasks of %s cancelled: %v", name, err)
	}
}
