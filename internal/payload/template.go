package payload

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strings"
	"text/template"
	"text/template/parse"
	"time"

	"github.com/regtrigger/regtrigger/internal/event"
)

// MaxTemplateOutput is the largest body a template may produce: past it
// the delivery fails with a payload error (a body is never cut short).
const MaxTemplateOutput = 64 << 10

// MaxTemplateSize is the longest template text a trigger may hold.
const MaxTemplateSize = 16 << 10

// ErrTemplateTooLarge: the template's output is over MaxTemplateOutput.
var ErrTemplateTooLarge = fmt.Errorf("template: the output is over %d KiB", MaxTemplateOutput>>10)

// Tmpl is a trigger's compiled template and the content type of its output.
type Tmpl struct {
	t           *template.Template
	contentType string
	json        bool
}

// TemplateData is what a template sees: the event's fields and the
// delivery's, and nothing else — no environment, no files, no secret.
type TemplateData struct {
	Source      string
	Action      event.Action
	Namespace   string
	Repository  string
	Name        string // namespace/repository
	Tag         string
	Digest      string
	ShortDigest string // sha256: and 12 hex digits
	ResourceURL string
	OccurredAt  time.Time
	Operator    string
	MediaType   string
	Registry    string
	Title       string // "Image pushed", as the chat formats say it
	Trigger     string
	TaskID      string
	Time        time.Time // the send time
	// Tags and Digests are the distinct tags and digests the delivery
	// carries (a coalesced delivery's, or the event's own), Count its
	// events: {{json .Tags}}, {{join .Tags ", "}}.
	Tags    []string
	Digests []string
	Count   int
}

// templateFuncs are the functions a template may call. None reads
// anything but its arguments.
var templateFuncs = template.FuncMap{
	// json writes any value as JSON (a string with its quotes).
	"json": func(v any) (string, error) {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return "", err
		}
		return strings.TrimSuffix(b.String(), "\n"), nil
	},
	// quote is s as a JSON string, quotes included: {"tag": {{quote .Tag}}}.
	"quote": jsonString,
	// join is strings.Join, for .Tags and .Digests in text.
	"join": strings.Join,
	// jsonEscape is s escaped for the inside of a JSON string, without
	// quotes: "{{jsonEscape .Name}}:{{jsonEscape .Tag}}".
	"jsonEscape": func(s string) string { q := jsonString(s); return q[1 : len(q)-1] },
	"upper":      strings.ToUpper,
	"lower":      strings.ToLower,
	"replace":    strings.ReplaceAll,
	"trimPrefix": strings.TrimPrefix,
	"trimSuffix": strings.TrimSuffix,
	"hasPrefix":  strings.HasPrefix,
	"default": func(def, v string) string {
		if v == "" {
			return def
		}
		return v
	},
	"shortDigest": ShortDigest,
	"unix":        func(t time.Time) int64 { return t.Unix() },
	"rfc3339":     func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	// printf replaces the builtin: bounded widths (see safePrintf).
	"printf": safePrintf,
}

func jsonString(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	// json.Marshal escapes <, > and & for HTML; a webhook body need not.
	b = bytes.ReplaceAll(b, []byte(`\u003c`), []byte("<"))
	b = bytes.ReplaceAll(b, []byte(`\u003e`), []byte(">"))
	b = bytes.ReplaceAll(b, []byte(`\u0026`), []byte("&"))
	return string(b)
}

// ParseTemplate compiles a trigger's template; contentType "" means
// application/json. It then runs it on a sample event of every action, so
// that a template that fails (or, for a JSON content type, writes
// something that is not JSON) is refused when the trigger is loaded, not
// at its first delivery.
func ParseTemplate(text, contentType string) (*Tmpl, error) {
	if strings.TrimSpace(text) == "" {
		return nil, errors.New("template: is empty (format template needs template:)")
	}
	if len(text) > MaxTemplateSize {
		return nil, fmt.Errorf("template: is %d bytes, at most %d", len(text), MaxTemplateSize)
	}
	if contentType == "" {
		contentType = ContentTypeJSON
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, fmt.Errorf("content-type %q: %v", contentType, err)
	}
	t, err := template.New("template").Option("missingkey=error").Funcs(templateFuncs).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("template: %v", strings.TrimPrefix(err.Error(), "template: "))
	}
	if err := bounded(t); err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	tm := &Tmpl{t: t, contentType: contentType, json: mt == ContentTypeJSON || strings.HasSuffix(mt, "+json")}
	for _, a := range event.Actions {
		if _, err := tm.Execute(Sample(a), Meta{TaskID: "tsk_00000000000000000000000000000000", Trigger: "sample", Time: sampleTime}); err != nil {
			return nil, fmt.Errorf("on a sample %s event: %w", a, err)
		}
	}
	return tm, nil
}

// ContentType is the Content-Type of the template's output.
func (t *Tmpl) ContentType() string { return t.contentType }

// Execute renders the template for one event.
func (t *Tmpl) Execute(ev event.Event, m Meta) ([]byte, error) {
	at := occurred(ev, m)
	data := TemplateData{
		Source: ev.Source, Action: ev.Action, Namespace: ev.Namespace, Repository: ev.Repository, Name: ev.FullName(),
		Tag: ev.Tag, Digest: ev.Digest, ShortDigest: ShortDigest(ev.Digest), ResourceURL: ev.ResourceURL, OccurredAt: at,
		Operator: ev.Operator, MediaType: ev.MediaType, Registry: ev.Registry, Title: summarize(ev, m).Title,
		Trigger: m.Trigger, TaskID: m.TaskID, Time: m.Time.UTC(),
		Tags: distinct(ev, m, tagOf), Digests: distinct(ev, m, digestOf), Count: len(carried(ev, m)),
	}
	w := &limitedBuffer{max: MaxTemplateOutput}
	if err := t.t.Execute(w, data); err != nil {
		if errors.Is(err, ErrTemplateTooLarge) {
			return nil, ErrTemplateTooLarge
		}
		return nil, fmt.Errorf("template: %v", strings.TrimPrefix(err.Error(), "template: "))
	}
	if t.json && !json.Valid(w.b.Bytes()) {
		return nil, fmt.Errorf("template: the output is not valid JSON, and the content type %s says it is", t.contentType)
	}
	return w.b.Bytes(), nil
}

// bounded refuses what could make a template run for long without
// writing (loops, templates calling templates): the event has no list to
// range over, and a trigger's template is one template. What is left runs
// in time linear in the template's size, and printf's widths are bounded.
func bounded(t *template.Template) error {
	if len(t.Templates()) > 1 {
		return errors.New("define and block are not allowed: a trigger's template is one template")
	}
	var walk func(n parse.Node) error
	walk = func(n parse.Node) error {
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return nil
			}
			for _, c := range n.Nodes {
				if err := walk(c); err != nil {
					return err
				}
			}
		case *parse.IfNode:
			return errors.Join(walk(n.List), walk(n.ElseList))
		case *parse.WithNode:
			return errors.Join(walk(n.List), walk(n.ElseList))
		case *parse.RangeNode:
			return fmt.Errorf("line %d: range is not allowed: the event has no list to range over", n.Line)
		case *parse.TemplateNode:
			return fmt.Errorf("line %d: {{template}} is not allowed", n.Line)
		}
		return nil
	}
	return walk(t.Tree.Root)
}

// maxWidth bounds the width and precision printf may be given, so that a
// template cannot make it allocate gigabytes before the output limit sees
// a byte.
const maxWidth = 1024

// safePrintf is fmt.Sprintf with widths and precisions of at most maxWidth
// and none taken from an argument (%*d).
func safePrintf(format string, args ...any) (string, error) {
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		n := 0
		for i++; i < len(format); i++ {
			c := format[i]
			switch {
			case c == '*':
				return "", errors.New("printf: widths from arguments (%*) are not allowed")
			case c >= '0' && c <= '9':
				n = n*10 + int(c-'0')
				if n > maxWidth {
					return "", fmt.Errorf("printf: widths and precisions are at most %d", maxWidth)
				}
				continue
			case c == '.' || c == '-' || c == '+' || c == '#' || c == ' ' || c == '[' || c == ']':
				n = 0
				continue
			}
			break
		}
	}
	return fmt.Sprintf(format, args...), nil
}

// limitedBuffer fails a write that would take it past max bytes.
type limitedBuffer struct {
	b   bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.b.Len()+len(p) > l.max {
		return 0, ErrTemplateTooLarge
	}
	return l.b.Write(p)
}

// sampleTime is the sample events' time.
var sampleTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Sample is an event of action a with every field set, for checking a
// template and for showing what a format sends.
func Sample(a event.Action) event.Event {
	ev := event.Event{
		Source: "tcr", Action: a, Namespace: "public", Repository: "team/nginx", Tag: "v1.10.0",
		Digest:      "sha256:89a42c3ba15f09a3fbe39856bddacdf9e94cd03df7403cad4fc1050000268fc9",
		ResourceURL: "demo.tencentcloudcr.com/public/team/nginx:v1.10.0", OccurredAt: sampleTime,
		Operator: "332133000", MediaType: "application/vnd.oci.image.manifest.v1+json", Registry: "demo.tencentcloudcr.com",
		Raw: []byte(`{"sample":true}`),
	}
	if a.IsChart() {
		ev.Digest, ev.Tag, ev.MediaType = "", "1.2.0", ""
		ev.ResourceURL = "https://demo.tencentcloudcr.com/chartrepo/public/charts/nginx-1.2.0.tgz"
	}
	return ev
}
