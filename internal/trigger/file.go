package trigger

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/payload"
)

// MaxFileSize bounds a trigger file.
const MaxFileSize = 4 << 20

// fileFields are the keys a trigger may have in a file, in documentation order.
var fileFields = []string{
	"name", "description", "enabled", "actions", "namespace", "repository",
	"tag", "exclude-tags", "url", "headers", "format", "secret", "timeout", "template", "content-type",
	"auto-disable-after", "max-concurrency", "rate", "coalesce",
}

// fileTrigger is a trigger as written in a file.
type fileTrigger struct {
	Name        string            `yaml:"name"`
	Description string            `yaml:"description"`
	Enabled     *bool             `yaml:"enabled"`
	Actions     stringList        `yaml:"actions"`
	Namespace   string            `yaml:"namespace"`
	Repository  string            `yaml:"repository"`
	Tag         stringList        `yaml:"tag"`
	ExcludeTags stringList        `yaml:"exclude-tags"`
	URL         string            `yaml:"url"`
	Headers     map[string]string `yaml:"headers"`
	Format      string            `yaml:"format"`
	Secret      stringList        `yaml:"secret"`
	Timeout     string            `yaml:"timeout"`
	Template    string            `yaml:"template"`
	ContentType string            `yaml:"content-type"`
	// AutoDisableAfter is a Go duration or a number of days ("5d"); "0"
	// is never.
	AutoDisableAfter *string `yaml:"auto-disable-after"`
	// MaxConcurrency and Rate are limits; given, they must be positive.
	MaxConcurrency *int     `yaml:"max-concurrency"`
	Rate           *float64 `yaml:"rate"`
	// Coalesce is a Go duration ("10s"); "0" or absent is off.
	Coalesce string `yaml:"coalesce"`
}

// stringList accepts a scalar or a sequence of scalars.
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			*l = nil
			return nil
		}
		*l = stringList{n.Value}
		return nil
	case yaml.SequenceNode:
		var out []string
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: expected a string, found a %s", c.Line, kindName(c))
			}
			out = append(out, c.Value)
		}
		*l = out
		return nil
	}
	return fmt.Errorf("line %d: expected a string or a list of strings, found a %s", n.Line, kindName(n))
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	}
	return "value"
}

// LoadOptions tunes Parse.
type LoadOptions struct {
	// LookupEnv resolves ${NAME} in url, header values and secrets, so
	// credentials can stay out of the file. Nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Rules are the deployment's validation settings.
	Rules Rules
	// Warn, when not nil, receives ReadFile's warning about a file that
	// others may read and that holds credentials in clear.
	Warn func(msg string)

	// inClear collects the fields in clear, for ReadFile's warning.
	inClear *[]string
}

// ReadFile parses and validates a trigger file. A file that users other
// than its owner may read, and that holds header values, secrets or a URL
// query in clear (not as ${NAME}), is loaded with a warning to opts.Warn.
func ReadFile(path string, opts LoadOptions) ([]Trigger, error) {
	f, err := os.Open(path)
	if err != nil {
		// The caller names the file; the *PathError would name it again.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("cannot read the trigger file: %w", err)
	}
	defer f.Close()
	var inClear []string
	if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 && opts.Warn != nil {
		opts.inClear = &inClear
		defer func() {
			if len(inClear) > 0 {
				opts.Warn(fmt.Sprintf("%s may be read by other users (mode %v) and holds credentials in clear (%s): chmod 600 %s, or write them as ${NAME} and set the variables",
					path, st.Mode().Perm(), strings.Join(inClear, ", "), path))
			}
		}()
	}
	return Parse(f, opts)
}

// Parse reads a trigger file: a YAML mapping with a "triggers" list. It
// returns every problem it finds — YAML errors, unknown keys, invalid values
// and rules that span triggers — in one *ValidationError.
func Parse(r io.Reader, opts LoadOptions) ([]Trigger, error) {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read trigger file: %w", err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("trigger file is larger than %d bytes", MaxFileSize)
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("trigger file is empty: it needs a \"triggers:\" list")
		}
		return nil, fmt.Errorf("trigger file is not valid YAML: %w", err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: a trigger file is a mapping with a \"triggers:\" list, found a %s", root.Line, kindName(root))
	}
	var list *yaml.Node
	var ps []Problem
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "triggers" {
			ps = append(ps, Problem{Trigger: "(file)", Line: k.Line, Message: fmt.Sprintf("unknown key %q (a trigger file has only \"triggers\")", k.Value)})
			continue
		}
		list = v
	}
	if list == nil {
		return nil, errors.New("trigger file has no \"triggers:\" list")
	}
	if list.Kind != yaml.SequenceNode && !(list.Kind == yaml.ScalarNode && list.Tag == "!!null") {
		return nil, fmt.Errorf("line %d: \"triggers\" must be a list, found a %s", list.Line, kindName(list))
	}

	ts := make([]Trigger, 0, len(list.Content))
	lines := make([]int, 0, len(list.Content))
	// A field whose ${NAME} could not be expanded is reported once, as
	// that: its validation would only add a confusing follow-on ("empty
	// host").
	unexpanded := map[string]bool{} // line and field
	unexpandedKey := func(line int, field string) string { return fmt.Sprint(line, "\x00", field) }
	for i, n := range list.Content {
		label := fmt.Sprintf("#%d", i+1)
		if n.Kind != yaml.MappingNode {
			ps = append(ps, Problem{Trigger: label, Line: n.Line, Message: fmt.Sprintf("a trigger is a mapping, found a %s", kindName(n))})
			continue
		}
		if name := mappingValue(n, "name"); name != "" {
			label = name
		}
		for j := 0; j+1 < len(n.Content); j += 2 {
			if k := n.Content[j]; !known(k.Value) {
				ps = append(ps, Problem{Trigger: label, Line: k.Line, Field: k.Value, Message: fmt.Sprintf("unknown field (known: %s)", strings.Join(fileFields, ", "))})
			}
		}
		var ft fileTrigger
		if err := n.Decode(&ft); err != nil {
			// A type error leaves the other fields decoded: report it and
			// go on validating, so every mistake shows at once.
			ps = append(ps, Problem{Trigger: label, Line: n.Line, Message: yamlMessage(err)})
			var te *yaml.TypeError
			if !errors.As(err, &te) {
				continue
			}
		}
		t, tps := ft.toTrigger(opts.LookupEnv)
		if opts.inClear != nil {
			for _, field := range ft.clearFields() {
				*opts.inClear = append(*opts.inClear, label+" "+field)
			}
		}
		for _, p := range tps {
			p.Trigger, p.Line = label, n.Line
			ps = append(ps, p)
			if p.env {
				unexpanded[unexpandedKey(p.Line, p.Field)] = true
			}
		}
		ts = append(ts, t)
		lines = append(lines, n.Line)
	}
	if err := opts.Rules.validateSet(ts, lines); err != nil {
		var ve *ValidationError
		errors.As(err, &ve)
		for _, p := range ve.Problems {
			if !unexpanded[unexpandedKey(p.Line, p.Field)] {
				ps = append(ps, p)
			}
		}
	}
	if len(ps) > 0 {
		sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
		return nil, &ValidationError{Problems: ps}
	}
	return ts, nil
}

func known(k string) bool {
	for _, f := range fileFields {
		if f == k {
			return true
		}
	}
	return false
}

func mappingValue(n *yaml.Node, key string) string {
	for j := 0; j+1 < len(n.Content); j += 2 {
		if n.Content[j].Value == key && n.Content[j+1].Kind == yaml.ScalarNode {
			return n.Content[j+1].Value
		}
	}
	return ""
}

// yamlMessage shortens yaml.v3's type errors ("yaml: unmarshal errors:\n  line 3: ...").
func yamlMessage(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return strings.Join(te.Errors, "; ")
	}
	return err.Error()
}

// clearFields names the fields of ft that hold credentials in clear:
// header values, secrets and a URL query not written as ${NAME}.
func (ft fileTrigger) clearFields() []string {
	var out []string
	literal := func(v string) bool { return v != "" && !strings.Contains(v, "${") }
	if _, q, ok := strings.Cut(ft.URL, "?"); ok && literal(q) {
		out = append(out, "url query")
	}
	for _, v := range ft.Headers {
		if literal(v) {
			out = append(out, "headers")
			break
		}
	}
	for _, v := range ft.Secret {
		if literal(v) {
			out = append(out, "secret")
			break
		}
	}
	return out
}

func (ft fileTrigger) toTrigger(lookup func(string) (string, bool)) (Trigger, []Problem) {
	var ps []Problem
	add := func(field, format string, args ...any) {
		ps = append(ps, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	expand := func(field, s string) string {
		out, err := expandEnv(s, lookup)
		if err != nil {
			ps = append(ps, Problem{Field: field, Message: err.Error(), env: true})
		}
		return out
	}
	t := Trigger{
		Name:        ft.Name,
		Description: ft.Description,
		Enabled:     ft.Enabled == nil || *ft.Enabled,
		Namespace:   ft.Namespace,
		Repository:  ft.Repository,
		Format:      payload.Format(ft.Format),
		Template:    ft.Template,
		ContentType: ft.ContentType,
	}
	if t.Format == "" {
		t.Format = payload.Default
	}
	for _, a := range ft.Actions {
		t.Actions = append(t.Actions, event.Action(a))
	}
	switch len(ft.Tag) {
	case 0:
	case 1:
		t.Tag = ft.Tag[0]
	default:
		for _, tag := range ft.Tag {
			if strings.Contains(tag, ";") {
				add("tag", "list item %q contains ';': write either a list or a ';'-separated string", tag)
			}
		}
		t.Tag = strings.Join(ft.Tag, ";")
	}
	t.ExcludeTags = ft.ExcludeTags
	t.URL = expand("url", ft.URL)
	if len(ft.Headers) > 0 {
		t.Headers = make(map[string]string, len(ft.Headers))
		for k, v := range ft.Headers {
			t.Headers[k] = expand("headers", v)
		}
	}
	for _, s := range ft.Secret {
		t.Secrets = append(t.Secrets, expand("secret", s))
	}
	if ft.Timeout != "" {
		d, err := time.ParseDuration(ft.Timeout)
		if err != nil {
			add("timeout", "%q is not a duration like \"5s\"", ft.Timeout)
		}
		t.Timeout = Duration(d)
	}
	if ft.AutoDisableAfter != nil {
		d, err := parseLongDuration(*ft.AutoDisableAfter)
		if err != nil {
			add("auto-disable-after", "%q is not a duration like \"5d\", \"36h\" or \"0\" (never)", *ft.AutoDisableAfter)
		}
		v := Duration(d)
		t.AutoDisableAfter = &v
	}
	if ft.MaxConcurrency != nil {
		if *ft.MaxConcurrency < 1 {
			add("max-concurrency", "%d: use at least 1 (leave it out for no limit)", *ft.MaxConcurrency)
		}
		t.MaxConcurrency = *ft.MaxConcurrency
	}
	if ft.Rate != nil {
		if !(*ft.Rate > 0) { // NaN too
			add("rate", "%v: requests per second must be more than 0 (leave it out for no limit)", *ft.Rate)
		}
		t.Rate = *ft.Rate
	}
	if ft.Coalesce != "" {
		d, err := time.ParseDuration(ft.Coalesce)
		if err != nil {
			add("coalesce", "%q is not a duration like \"10s\" (or \"0\": off)", ft.Coalesce)
		}
		t.Coalesce = Duration(d)
	}
	return t, ps
}

// parseLongDuration reads a Go duration, "0", or a whole number of days
// ("5d").
func parseLongDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "d"); ok && n != "" && strings.Trim(n, "0123456789") == "" {
		var days int64
		if _, err := fmt.Sscan(n, &days); err != nil || days > 3650 {
			return 0, fmt.Errorf("%q: too many days", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	if s == "0" {
		return 0, nil
	}
	return time.ParseDuration(s)
}

var envRef = regexp.MustCompile(`\$\{([^}]*)\}`)
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expandEnv replaces ${NAME} with the variable's value. A missing variable or
// a malformed reference is an error; a lone "$" is kept as is.
func expandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var err error
	out := envRef.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		if !envName.MatchString(name) {
			err = errors.Join(err, fmt.Errorf("%q is not a valid environment variable reference", m))
			return ""
		}
		v, ok := lookup(name)
		if !ok {
			err = errors.Join(err, fmt.Errorf("environment variable %s is not set: export it before running regtrigger, or write the value in the file", name))
		}
		return v
	})
	return out, err
}
