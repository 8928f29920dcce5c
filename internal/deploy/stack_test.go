package deploy

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// template is a CloudFormation template as a tool wrote it (JSON).
type template struct {
	Parameters map[string]map[string]any `json:"Parameters"`
	Conditions map[string]any            `json:"Conditions"`
	Resources  map[string]struct {
		Type                string         `json:"Type"`
		Condition           string         `json:"Condition"`
		DeletionPolicy      string         `json:"DeletionPolicy"`
		UpdateReplacePolicy string         `json:"UpdateReplacePolicy"`
		DependsOn           any            `json:"DependsOn"`
		Metadata            map[string]any `json:"Metadata"`
		Properties          map[string]any `json:"Properties"`
	} `json:"Resources"`
	Outputs map[string]struct {
		Condition   string `json:"Condition"`
		Description string `json:"Description"`
		Value       any    `json:"Value"`
		Export      any    `json:"Export"`
	} `json:"Outputs"`
}

// stack is one tool's template as CloudFormation would create it with one
// parameter set: conditions evaluated, the resources and outputs whose
// condition is false left out, and every value resolved as far as a
// template can be without deploying it (see resolver). The resources the
// tool generates are under the SAM ids (see identity), so the two tools'
// stacks compare resource by resource.
type stack struct {
	tool string // "SAM" or "serverless"
	set  paramSet
	// params are the values of the template's own CloudFormation parameters
	// (serverless package writes most params into the template instead).
	params     map[string]string
	paramDefs  map[string]map[string]any
	conditions map[string]bool
	resources  map[string]resource
	outputs    map[string]output
	// problems found while resolving: an intrinsic the resolver does not
	// know, a reference to nothing, ...
	problems []string
}

type resource struct {
	Type                                string
	DeletionPolicy, UpdateReplacePolicy string
	// Properties are resolved; Metadata and DependsOn as written.
	Properties map[string]any
	Metadata   map[string]any
	DependsOn  any
}

type output struct {
	Description string
	Value       any
	Export      any
}

func (s *stack) String() string { return s.tool + " (" + s.set.name + ")" }

var (
	stacksMu sync.Mutex
	stackMap = map[string]*stack{}
)

// stacksFor returns both tools' stacks for a parameter set, SAM first.
func stacksFor(t *testing.T, set paramSet) []*stack {
	t.Helper()
	return []*stack{loadStack(t, "SAM", set), loadStack(t, "serverless", set)}
}

// allStacks returns both tools' stacks for every parameter set.
func allStacks(t *testing.T) []*stack {
	t.Helper()
	var out []*stack
	for _, set := range paramSets {
		out = append(out, stacksFor(t, set)...)
	}
	return out
}

func loadStack(t *testing.T, tool string, set paramSet) *stack {
	t.Helper()
	var file string
	if tool == "SAM" {
		file = samTranslate(t, set)
	} else {
		file = serverlessPackage(t, set)[1] // the update-stack template: what a deploy applies
	}
	stacksMu.Lock()
	defer stacksMu.Unlock()
	key := tool + " " + set.name
	if s := stackMap[key]; s != nil {
		return s
	}
	tpl, err := readTemplate(file)
	if err != nil {
		t.Fatal(err)
	}
	s := newStack(tool, set, tpl)
	stackMap[key] = s
	return s
}

// pseudoParameters are CloudFormation's; the resolver keeps them as
// references ("${AWS::StackName}"), except AWS::NoValue.
var pseudoParameters = []string{"AWS::AccountId", "AWS::NotificationARNs", "AWS::Partition", "AWS::Region", "AWS::StackId", "AWS::StackName", "AWS::URLSuffix"}

func newStack(tool string, set paramSet, tpl *template) *stack {
	s := &stack{tool: tool, set: set, params: map[string]string{}, paramDefs: tpl.Parameters,
		conditions: map[string]bool{}, resources: map[string]resource{}, outputs: map[string]output{}}
	for name, def := range tpl.Parameters {
		// A SAM deploy passes the set's values; serverless deploy passes
		// none: its CloudFormation parameters take their defaults, which
		// the framework wrote from its params.
		v, given := set.values[name]
		if tool != "SAM" || !given {
			d, ok := def["Default"]
			if !ok {
				s.problems = append(s.problems, "parameter "+name+" has no default and no value")
				continue
			}
			v = scalar(d)
		}
		s.params[name] = v
	}
	for name := range set.values {
		if _, ok := tpl.Parameters[name]; !ok && tool == "SAM" {
			s.problems = append(s.problems, "the parameter set gives "+name+", which template.yaml does not declare")
		}
	}
	r := &resolver{s: s, tpl: tpl, rename: renames(tpl), evaluating: map[string]bool{}}
	for name := range tpl.Conditions {
		s.conditions[name] = r.condition(name)
	}
	for id, res := range tpl.Resources {
		if res.Condition != "" && !r.condition(res.Condition) {
			continue
		}
		props, _ := r.resolve(res.Properties, "resource "+id).(map[string]any)
		if _, dup := s.resources[r.id(id)]; dup {
			s.problems = append(s.problems, fmt.Sprintf("two resources are %s (one of them %s): a duplicate, or a generated resource declared again", r.id(id), id))
		}
		s.resources[r.id(id)] = resource{Type: res.Type, DeletionPolicy: res.DeletionPolicy, UpdateReplacePolicy: res.UpdateReplacePolicy,
			Properties: props, Metadata: res.Metadata, DependsOn: res.DependsOn}
	}
	for name, o := range tpl.Outputs {
		if o.Condition != "" && !r.condition(o.Condition) {
			continue
		}
		s.outputs[name] = output{Description: o.Description, Value: r.resolve(o.Value, "output "+name), Export: o.Export}
	}
	return s
}

// resolver resolves template values for one stack. The result has no
// intrinsic functions left: a parameter is its value, Fn::If its branch,
// AWS::NoValue removes its key or list element, Fn::Join and Fn::Sub are
// the string they make, and a reference to a resource or pseudo parameter
// is written as Fn::Sub writes it: "${Id}" for a Ref, "${Id.Attr}" for an
// attribute (within a longer string where Join or Sub put it). Every scalar
// is a string, as CloudFormation hands parameter values and property
// values to a resource (10, 10.0 and "10" are the same). An intrinsic it
// does not know is a problem, never silently compared.
type resolver struct {
	s          *stack
	tpl        *template
	rename     map[string]string
	evaluating map[string]bool
}

// noValue is what AWS::NoValue resolves to.
type noValue struct{}

func (r *resolver) problem(format string, args ...any) {
	r.s.problems = append(r.s.problems, fmt.Sprintf(format, args...))
}

// id is the logical id a template's resource is known by in the stack.
func (r *resolver) id(id string) string {
	if to, ok := r.rename[id]; ok {
		return to
	}
	return id
}

// ref resolves a Ref, or the ${name} of a Fn::Sub.
func (r *resolver) ref(name, where string) any {
	if v, ok := r.s.params[name]; ok {
		return v
	}
	if name == "AWS::NoValue" {
		return noValue{}
	}
	if _, ok := r.tpl.Resources[name]; ok {
		return Ref(r.id(name))
	}
	for _, p := range pseudoParameters {
		if p == name {
			return Ref(name)
		}
	}
	r.problem("%s: Ref to %s, which is neither a parameter nor a resource", where, name)
	return Ref(name)
}

func (r *resolver) getAtt(id, attr, where string) string {
	if _, ok := r.tpl.Resources[id]; !ok {
		r.problem("%s: Fn::GetAtt of %s, which is not a resource", where, id)
	}
	return GetAtt(r.id(id), attr)
}

func (r *resolver) resolve(v any, where string) any {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for k, arg := range x {
				if k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
					return r.intrinsic(k, arg, where)
				}
			}
		}
		out := map[string]any{}
		for k, e := range x {
			if e = r.resolve(e, where+"."+k); e != (noValue{}) {
				out[k] = e
			}
		}
		return out
	case []any:
		out := []any{}
		for i, e := range x {
			if e = r.resolve(e, fmt.Sprintf("%s[%d]", where, i)); e != (noValue{}) {
				out = append(out, e)
			}
		}
		return out
	case nil:
		return nil
	}
	return scalar(v)
}

func (r *resolver) intrinsic(fn string, arg any, where string) any {
	where += "." + fn
	args, _ := arg.([]any)
	switch fn {
	case "Ref":
		if name, ok := arg.(string); ok {
			return r.ref(name, where)
		}
	case "Fn::GetAtt":
		if s, ok := arg.(string); ok {
			if id, attr, found := strings.Cut(s, "."); found {
				return r.getAtt(id, attr, where)
			}
		}
		if len(args) == 2 {
			id, ok1 := args[0].(string)
			attr, ok2 := args[1].(string)
			if ok1 && ok2 {
				return r.getAtt(id, attr, where)
			}
		}
	case "Fn::If":
		if len(args) == 3 {
			if name, ok := args[0].(string); ok {
				if r.condition(name) {
					return r.resolve(args[1], where)
				}
				return r.resolve(args[2], where)
			}
		}
	case "Fn::Join":
		if len(args) == 2 {
			delim, ok := args[0].(string)
			parts, isList := r.resolve(args[1], where).([]any)
			if ok && isList {
				strs := make([]string, len(parts))
				for i, p := range parts {
					if strs[i], ok = p.(string); !ok {
						r.problem("%s: joins %v, which is not a string", where, p)
					}
				}
				return strings.Join(strs, delim)
			}
		}
	case "Fn::Sub":
		if s, ok := arg.(string); ok {
			return r.sub(s, nil, where)
		}
		if len(args) == 2 {
			s, ok1 := args[0].(string)
			vars, ok2 := args[1].(map[string]any)
			if ok1 && ok2 {
				return r.sub(s, vars, where)
			}
		}
	}
	r.problem("%s: the resolver does not know %s %v: teach stack_test.go, or write it as the other template does", where, fn, arg)
	return nil
}

var subVar = regexp.MustCompile(`\$\{([^}]*)\}`)

func (r *resolver) sub(s string, vars map[string]any, where string) string {
	return subVar.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		if strings.HasPrefix(name, "!") {
			return m // a literal ${...}
		}
		var v any
		if x, ok := vars[name]; ok {
			v = r.resolve(x, where)
		} else if id, attr, found := strings.Cut(name, "."); found && !strings.HasPrefix(name, "AWS::") {
			v = r.getAtt(id, attr, where)
		} else {
			v = r.ref(name, where)
		}
		str, ok := v.(string)
		if !ok {
			r.problem("%s: ${%s} is %v, not a string", where, name, v)
		}
		return str
	})
}

// condition evaluates a named condition.
func (r *resolver) condition(name string) bool {
	c, ok := r.tpl.Conditions[name]
	if !ok {
		r.problem("condition %s is not declared", name)
		return false
	}
	if r.evaluating[name] {
		r.problem("condition %s refers to itself", name)
		return false
	}
	r.evaluating[name] = true
	defer delete(r.evaluating, name)
	return r.test(c, "condition "+name)
}

func (r *resolver) test(c any, where string) bool {
	m, _ := c.(map[string]any)
	if len(m) == 1 {
		for fn, arg := range m {
			args, _ := arg.([]any)
			switch {
			case fn == "Condition":
				if name, ok := arg.(string); ok {
					return r.condition(name)
				}
			case fn == "Fn::Equals" && len(args) == 2:
				return reflect.DeepEqual(r.resolve(args[0], where), r.resolve(args[1], where))
			case fn == "Fn::Not" && len(args) == 1:
				return !r.test(args[0], where)
			case fn == "Fn::And" || fn == "Fn::Or":
				all, anyOf := true, false
				for _, a := range args {
					v := r.test(a, where)
					all, anyOf = all && v, anyOf || v
				}
				if fn == "Fn::And" {
					return all
				}
				return anyOf
			}
		}
	}
	r.problem("%s: %v is not a condition the resolver knows", where, c)
	return false
}

// scalar is a JSON scalar as the string CloudFormation makes of it.
func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

// renames maps the logical ids of the resources a tool generates to the SAM
// ids of the same resources, found by what they are (identity).
func renames(tpl *template) map[string]string {
	// The SAM ids of the functions, by their role.
	function := map[string]string{}
	for id, r := range tpl.Resources {
		if r.Type != "AWS::Lambda::Function" {
			continue
		}
		role := refTarget(r.Properties["Role"])
		for _, fn := range Functions {
			if fn.Role == role {
				function[id] = fn.LogicalID
			}
		}
	}
	out := map[string]string{}
	for id, r := range tpl.Resources {
		if to, ok := samIDs[identity(r.Type, r.Properties, function, id)]; ok && to != id {
			out[id] = to
		}
	}
	return out
}

// samIDs are the SAM transform's ids of the resources it generates, by
// their identity.
var samIDs = map[string]string{
	identityOf("AWS::Lambda::Function", ReceiverFunction):                                                   ReceiverFunction,
	identityOf("AWS::Lambda::Function", DispatcherFunction):                                                 DispatcherFunction,
	identityOf("AWS::Lambda::Url", ReceiverFunction):                                                        ReceiverFunctionURL,
	identityOf("AWS::Lambda::EventSourceMapping", DispatcherFunction, TaskQueue):                            DispatcherFunction + "Tasks",
	identityOf("AWS::Lambda::Permission", ReceiverFunction, "lambda:InvokeFunctionUrl", "*"):                ReceiverFunction + "UrlPublicPermissions",
	identityOf("AWS::Lambda::Permission", ReceiverFunction, "lambda:InvokeFunction", "*") + " via URL true": ReceiverFunction + "URLInvokeAllowPublicAccess",
}

// identity says what a Lambda resource is, whatever its logical id: a
// function by its role, a URL or permission by its function (and action,
// principal and whether only calls through the URL), an event source
// mapping by its function and queue. Any
// other resource is its logical id, which both templates share.
func identity(typ string, p map[string]any, function map[string]string, id string) string {
	fn := func(v any) string {
		if f, ok := function[refTarget(v)]; ok {
			return f
		}
		return refTarget(v)
	}
	switch typ {
	case "AWS::Lambda::Function":
		return identityOf(typ, fn(map[string]any{"Ref": id}))
	case "AWS::Lambda::Url":
		return identityOf(typ, fn(p["TargetFunctionArn"]))
	case "AWS::Lambda::EventSourceMapping":
		return identityOf(typ, fn(p["FunctionName"]), refTarget(p["EventSourceArn"]))
	case "AWS::Lambda::Permission":
		id := identityOf(typ, fn(p["FunctionName"]), scalar(p["Action"]), scalar(p["Principal"]))
		if p["InvokedViaFunctionUrl"] != nil {
			id += " via URL " + scalar(p["InvokedViaFunctionUrl"])
		}
		return id
	}
	return id
}

func identityOf(typ string, parts ...string) string { return typ + " " + strings.Join(parts, " ") }

// refTarget is the logical id a Ref or Fn::GetAtt names, or "".
func refTarget(v any) string {
	m, _ := v.(map[string]any)
	if s, ok := m["Ref"].(string); ok {
		return s
	}
	switch ga := m["Fn::GetAtt"].(type) {
	case []any:
		if len(ga) > 0 {
			return scalar(ga[0])
		}
	case string:
		id, _, _ := strings.Cut(ga, ".")
		return id
	}
	return ""
}

// ofType lists the logical ids of the stack's resources of one type.
func (s *stack) ofType(typ string) []string {
	var ids []string
	for id, r := range s.resources {
		if r.Type == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// prop follows keys (map keys, list indexes) into a resource's properties.
func (s *stack) prop(id string, keys ...any) any {
	return lookup(s.resources[id].Properties, keys...)
}

func lookup(v any, keys ...any) any {
	for _, k := range keys {
		switch key := k.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[key]
		case int:
			l, _ := v.([]any)
			if key < 0 || key >= len(l) {
				return nil
			}
			v = l[key]
		}
	}
	return v
}

// param is the value a parameter has in the stack's set: the set's, or the
// default deploy.Parameters gives it.
func (set paramSet) param(name string) string {
	if v, ok := set.values[name]; ok {
		return v
	}
	for _, p := range Parameters {
		if p.SAM == name {
			return p.Default
		}
	}
	panic("no parameter " + name)
}

// expand is a value of deploy.go (Fn::Sub syntax) as it resolves in this
// set: its parameters replaced by their values.
func (set paramSet) expand(s string) string {
	return subVar.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		for _, p := range Parameters {
			if p.SAM == name {
				return set.param(name)
			}
		}
		return m
	})
}

// diff lists where a and b differ, with the path to each difference.
func diff(path string, a, b any) []string {
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
		var out []string
		for _, k := range sortedKeys(keys) {
			av, inA := am[k]
			bv, inB := bm[k]
			switch {
			case !inA:
				out = append(out, fmt.Sprintf("%s.%s: missing on the left, right has %s", path, k, format(bv)))
			case !inB:
				out = append(out, fmt.Sprintf("%s.%s: left has %s, missing on the right", path, k, format(av)))
			default:
				out = append(out, diff(path+"."+k, av, bv)...)
			}
		}
		return out
	}
	al, aList := a.([]any)
	bl, bList := b.([]any)
	if aList && bList && len(al) == len(bl) {
		var out []string
		for i := range al {
			out = append(out, diff(fmt.Sprintf("%s[%d]", path, i), al[i], bl[i])...)
		}
		return out
	}
	if !reflect.DeepEqual(a, b) {
		return []string{fmt.Sprintf("%s: %s != %s", path, format(a), format(b))}
	}
	return nil
}

// format writes a resolved value compactly, keys sorted.
func format(v any) string {
	switch x := v.(type) {
	case map[string]any:
		parts := make([]string, 0, len(x))
		for _, k := range sortedKeys(x) {
			parts = append(parts, k+": "+format(x[k]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = format(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case string:
		return strconv.Quote(x)
	case nil:
		return "(none)"
	}
	return fmt.Sprint(v)
}

// list is a resolved value as a list: a scalar is a list of one, nothing an
// empty list (IAM's Action and Resource take both forms).
func list(v any) []any {
	switch x := v.(type) {
	case []any:
		return x
	case nil:
		return nil
	}
	return []any{v}
}

// value is v resolved as a literal: what deploy.go's and the Go code's
// expectations compare as (every scalar a string).
func value(v any) any {
	r := &resolver{s: &stack{}, tpl: &template{}}
	return r.resolve(v, "")
}
