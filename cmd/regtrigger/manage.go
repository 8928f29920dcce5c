package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/regtrigger/regtrigger/internal/config"
	"github.com/regtrigger/regtrigger/internal/outbound"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

func newTriggers() *cobra.Command {
	n := needs{triggers: true}
	c := &cobra.Command{
		Use:   "triggers",
		Short: "Manage the triggers of the store (the local file or DynamoDB)",
		Long: `triggers manages trigger rules in the store: the file serve uses, or the cloud
functions' triggers table. apply is declarative: it creates and updates the triggers of
a file, and with --prune deletes the others; its writes are conditional, so a change
made meanwhile by someone else makes it fail instead of being overwritten. Header
values and secrets are never printed.

` + storeHelp(n),
		Example: "  regtrigger triggers list\n  regtrigger triggers apply -f triggers.yaml --store dynamodb --triggers-table regtrigger-triggers",
	}
	sf := registerStore(c, n)
	c.AddCommand(newTriggersApply(sf), newTriggersList(sf), newTriggersGet(sf),
		newTriggersToggle(sf, "enable", true), newTriggersToggle(sf, "disable", false), newTriggersDelete(sf))
	return c
}

func newTriggersApply(sf *storeFlags) *cobra.Command {
	var (
		file          string
		prune, dryRun bool
		output        string
		allow         []string
	)
	c := &cobra.Command{
		Use:     "apply -f FILE [--prune] [--dry-run]",
		Short:   "Make the store hold the triggers of a file",
		Example: "  regtrigger triggers apply -f triggers.yaml --dry-run\n  regtrigger triggers apply -f triggers.yaml --prune",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			rules, err := rulesFrom(allow)
			if err != nil {
				return err
			}
			warn := func(msg string) { fmt.Fprintln(c.ErrOrStderr(), "warning: "+msg) }
			ts, err := trigger.ReadFile(file, trigger.LoadOptions{Rules: rules, Warn: warn})
			if err != nil {
				return fail("%s: %v", file, err)
			}
			mode := mayCreate
			if dryRun {
				mode = readIfExists
			}
			return sf.withTriggers(c.Context(), mode, func(store trigger.Store) error {
				changes, err := trigger.Apply(c.Context(), store, ts, trigger.ApplyOptions{Prune: prune, DryRun: dryRun, Rules: rules, StoredIn: storedIn(sf)})
				if perr := printChanges(c.OutOrStdout(), output, changes, dryRun); perr != nil && err == nil {
					err = perr
				}
				if err != nil {
					if errors.Is(err, trigger.ErrConflict) {
						return fail("%v (another change happened meanwhile: run apply again)", err)
					}
					var ve *trigger.ValidationError
					switch {
					case errors.As(err, &ve) && slices.ContainsFunc(ve.Problems, func(p trigger.Problem) bool { return p.StoredIn != "" }):
						return fail("%v\n(the stored triggers the file does not list are checked too, with this command's --allow-private: give it the one serve runs with, or --prune them)", err)
					case ve != nil:
						return fail("%s: %v", file, err)
					}
					return fail("%v", err)
				}
				return nil
			})
		},
	}
	c.Flags().StringVarP(&file, "file", "f", "", "the trigger `FILE` (YAML, see README)")
	c.Flags().BoolVar(&prune, "prune", false, "delete stored triggers the file does not list")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "show the changes without making them")
	allowFlag(c, &allow)
	outputFlag(c, &output)
	_ = c.MarkFlagRequired("file")
	return c
}

// storedIn names the store in problems with stored triggers.
func storedIn(sf *storeFlags) string {
	kind, _ := sf.kind()
	if strings.HasPrefix(kind, "redis://") || strings.HasPrefix(kind, "rediss://") {
		return "the Redis store" // its URL may hold a password
	}
	if kind == storeDynamo {
		name := sf.triggersTable
		if name == "" {
			name = os.Getenv(config.EnvTriggersTable)
		}
		return "the DynamoDB table " + name
	}
	return sf.data
}

func printChanges(w io.Writer, output string, changes []trigger.Change, dryRun bool) error {
	return printObjects(w, output, changes, func(tw *tabwriter.Writer) {
		for _, ch := range changes {
			kind := string(ch.Kind)
			if dryRun && ch.Kind != trigger.Unchanged {
				kind = "would be " + kind
			}
			fields := ""
			if len(ch.Fields) > 0 {
				fields = "(" + strings.Join(ch.Fields, ", ") + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", ch.Name, kind, fields)
		}
	})
}

func newTriggersList(sf *storeFlags) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "list",
		Short: "List every trigger",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			return sf.withTriggers(c.Context(), mustExist, func(s trigger.Store) error {
				ts, err := s.List(c.Context())
				if err != nil {
					return fail("%v", err) // says "list triggers: ..."
				}
				return printTriggers(c.OutOrStdout(), output, ts)
			})
		},
	}
	outputFlag(c, &output)
	return c
}

func printTriggers(w io.Writer, output string, ts []trigger.Trigger) error {
	redacted := make([]trigger.Trigger, len(ts))
	for i, t := range ts {
		redacted[i] = t.Redacted()
	}
	return printObjects(w, output, redacted, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "NAME\tENABLED\tACTIONS\tNAMESPACE\tREPOSITORY\tTAG\tFORMAT\tURL")
		for _, t := range redacted {
			fmt.Fprintf(tw, "%s\t%v\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Enabled, actionList(t), t.Namespace,
				orAll(t.Repository), orAll(t.Tag), t.Format, t.URL)
		}
	})
}

// printTrigger prints one trigger; its table is one field a line, every
// field shown (header values and secrets redacted).
func printTrigger(w io.Writer, output string, t trigger.Trigger) error {
	t = t.Redacted()
	return printObjects(w, output, []trigger.Trigger{t}, func(tw *tabwriter.Writer) {
		row := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
		row("name", t.Name)
		if t.Description != "" {
			row("description", t.Description)
		}
		row("enabled", t.Enabled)
		if t.DisabledReason != "" {
			row("disabled", t.DisabledAt.Local().Format(time.DateTime)+": "+t.DisabledReason)
		}
		row("actions", actionList(t))
		row("namespace", t.Namespace)
		row("repository", orAll(t.Repository))
		row("tag", orAll(t.Tag))
		if len(t.ExcludeTags) > 0 {
			row("exclude tags", strings.Join(t.ExcludeTags, ", "))
		}
		row("url", t.URL)
		names := make([]string, 0, len(t.Headers))
		for k := range t.Headers {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			row("header", k+": "+t.Headers[k])
		}
		row("format", t.Format)
		if t.ContentType != "" {
			row("content type", t.ContentType)
		}
		if t.Template != "" {
			row("template", fmt.Sprintf("%d bytes (-o yaml shows it)", len(t.Template)))
		}
		if len(t.Secrets) > 0 {
			row("secret", fmt.Sprintf("%d set (not shown)", len(t.Secrets)))
		}
		if t.Timeout != 0 {
			row("timeout", time.Duration(t.Timeout))
		}
		if after := t.DisableAfter(); after == 0 {
			row("auto-disable after", "never")
		} else if t.AutoDisableAfter != nil {
			row("auto-disable after", after)
		}
		if t.MaxConcurrency > 0 {
			row("max concurrency", t.MaxConcurrency)
		}
		if t.Rate > 0 {
			row("rate", fmt.Sprintf("%v requests per second", t.Rate))
		}
		if t.Coalesce > 0 {
			row("coalesce", fmt.Sprintf("bursts within %v are one delivery", time.Duration(t.Coalesce)))
		}
		if t.Version != 0 {
			row("version", t.Version)
		}
		if !t.UpdatedAt.IsZero() {
			row("updated", t.UpdatedAt.Local().Format(time.DateTime))
		}
		if t.CancelThrough != 0 {
			row("cancel through", fmt.Sprintf("revision %d (queued tasks matched against it or older are cancelled)", t.CancelThrough))
		}
	})
}

func actionList(t trigger.Trigger) string {
	actions := make([]string, len(t.Actions))
	for i, a := range t.Actions {
		actions[i] = string(a)
	}
	return strings.Join(actions, ",")
}

func orAll(s string) string {
	if s == "" {
		return "(all)"
	}
	return s
}

func newTriggersGet(sf *storeFlags) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "get NAME",
		Short: "Show one trigger",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			return sf.withTriggers(c.Context(), mustExist, func(s trigger.Store) error {
				t, err := s.Get(c.Context(), args[0])
				if err != nil {
					return notFound(args[0], err)
				}
				return printTrigger(c.OutOrStdout(), output, t)
			})
		},
	}
	outputFlag(c, &output)
	return c
}

func notFound(name string, err error) error {
	if errors.Is(err, trigger.ErrNotFound) {
		return fail("no trigger named %q (see regtrigger triggers list)", name)
	}
	return fail("%v", err)
}

func newTriggersToggle(sf *storeFlags, verb string, enabled bool) *cobra.Command {
	var cancelQueuedTasks bool
	c := &cobra.Command{
		Use:   verb + " NAME",
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " a trigger",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if cancelQueuedTasks {
				return sf.with(c.Context(), mustExist, func(b *backend) error {
					return cancelQueued(c.Context(), c.OutOrStdout(), b, args[0], true)
				})
			}
			return sf.withTriggers(c.Context(), mustExist, func(s trigger.Store) error {
				t, err := s.Get(c.Context(), args[0])
				if err != nil {
					return notFound(args[0], err)
				}
				if t.Enabled == enabled {
					fmt.Fprintf(c.OutOrStdout(), "%s was already %sd\n", t.Name, verb)
					return nil
				}
				t.Enabled = enabled
				if enabled {
					t.DisabledReason, t.DisabledAt = "", time.Time{}
				}
				if _, err := s.Update(c.Context(), t); err != nil {
					return fail("%s %s: %v", verb, t.Name, err)
				}
				fmt.Fprintf(c.OutOrStdout(), "%s %sd\n", t.Name, verb)
				return nil
			})
		},
	}
	if !enabled {
		c.Long = `disable stops the trigger firing on new events. Its queued tasks are skipped when
they come due ("skipped", trigger disabled), so enabling it again before then lets
them go out. With --cancel-queued they are cancelled for good instead.`
		c.Flags().BoolVar(&cancelQueuedTasks, "cancel-queued", false, "also cancel the trigger's queued tasks for good (see regtrigger tasks cancel)")
	}
	return c
}

func newTriggersDelete(sf *storeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a trigger",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return sf.withTriggers(c.Context(), mustExist, func(s trigger.Store) error {
				if err := s.Delete(c.Context(), args[0], 0); err != nil {
					return notFound(args[0], err)
				}
				fmt.Fprintf(c.OutOrStdout(), "%s deleted\n", args[0])
				return nil
			})
		},
	}
}

// logNeeds: logs reads the records table.
var logNeeds = needs{records: true}

func newLogs() *cobra.Command {
	var (
		sf     *storeFlags // set below, before RunE runs
		q      record.Query
		status string
		since  time.Duration
		output string
	)
	c := &cobra.Command{
		Use:   "logs [--trigger NAME] [--status S] [--since DURATION] [--limit N]",
		Short: "Show the trigger log, newest first",
		Long: `logs shows the trigger log, newest first: one record per delivery attempt (triggers
an event did not fire are not stored: see "regtrigger match"). On --store dynamodb,
--trigger and --status failed|blocked are one Query; no filter, or another status
without --trigger, scans the records table. Records older than the retention are
never shown (30 days; on --store dynamodb, RETENTION_DAYS as the functions read it).

` + storeHelp(logNeeds),
		Example: "  regtrigger logs --trigger deploy-nginx --since 1h\n  regtrigger logs --status failed -o json\n  regtrigger logs --store dynamodb --records-table regtrigger-records --task tsk_0123456789abcdef0123456789abcdef",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if status != "" && !record.Status(status).Valid() {
				names := make([]string, len(record.Statuses))
				for i, s := range record.Statuses {
					names[i] = string(s)
				}
				return usageErr("--status %q: use one of %s", status, strings.Join(names, ", "))
			}
			if q.Limit < 0 {
				return usageErr("--limit %d: use a positive number of records", q.Limit)
			}
			q.Status = record.Status(status)
			if since > 0 {
				q.Since = time.Now().Add(-since)
			}
			return sf.withRecords(c.Context(), func(s record.Store) error {
				recs, err := s.List(c.Context(), q)
				if err != nil {
					return fail("read logs: %v", err)
				}
				return printRecords(c.OutOrStdout(), output, recs)
			})
		},
	}
	sf = registerStore(c, logNeeds)
	c.Flags().StringVar(&q.Trigger, "trigger", "", "only the trigger named `NAME`")
	c.Flags().StringVar(&status, "status", "", "only this `STATUS`: success, retrying, failed, blocked, untriggered")
	c.Flags().StringVar(&q.TaskID, "task", "", "only the task with this `ID` (tsk_...)")
	c.Flags().DurationVar(&since, "since", 0, "only records newer than this `DURATION` (e.g. 1h, 30m)")
	c.Flags().IntVar(&q.Limit, "limit", record.DefaultLimit, "at most `N` records")
	outputFlag(c, &output)
	return c
}

func printRecords(w io.Writer, output string, recs []record.Record) error {
	return printObjects(w, output, recs, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "TIME\tTRIGGER\tSTATUS\tHTTP\tATTEMPT\tACTION\tREPOSITORY\tTAG\tTASK\tDETAIL")
		for _, r := range recs {
			code, attempt := "-", "-"
			if r.HTTPStatus != 0 {
				code = fmt.Sprint(r.HTTPStatus)
			}
			if r.Attempt != 0 {
				attempt = fmt.Sprint(r.Attempt)
			}
			detail := r.Error
			if r.Status == record.Untriggered {
				detail = r.Reason
			}
			if r.ErrorClass != "" {
				detail = r.ErrorClass + ": " + detail
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s/%s\t%s\t%s\t%s\n", r.Time.Local().Format(time.DateTime), r.Trigger, r.Status, code, attempt,
				r.Action, r.Namespace, r.Repository, r.Tag, r.TaskID, detail)
		}
	})
}

// allowFlag adds --allow-private, which must match serve's for URLs with
// literal private addresses to validate.
func allowFlag(c *cobra.Command, p *[]string) {
	c.Flags().StringArrayVar(p, "allow-private", nil, "accept URLs with literal addresses in this private `CIDR` (repeatable; give the ones serve runs with)")
}

func rulesFrom(allow []string) (trigger.Rules, error) {
	prefixes, err := outbound.ParseCIDRs(allow)
	if err != nil {
		return trigger.Rules{}, usageErr("--allow-private: %v", err)
	}
	return trigger.Rules{AllowPrivate: prefixes}, nil
}
