package deploy

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// The resolver must read the intrinsics both tools write as CloudFormation
// would evaluate them, or the comparisons above compare the wrong thing.
func TestResolver(t *testing.T) {
	tpl := &template{}
	if err := json.Unmarshal([]byte(`{
		"Parameters": {"Size": {"Type": "Number", "Default": 10}, "Mail": {"Type": "String", "Default": ""}},
		"Conditions": {
			"HasMail": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Mail"}, ""]}]},
			"Big": {"Fn::Equals": [{"Ref": "Size"}, "20"]},
			"Both": {"Fn::And": [{"Condition": "HasMail"}, {"Condition": "Big"}]}
		},
		"Resources": {
			"Table": {"Type": "AWS::DynamoDB::Table"},
			"GeneratedFunction": {"Type": "AWS::Lambda::Function", "Properties": {"Role": {"Fn::GetAtt": ["ReceiverRole", "Arn"]}}},
			"ReceiverRole": {"Type": "AWS::IAM::Role"}
		}
	}`), tpl); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		values  map[string]string
		in      string
		want    any
		problem string
	}{
		{"parameter default, as a string", nil, `{"Ref": "Size"}`, "10", ""},
		{"parameter value", map[string]string{"Size": "20"}, `{"Ref": "Size"}`, "20", ""},
		{"scalars are strings", nil, `[10, 1.5, true, "x"]`, []any{"10", "1.5", "true", "x"}, ""},
		{"resource Ref", nil, `{"Ref": "Table"}`, "${Table}", ""},
		{"GetAtt, both forms", nil, `[{"Fn::GetAtt": ["Table", "Arn"]}, {"Fn::GetAtt": "Table.Arn"}]`, []any{"${Table.Arn}", "${Table.Arn}"}, ""},
		{"generated id read as the SAM one", nil, `{"Fn::GetAtt": ["GeneratedFunction", "Arn"]}`, "${ReceiverFunction.Arn}", ""},
		{"pseudo parameter", nil, `{"Ref": "AWS::StackName"}`, "${AWS::StackName}", ""},
		{"Join", nil, `{"Fn::Join": ["", [{"Fn::GetAtt": ["Table", "Arn"]}, "/index/x"]]}`, "${Table.Arn}/index/x", ""},
		{"Sub", nil, `{"Fn::Sub": "${Table.Arn}/index/x-${Size}-${AWS::Region}-${!Literal}"}`, "${Table.Arn}/index/x-10-${AWS::Region}-${!Literal}", ""},
		{"Sub variables", nil, `{"Fn::Sub": ["${A}-${Table}", {"A": {"Ref": "Size"}}]}`, "10-${Table}", ""},
		{"If false, NoValue drops the key", nil, `{"a": {"Fn::If": ["HasMail", [{"Ref": "Mail"}], {"Ref": "AWS::NoValue"}]}, "b": "1"}`, map[string]any{"b": "1"}, ""},
		{"If true", map[string]string{"Mail": "ops@example.com"}, `{"Fn::If": ["HasMail", [{"Ref": "Mail"}], {"Ref": "AWS::NoValue"}]}`, []any{"ops@example.com"}, ""},
		{"NoValue drops a list element", nil, `[{"Fn::If": ["Big", "x", {"Ref": "AWS::NoValue"}]}, "y"]`, []any{"y"}, ""},
		{"And of conditions", map[string]string{"Mail": "m", "Size": "20"}, `{"Fn::If": ["Both", "yes", "no"]}`, "yes", ""},
		{"And, one false", map[string]string{"Mail": "m"}, `{"Fn::If": ["Both", "yes", "no"]}`, "no", ""},
		{"unknown intrinsic", nil, `{"Fn::Select": [0, ["a"]]}`, nil, "does not know Fn::Select"},
		{"Ref to nothing", nil, `{"Ref": "Nothing"}`, "${Nothing}", "neither a parameter nor a resource"},
		{"undeclared condition", nil, `{"Fn::If": ["Nope", "a", "b"]}`, "b", "condition Nope is not declared"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var in any
			if err := json.Unmarshal([]byte(tc.in), &in); err != nil {
				t.Fatal(err)
			}
			s := newStack("SAM", paramSet{name: tc.name, values: tc.values}, tpl)
			r := &resolver{s: s, tpl: tpl, rename: renames(tpl), evaluating: map[string]bool{}}
			got := r.resolve(in, "value")
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("resolve(%s) = %s, want %s", tc.in, format(got), format(tc.want))
			}
			problems := strings.Join(s.problems, "\n")
			if (tc.problem == "") != (problems == "") || !strings.Contains(problems, tc.problem) {
				t.Errorf("problems %q, want one containing %q", problems, tc.problem)
			}
		})
	}
}
