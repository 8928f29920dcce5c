package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/regtrigger/regtrigger/internal/matcher"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// matchLine is one (event, trigger) verdict of `regtrigger match`.
type matchLine struct {
	Event   inspectLine    `json:"event"`
	Trigger string         `json:"trigger"`
	Fired   bool           `json:"fired"`
	Reason  matcher.Reason `json:"reason"`
	Detail  string         `json:"detail"`
}

func newMatch() *cobra.Command {
	var (
		f      bodyFlags
		file   string
		output string
		allow  []string
	)
	c := &cobra.Command{
		Use:   "match -f TRIGGERS.yaml [--source NAME] [FILE|-]",
		Short: "Show which triggers a registry body fires, and why the others do not",
		Long: `match parses a registry body like inspect, then judges every trigger of each event's
namespace. It prints one JSON line per (event, trigger):
  {"event": {...}, "trigger": "name", "fired": true|false, "reason": "...", "detail": "..."}
reason is empty when the trigger fires, otherwise one of: disabled, action not selected,
repository not matched, tag not matched. --output text prints a table instead.
An invalid trigger file exits 1 with every problem listed.`,
		Example: `  regtrigger match -f examples/triggers.yaml events/bodies/tcr-push.json
  regtrigger match -f triggers.yaml --output text body.json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if output != "json" && output != "text" {
				return &exitError{code: 2, err: fmt.Errorf("--output %q: use json or text", output)}
			}
			rules, err := rulesFrom(allow)
			if err != nil {
				return err
			}
			ts, err := trigger.ReadFile(file, trigger.LoadOptions{Rules: rules})
			if err != nil {
				return fail("%s: %v", file, err)
			}
			m, err := matcher.New(ts)
			if err != nil {
				return fail("%s: %v", file, err)
			}
			evs, err := f.readEvents(c, args)
			if err != nil {
				return err
			}
			var lines []matchLine
			for _, e := range evs {
				for _, r := range m.Match(e) {
					lines = append(lines, matchLine{Event: lineOf(e), Trigger: r.Trigger.Name, Fired: r.Fired(), Reason: r.Reason, Detail: r.Explain(e)})
				}
			}
			if output == "text" {
				tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ACTION\tREPOSITORY\tTAG\tTRIGGER\tFIRED\tWHY")
				for _, l := range lines {
					fmt.Fprintf(tw, "%s\t%s/%s\t%s\t%s\t%v\t%s\n", l.Event.Action, l.Event.Namespace, l.Event.Repository, l.Event.Tag, l.Trigger, l.Fired, l.Detail)
				}
				if len(lines) == 0 {
					fmt.Fprintf(tw, "(%d event(s), no trigger in their namespace)\n", len(evs))
				}
				return tw.Flush()
			}
			enc := json.NewEncoder(c.OutOrStdout())
			enc.SetEscapeHTML(false)
			for _, l := range lines {
				if err := enc.Encode(l); err != nil {
					return fail("write: %v", err)
				}
			}
			return nil
		},
	}
	f.register(c)
	c.Flags().StringVarP(&file, "file", "f", "", "trigger file (YAML, see README)")
	c.Flags().StringVarP(&output, "output", "o", "json", "json or text")
	allowFlag(c, &allow)
	_ = c.MarkFlagRequired("file")
	return c
}
