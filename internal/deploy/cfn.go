package deploy

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// The canonical form of a template value is what encoding/json would give
// for its long-form JSON template: map[string]any, []any, string, int,
// float64, bool and nil, with every intrinsic function as a one-key map
// ({"Ref": "X"}, {"Fn::GetAtt": ["X", "Arn"]}, ...). On top of that:
//
//   - Fn::GetAtt is always a two-element list;
//   - Fn::Sub is rewritten as the Fn::Join it means (${X} is a Ref,
//     ${X.Attr} a GetAtt, ${!X} the literal "${X}");
//   - a Fn::Join with "" as delimiter has its adjacent strings merged and
//     empty ones dropped; one remaining part stands for itself.

// Ref is {"Ref": name}.
func Ref(name string) any { return map[string]any{"Ref": name} }

// GetAtt is {"Fn::GetAtt": [resource, attribute]}.
func GetAtt(resource, attribute string) any {
	return map[string]any{"Fn::GetAtt": []any{resource, attribute}}
}

// Join is the canonical {"Fn::Join": ["", parts]}.
func Join(parts ...any) any { return canonicalJoin(parts) }

// shortTags maps the CloudFormation YAML short tags to their long forms.
var shortTags = map[string]string{
	"!Ref":          "Ref",
	"!Condition":    "Condition",
	"!GetAtt":       "Fn::GetAtt",
	"!Sub":          "Fn::Sub",
	"!Join":         "Fn::Join",
	"!If":           "Fn::If",
	"!Equals":       "Fn::Equals",
	"!Not":          "Fn::Not",
	"!And":          "Fn::And",
	"!Or":           "Fn::Or",
	"!Select":       "Fn::Select",
	"!Split":        "Fn::Split",
	"!FindInMap":    "Fn::FindInMap",
	"!Base64":       "Fn::Base64",
	"!GetAZs":       "Fn::GetAZs",
	"!ImportValue":  "Fn::ImportValue",
	"!Cidr":         "Fn::Cidr",
	"!Transform":    "Fn::Transform",
	"!ToJsonString": "Fn::ToJsonString",
	"!Length":       "Fn::Length",
}

// LoadTemplate reads a CloudFormation-style YAML file (a SAM template or
// serverless.yml) into its canonical form.
func LoadTemplate(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: the document is not a mapping", path)
	}
	return m, nil
}

// Decode reads one YAML document into its canonical form. Short tags
// become long forms; any other application tag, a merge key or a duplicate
// key is an error naming its line.
func Decode(b []byte) (any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	v, err := fromNode(&doc)
	if err != nil {
		return nil, err
	}
	return canonical(v), nil
}

func fromNode(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return fromNode(n.Content[0])
	case yaml.AliasNode:
		return fromNode(n.Alias)
	case yaml.ScalarNode:
		if isCoreTag(n.Tag) {
			var v any
			if err := n.Decode(&v); err != nil {
				return nil, fmt.Errorf("line %d: %w", n.Line, err)
			}
			return v, nil
		}
		return intrinsic(n, n.Value)
	case yaml.SequenceNode:
		list := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := fromNode(c)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		if isCoreTag(n.Tag) {
			return list, nil
		}
		return intrinsic(n, list)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, vn := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || !isCoreTag(k.Tag) {
				return nil, fmt.Errorf("line %d: a key must be a plain scalar", k.Line)
			}
			if k.Tag == "!!merge" {
				return nil, fmt.Errorf("line %d: merge keys (<<) are not supported", k.Line)
			}
			if _, dup := m[k.Value]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
			}
			v, err := fromNode(vn)
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
		}
		if isCoreTag(n.Tag) {
			return m, nil
		}
		return intrinsic(n, m)
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node kind %v", n.Line, n.Kind)
}

// isCoreTag reports a tag of the YAML core schema ("!!str", "!!int", ...),
// which yaml.v3 sets on every untagged node, as opposed to an application
// tag such as "!Ref".
func isCoreTag(tag string) bool { return tag == "" || strings.HasPrefix(tag, "!!") }

func intrinsic(n *yaml.Node, v any) (any, error) {
	name, ok := shortTags[n.Tag]
	if !ok {
		return nil, fmt.Errorf("line %d: unknown tag %s", n.Line, n.Tag)
	}
	if name == "Fn::GetAtt" {
		if s, isStr := v.(string); isStr {
			res, attr, found := strings.Cut(s, ".")
			if !found {
				return nil, fmt.Errorf("line %d: !GetAtt %q: want Resource.Attribute", n.Line, s)
			}
			v = []any{res, attr}
		}
	}
	return map[string]any{name: v}, nil
}

// canonical rewrites v bottom-up into the canonical form.
func canonical(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = canonical(x)
		}
		if len(t) != 1 {
			return t
		}
		if s, ok := t["Fn::GetAtt"].(string); ok {
			if res, attr, found := strings.Cut(s, "."); found {
				return GetAtt(res, attr)
			}
		}
		if sub, ok := t["Fn::Sub"]; ok {
			if j, ok := subToJoin(sub); ok {
				return j
			}
		}
		if args, ok := t["Fn::Join"].([]any); ok && len(args) == 2 {
			if delim, ok := args[0].(string); ok && delim == "" {
				if parts, ok := args[1].([]any); ok {
					return canonicalJoin(parts)
				}
			}
		}
		return t
	case []any:
		for i, x := range t {
			t[i] = canonical(x)
		}
		return t
	}
	return v
}

// subToJoin rewrites the argument of a Fn::Sub, a string or [string,
// variables], as the equivalent value; ok is false for a form it does not
// understand (left as it is).
func subToJoin(arg any) (any, bool) {
	var (
		s    string
		vars map[string]any
	)
	switch a := arg.(type) {
	case string:
		s = a
	case []any:
		if len(a) != 2 {
			return nil, false
		}
		str, ok1 := a[0].(string)
		m, ok2 := a[1].(map[string]any)
		if !ok1 || !ok2 {
			return nil, false
		}
		s, vars = str, m
	default:
		return nil, false
	}
	var parts []any
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			parts = append(parts, s)
			break
		}
		end := strings.Index(s[i:], "}")
		if end < 0 {
			return nil, false
		}
		parts = append(parts, s[:i])
		name := s[i+2 : i+end]
		switch {
		case strings.HasPrefix(name, "!"):
			parts = append(parts, "${"+name[1:]+"}")
		case vars[name] != nil:
			parts = append(parts, vars[name])
		case strings.Contains(name, ".") && !strings.HasPrefix(name, "AWS::"):
			res, attr, _ := strings.Cut(name, ".")
			parts = append(parts, GetAtt(res, attr))
		default:
			parts = append(parts, Ref(name))
		}
		s = s[i+end+1:]
	}
	return canonicalJoin(parts), true
}

func canonicalJoin(parts []any) any {
	var out []any
	for _, p := range parts {
		s, isStr := p.(string)
		if !isStr {
			out = append(out, p)
			continue
		}
		if s == "" {
			continue
		}
		if n := len(out); n > 0 {
			if prev, ok := out[n-1].(string); ok {
				out[n-1] = prev + s
				continue
			}
		}
		out = append(out, s)
	}
	switch len(out) {
	case 0:
		return ""
	case 1:
		return out[0]
	}
	return map[string]any{"Fn::Join": []any{"", out}}
}

// Lookup follows keys (map keys, or list indexes written as numbers) into v.
func Lookup(v any, keys ...any) (any, bool) {
	for _, k := range keys {
		switch key := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = m[key]; !ok {
				return nil, false
			}
		case int:
			l, ok := v.([]any)
			if !ok || key < 0 || key >= len(l) {
				return nil, false
			}
			v = l[key]
		default:
			return nil, false
		}
	}
	return v, true
}

// Rewrite returns v with fn applied to every value, bottom-up: fn's result
// replaces the value it was given.
func Rewrite(v any, fn func(any) any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[k] = Rewrite(x, fn)
		}
		return fn(m)
	case []any:
		l := make([]any, len(t))
		for i, x := range t {
			l[i] = Rewrite(x, fn)
		}
		return fn(l)
	}
	return fn(v)
}

// Diff lists where a and b differ, one line per difference, with the path
// to it; nil when they are equal. Numbers compare by value (1 == 1.0).
func Diff(a, b any) []string {
	var out []string
	diff("", a, b, &out)
	return out
}

func diff(path string, a, b any, out *[]string) {
	if path == "" {
		path = "."
	}
	if isIntrinsic(a) || isIntrinsic(b) {
		if !Equal(a, b) {
			*out = append(*out, fmt.Sprintf("%s: %s != %s", path, Format(a), Format(b)))
		}
		return
	}
	am, aMap := a.(map[string]any)
	bm, bMap := b.(map[string]any)
	if aMap && bMap {
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			p := strings.TrimSuffix(path, ".") + "." + k
			av, inA := am[k]
			bv, inB := bm[k]
			switch {
			case !inA:
				*out = append(*out, fmt.Sprintf("%s: missing on the left, right has %s", p, Format(bv)))
			case !inB:
				*out = append(*out, fmt.Sprintf("%s: left has %s, missing on the right", p, Format(av)))
			default:
				diff(p, av, bv, out)
			}
		}
		return
	}
	al, aList := a.([]any)
	bl, bList := b.([]any)
	if aList && bList && len(al) == len(bl) {
		for i := range al {
			diff(fmt.Sprintf("%s[%d]", path, i), al[i], bl[i], out)
		}
		return
	}
	if !scalarEqual(a, b) {
		*out = append(*out, fmt.Sprintf("%s: %s != %s", path, Format(a), Format(b)))
	}
}

func scalarEqual(a, b any) bool {
	if x, ok := number(a); ok {
		y, ok := number(b)
		return ok && x == y
	}
	_, aComposite := a.(map[string]any)
	_, aList := a.([]any)
	if aComposite || aList {
		return false
	}
	return a == b
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint64:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

// Format writes v compactly for messages: {"Ref":"X"} as !Ref X, GetAtt as
// !GetAtt X.Attr.
func Format(v any) string {
	switch t := v.(type) {
	case map[string]any:
		if len(t) == 1 {
			if r, ok := t["Ref"].(string); ok {
				return "!Ref " + r
			}
			if ga, ok := t["Fn::GetAtt"].([]any); ok && len(ga) == 2 {
				return fmt.Sprintf("!GetAtt %v.%v", ga[0], ga[1])
			}
		}
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ": " + Format(t[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case []any:
		parts := make([]string, len(t))
		for i, x := range t {
			parts[i] = Format(x)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case string:
		return fmt.Sprintf("%q", t)
	case nil:
		return "null"
	}
	return fmt.Sprint(v)
}

// Equal reports whether a and b are the same canonical value (numbers by
// value).
func Equal(a, b any) bool {
	am, aMap := a.(map[string]any)
	bm, bMap := b.(map[string]any)
	if aMap || bMap {
		if !aMap || !bMap || len(am) != len(bm) {
			return false
		}
		for k, av := range am {
			bv, ok := bm[k]
			if !ok || !Equal(av, bv) {
				return false
			}
		}
		return true
	}
	al, aList := a.([]any)
	bl, bList := b.([]any)
	if aList || bList {
		if !aList || !bList || len(al) != len(bl) {
			return false
		}
		for i := range al {
			if !Equal(al[i], bl[i]) {
				return false
			}
		}
		return true
	}
	return scalarEqual(a, b)
}

// isIntrinsic reports a one-key map naming an intrinsic function (or a
// condition), which messages show whole.
func isIntrinsic(v any) bool {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return false
	}
	for k := range m {
		return k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::")
	}
	return false
}
