package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/matcher"
	"github.com/regtrigger/regtrigger/internal/payload"
	"github.com/regtrigger/regtrigger/internal/receiver"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// matchLine is one (event, trigger) verdict of `regtrigger match`.
type matchLine struct {
	Event   inspectLine    `json:"event"`
	Trigger string         `json:"trigger"`
	Fired   bool           `json:"fired"`
	Reason  matcher.Reason `json:"reason"`
	Detail  string         `json:"detail"`
	// Request is what the trigger's format sends, with --render.
	Request *rendered `json:"request,omitempty"`
}

// rendered is the request a fired trigger's format makes for an event.
type rendered struct {
	Format      payload.Format `json:"format"`
	ContentType string         `json:"content_type,omitempty"`
	// Body is the body: JSON as it is, anything else as a string.
	Body  json.RawMessage `json:"body,omitempty"`
	Error string          `json:"error,omitempty"`
}

// render makes what tr's format sends for ev, as the dispatcher would now
// (the task id is the one the receiver would give it).
func render(tr *trigger.Trigger, ev event.Event) *rendered {
	r := &rendered{Format: tr.Format}
	m := payload.Meta{TaskID: receiver.TaskID(receiver.Fingerprint(ev), tr.Name), Trigger: tr.Name, Time: time.Now().UTC()}
	if tr.Format.Signing() == payload.FeishuBody && len(tr.Secrets) > 0 {
		m.Secret = tr.Secrets[0]
	}
	if tr.Format == payload.Template {
		tm, err := payload.ParseTemplate(tr.Template, tr.ContentType)
		if err != nil {
			r.Error = err.Error()
			return r
		}
		m.Template = tm
	}
	body, ctype, err := payload.Render(tr.Format, ev, m)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.ContentType = ctype
	if json.Valid(body) {
		r.Body = body
	} else {
		r.Body, _ = json.Marshal(string(body))
	}
	return r
}

func newMatch() *cobra.Command {
	var (
		f        bodyFlags
		file     string
		output   string
		allow    []string
		doRender bool
	)
	c := &cobra.Command{
		Use:   "match -f TRIGGERS.yaml [--source NAME] [FILE|-]",
		Short: "Show which triggers a registry body fires, and why the others do not",
		Long: `match parses a registry body like inspect, then judges every trigger of each event's
namespace. It prints one JSON line per (event, trigger):
  {"event": {...}, "trigger": "name", "fired": true|false, "reason": "...", "detail": "..."}
reason is empty when the trigger fires, otherwise one of: disabled, action not selected,
repository not matched, tag not matched, tag excluded. --output table (or text) prints a
table instead, --output yaml YAML documents.
With --render, each fired line also holds the request its trigger's format makes
("request": format, content type and body; the table output prints each body after the
table): the message a chat robot would post, before a trigger points at a channel.
An invalid trigger file exits 1 with every problem listed.`,
		Example: `  regtrigger match -f examples/triggers.yaml events/bodies/tcr-push.json
  regtrigger match -f triggers.yaml --output text body.json
  regtrigger match -f examples/chat-triggers.yaml --render -o text events/bodies/tcr-push.json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if output == "text" { // the name before table, json and yaml were every command's
				output = outTable
			}
			if err := checkOutput(output); err != nil {
				return err
			}
			if _, err := f.check(); err != nil {
				return err
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
					l := matchLine{Event: lineOf(e), Trigger: r.Trigger.Name, Fired: r.Fired(), Reason: r.Reason, Detail: r.Explain(e)}
					if doRender && l.Fired {
						l.Request = render(r.Trigger, e)
					}
					lines = append(lines, l)
				}
			}
			err = printObjects(c.OutOrStdout(), output, lines, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "ACTION\tREPOSITORY\tTAG\tTRIGGER\tFIRED\tWHY")
				for _, l := range lines {
					fmt.Fprintf(tw, "%s\t%s/%s\t%s\t%s\t%v\t%s\n", l.Event.Action, l.Event.Namespace, l.Event.Repository, l.Event.Tag, l.Trigger, l.Fired, l.Detail)
				}
				if len(lines) == 0 {
					fmt.Fprintf(tw, "(%d event(s), no trigger in their namespace)\n", len(evs))
				}
			})
			if err != nil {
				return err
			}
			if output == outTable {
				for _, l := range lines {
					if l.Request != nil {
						printRendered(c.OutOrStdout(), l)
					}
				}
			}
			return nil
		},
	}
	f.register(c)
	c.Flags().StringVarP(&file, "file", "f", "", "the trigger `FILE` (YAML, see README)")
	outputFlagDefault(c, &output, outJSON)
	c.Flags().BoolVar(&doRender, "render", false, "show the request each fired trigger's format makes")
	allowFlag(c, &allow)
	_ = c.MarkFlagRequired("file")
	return c
}

// printRendered writes one fired trigger's request for people: a heading,
// then the body (JSON indented).
func printRendered(w io.Writer, l matchLine) {
	r := l.Request
	fmt.Fprintf(w, "\n== %s %s/%s:%s -> %s (%s", l.Trigger, l.Event.Namespace, l.Event.Repository, l.Event.Tag, r.Format, r.ContentType)
	if r.Error != "" {
		fmt.Fprintf(w, "): %s\n", r.Error)
		return
	}
	fmt.Fprintln(w, ")")
	var s string
	if json.Unmarshal(r.Body, &s) == nil {
		fmt.Fprintln(w, s)
		return
	}
	var b bytes.Buffer
	if json.Indent(&b, r.Body, "", "  ") != nil {
		b.Write(r.Body)
	}
	fmt.Fprintln(w, b.String())
}
