package deploy

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// root is the repository root, seen from this package's directory.
const root = "../.."

// stack is one template file reduced to what both kinds share, in canonical
// form, with serverless.yml's ${param:x} strings read as {"Ref": "<SAM
// parameter>"} and its generated logical ids read as the SAM ones.
type stack struct {
	file       string
	sam        bool
	doc        map[string]any
	resources  map[string]map[string]any // declared resources, without SAM functions
	conditions map[string]any
	outputs    map[string]any
	params     map[string]paramSpec // by SAM name
	functions  map[string]functionSpec
	// problems found while normalising (unknown parameters, ...).
	problems []string
}

type paramSpec struct {
	Default    string
	HasDefault bool
	Def        map[string]any // template.yaml: the CloudFormation parameter
}

// functionSpec is a function's settings in a form both templates map to.
type functionSpec struct {
	Runtime, Architecture, Handler string
	MemorySize, Timeout            any
	Role                           string
	Env                            map[string]any
	Logging                        any
	ReservedConcurrency            any
	URLAuthType                    string // "" without a Function URL
	// SQS is the SQS event source in SAM's property names.
	SQS         map[string]any
	OtherEvents []string
	// Build says how the code is built: SAM "makefile CodeUri=.",
	// serverless.yml the artifact path.
	Build string
}

func loadStacks(t *testing.T) []*stack {
	t.Helper()
	sam, err := loadSAM(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sls, err := loadServerless(filepath.Join(root, "serverless.yml"))
	if err != nil {
		t.Fatal(err)
	}
	return []*stack{sam, sls}
}

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }

func get(v any, keys ...any) any { x, _ := Lookup(v, keys...); return x }

func str(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func resourcesOf(v any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range asMap(v) {
		out[id] = asMap(r)
	}
	return out
}

func loadSAM(path string) (*stack, error) {
	doc, err := LoadTemplate(path)
	if err != nil {
		return nil, err
	}
	s := &stack{file: "template.yaml", sam: true, doc: doc, resources: map[string]map[string]any{},
		conditions: asMap(doc["Conditions"]), outputs: asMap(doc["Outputs"]),
		params: map[string]paramSpec{}, functions: map[string]functionSpec{}}
	for name, p := range asMap(doc["Parameters"]) {
		d, has := asMap(p)["Default"]
		s.params[name] = paramSpec{Default: str(d), HasDefault: has, Def: asMap(p)}
	}
	globals := asMap(get(doc, "Globals", "Function"))
	for id, r := range resourcesOf(doc["Resources"]) {
		if r["Type"] != "AWS::Serverless::Function" {
			s.resources[id] = r
			continue
		}
		var fn *Function
		for i := range Functions {
			if Functions[i].LogicalID == id {
				fn = &Functions[i]
			}
		}
		if fn == nil {
			s.problems = append(s.problems, "an unexpected function "+id)
			continue
		}
		s.functions[fn.Name] = samFunction(r, globals)
	}
	return s, nil
}

func samFunction(r, globals map[string]any) functionSpec {
	p := asMap(r["Properties"])
	prop := func(k string) any {
		if v, ok := p[k]; ok {
			return v
		}
		return globals[k]
	}
	f := functionSpec{
		Runtime: str(prop("Runtime")), Handler: str(prop("Handler")),
		MemorySize: prop("MemorySize"), Timeout: prop("Timeout"),
		Logging: prop("LoggingConfig"), ReservedConcurrency: p["ReservedConcurrentExecutions"],
		Env:   map[string]any{},
		Build: fmt.Sprintf("%s CodeUri=%s", str(get(r, "Metadata", "BuildMethod")), str(prop("CodeUri"))),
	}
	if a, ok := prop("Architectures").([]any); ok && len(a) == 1 {
		f.Architecture = str(a[0])
	} else {
		f.Architecture = Format(prop("Architectures"))
	}
	if ga, ok := get(p, "Role", "Fn::GetAtt").([]any); ok && len(ga) == 2 && ga[1] == "Arn" {
		f.Role = str(ga[0])
	} else {
		f.Role = Format(p["Role"])
	}
	for k, v := range asMap(get(globals, "Environment", "Variables")) {
		f.Env[k] = v
	}
	for k, v := range asMap(get(p, "Environment", "Variables")) {
		f.Env[k] = v
	}
	if u := asMap(p["FunctionUrlConfig"]); u != nil {
		f.URLAuthType = str(u["AuthType"])
	}
	names := make([]string, 0)
	for name := range asMap(p["Events"]) {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ev := asMap(asMap(p["Events"])[name])
		if ev["Type"] == "SQS" && f.SQS == nil {
			f.SQS = asMap(ev["Properties"])
			continue
		}
		f.OtherEvents = append(f.OtherEvents, fmt.Sprintf("%s (%v)", name, ev["Type"]))
	}
	return f
}

var (
	paramVar    = regexp.MustCompile(`^\$\{param:([A-Za-z0-9_-]+)\}$`)
	anyParamVar = regexp.MustCompile(`\$\{param:`)
)

func loadServerless(path string) (*stack, error) {
	raw, err := LoadTemplate(path)
	if err != nil {
		return nil, err
	}
	s := &stack{file: "serverless.yml", params: map[string]paramSpec{}, functions: map[string]functionSpec{}}
	bySLS := map[string]string{}
	for _, p := range Parameters {
		bySLS[p.Serverless] = p.SAM
	}
	defaults := asMap(get(raw, "params", "default"))
	for name, v := range defaults {
		sam, ok := bySLS[name]
		if !ok {
			s.problems = append(s.problems, fmt.Sprintf("params.default.%s is not a stack parameter (deploy.Parameters)", name))
			continue
		}
		s.params[sam] = paramSpec{Default: str(v), HasDefault: true}
	}
	for _, p := range Parameters {
		if _, ok := s.params[p.SAM]; !ok {
			s.params[p.SAM] = paramSpec{}
		}
	}
	for stage := range asMap(raw["params"]) {
		if stage != "default" {
			s.problems = append(s.problems, "params."+stage+": stage-specific params make the defaults untestable; pass --param instead")
		}
	}
	// Normalise everything but the params block itself.
	params := raw["params"]
	delete(raw, "params")
	doc := asMap(Rewrite(raw, func(v any) any {
		switch t := v.(type) {
		case string:
			if m := paramVar.FindStringSubmatch(t); m != nil {
				sam, ok := bySLS[m[1]]
				if !ok {
					s.problems = append(s.problems, fmt.Sprintf("%s names an unknown parameter", t))
					return t
				}
				return Ref(sam)
			}
			if anyParamVar.MatchString(t) {
				s.problems = append(s.problems, fmt.Sprintf("%q embeds a ${param:...} in a longer string: give it a whole value", t))
			}
		case map[string]any:
			if r, ok := t["Ref"].(string); ok && len(t) == 1 {
				if alias, ok := ServerlessAliases[r]; ok {
					return Ref(alias)
				}
			}
			if ga, ok := t["Fn::GetAtt"].([]any); ok && len(t) == 1 && len(ga) == 2 {
				if alias, ok := ServerlessAliases[str(ga[0])]; ok {
					return GetAtt(alias, str(ga[1]))
				}
			}
		}
		return v
	}))
	doc["params"] = params
	s.doc = doc
	s.resources = resourcesOf(get(doc, "resources", "Resources"))
	s.conditions = asMap(get(doc, "resources", "Conditions"))
	s.outputs = asMap(get(doc, "resources", "Outputs"))
	provider := asMap(doc["provider"])
	extensions := asMap(get(doc, "resources", "extensions"))
	for name, f := range asMap(doc["functions"]) {
		var fn *Function
		for i := range Functions {
			if Functions[i].Name == name {
				fn = &Functions[i]
			}
		}
		if fn == nil {
			s.problems = append(s.problems, "an unexpected function "+name)
			continue
		}
		var ext map[string]any
		for generated, id := range ServerlessAliases {
			if id == fn.LogicalID {
				ext = asMap(get(extensions, generated, "Properties"))
			}
		}
		s.functions[name] = serverlessFunction(asMap(f), provider, ext)
	}
	return s, nil
}

func serverlessFunction(f, provider, ext map[string]any) functionSpec {
	prop := func(k string) any {
		if v, ok := f[k]; ok {
			return v
		}
		return provider[k]
	}
	spec := functionSpec{
		Runtime: str(prop("runtime")), Architecture: str(prop("architecture")), Handler: str(f["handler"]),
		MemorySize: prop("memorySize"), Timeout: prop("timeout"), Role: Format(f["role"]),
		Logging: ext["LoggingConfig"], ReservedConcurrency: ext["ReservedConcurrentExecutions"],
		Env:   map[string]any{},
		Build: "artifact=" + str(get(f, "package", "artifact")),
	}
	if r, ok := f["role"].(string); ok {
		spec.Role = r
	}
	if rc, ok := f["reservedConcurrency"]; ok {
		spec.ReservedConcurrency = rc
	}
	for k, v := range asMap(provider["environment"]) {
		spec.Env[k] = v
	}
	for k, v := range asMap(f["environment"]) {
		spec.Env[k] = v
	}
	switch u := f["url"].(type) {
	case bool:
		if u {
			spec.URLAuthType = "NONE"
		}
	case map[string]any:
		spec.URLAuthType = "NONE"
		if a := str(u["authorizer"]); a != "" && a != "none" {
			spec.URLAuthType = strings.ToUpper(a)
		}
	}
	events, _ := f["events"].([]any)
	for i, e := range events {
		sq := asMap(asMap(e)["sqs"])
		if sq == nil || spec.SQS != nil {
			for k := range asMap(e) {
				spec.OtherEvents = append(spec.OtherEvents, fmt.Sprintf("events[%d] (%s)", i, k))
			}
			continue
		}
		spec.SQS = map[string]any{"Queue": sq["arn"]}
		rename := map[string]string{
			"batchSize":             "BatchSize",
			"maximumBatchingWindow": "MaximumBatchingWindowInSeconds",
		}
		for from, to := range rename {
			if v, ok := sq[from]; ok {
				spec.SQS[to] = v
			}
		}
		if v, ok := sq["functionResponseType"]; ok {
			spec.SQS["FunctionResponseTypes"] = []any{v}
		}
		if v, ok := sq["maximumConcurrency"]; ok {
			spec.SQS["ScalingConfig"] = map[string]any{"MaximumConcurrency": v}
		}
		for k := range sq {
			if _, known := rename[k]; !known && k != "arn" && k != "functionResponseType" && k != "maximumConcurrency" {
				spec.SQS["serverless:"+k] = sq[k]
			}
		}
	}
	return spec
}

// ofType lists the logical ids of the declared resources of one type.
func (s *stack) ofType(typ string) []string {
	var ids []string
	for id, r := range s.resources {
		if r["Type"] == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

func (s *stack) prop(id string, keys ...any) any {
	return get(s.resources[id], append([]any{"Properties"}, keys...)...)
}
