package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/regtrigger/regtrigger/internal/event"
)

// inspectLine is the stable line format of `regtrigger inspect`.
type inspectLine struct {
	Source      string       `json:"source"`
	Action      event.Action `json:"action"`
	Namespace   string       `json:"namespace"`
	Repository  string       `json:"repository"`
	Tag         string       `json:"tag"`
	Digest      string       `json:"digest"`
	ResourceURL string       `json:"resource_url"`
	OccurredAt  string       `json:"occurred_at"`
	Operator    string       `json:"operator"`
}

func lineOf(e event.Event) inspectLine {
	return inspectLine{
		Source: e.Source, Action: e.Action, Namespace: e.Namespace, Repository: e.Repository,
		Tag: e.Tag, Digest: e.Digest, ResourceURL: e.ResourceURL,
		OccurredAt: e.OccurredAt.UTC().Format(time.RFC3339), Operator: e.Operator,
	}
}

func newInspect() *cobra.Command {
	var (
		f      bodyFlags
		output string
	)
	c := &cobra.Command{
		Use:   "inspect [--source NAME] [FILE|-]",
		Short: "Print the events a registry body holds, one JSON object per line",
		Long: `inspect parses a registry notification body (from FILE, or standard input when FILE
is "-" or missing) and prints one JSON object per event:
  {"source", "action", "namespace", "repository", "tag", "digest", "resource_url", "occurred_at", "operator"}
A recognised body with no events (a scan result, a layer push) prints nothing.
--output table prints a table instead, --output yaml YAML documents.
It exits 1 with the reason when the body is not a format regtrigger knows.`,
		Example: `  regtrigger inspect events/bodies/tcr-push.json
  curl -s ... | regtrigger inspect --source distribution -`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			evs, err := f.readEvents(c, args)
			if err != nil {
				return err
			}
			lines := make([]inspectLine, len(evs))
			for i, e := range evs {
				lines[i] = lineOf(e)
			}
			return printObjects(c.OutOrStdout(), output, lines, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "SOURCE\tACTION\tREPOSITORY\tTAG\tDIGEST\tOCCURRED\tOPERATOR")
				for _, l := range lines {
					fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%s\t%s\t%s\t%s\n", l.Source, l.Action, l.Namespace, l.Repository, l.Tag, l.Digest, l.OccurredAt, l.Operator)
				}
			})
		},
	}
	f.register(c)
	outputFlagDefault(c, &output, outJSON)
	return c
}
