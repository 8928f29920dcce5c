package deploy

import (
	"strings"
	"testing"
)

func TestDecodeShortAndLongFormsAgree(t *testing.T) {
	for _, tc := range []struct {
		name        string
		short, long string
	}{
		{"Ref", `v: !Ref Table`, `v: {Ref: Table}`},
		{"GetAtt scalar", `v: !GetAtt Queue.Arn`, `v: {"Fn::GetAtt": [Queue, Arn]}`},
		{"GetAtt list", `v: !GetAtt [Queue, Arn]`, `v: {"Fn::GetAtt": "Queue.Arn"}`},
		{"GetAtt nested attribute", `v: !GetAtt Db.Endpoint.Address`, `v: {"Fn::GetAtt": [Db, Endpoint.Address]}`},
		{"Sub as Join", `v: !Sub "${Table.Arn}/index/x"`, `v: !Join ["", [!GetAtt Table.Arn, /index/x]]`},
		{"Sub pseudo parameter", `v: !Sub "/aws/lambda/${AWS::StackName}-r"`, `v: {"Fn::Join": ["", ["/aws/", "lambda/", {Ref: "AWS::StackName"}, "", "-r"]]}`},
		{"Sub variables", `v: !Sub ["${A}-${B}", {A: !Ref X}]`, `v: !Join ["", [!Ref X, "-", !Ref B]]`},
		{"Sub escape", `v: !Sub "${!Literal}-${AWS::Region}"`, `v: !Join ["", ["${Literal}-", !Ref "AWS::Region"]]`},
		{"Sub without variables", `v: !Sub plain`, `v: plain`},
		{"If", `v: !If [C, !Ref A, !Ref "AWS::NoValue"]`, `v: {"Fn::If": [C, {Ref: A}, {Ref: "AWS::NoValue"}]}`},
		{"Equals Not", `v: !Not [!Equals [!Ref P, ""]]`, `v: {"Fn::Not": [{"Fn::Equals": [{Ref: P}, ""]}]}`},
		{"Join of one part", `v: !Join ["", [!Ref X]]`, `v: !Ref X`},
		{"tagged mapping", `v: !If [C, {a: 1}, {b: 2}]`, `v: {"Fn::If": [C, {a: 1}, {b: 2}]}`},
		{"alias", "a: &x {k: !Ref T}\nv: *x\n", "a: {k: {Ref: T}}\nv: {k: {Ref: T}}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Decode([]byte(tc.short))
			if err != nil {
				t.Fatal(err)
			}
			l, err := Decode([]byte(tc.long))
			if err != nil {
				t.Fatal(err)
			}
			if d := Diff(s, l); d != nil {
				t.Errorf("%s and %s differ:\n%s", tc.short, tc.long, strings.Join(d, "\n"))
			}
		})
	}
}

func TestDecodeKeepsScalarTypes(t *testing.T) {
	v, err := Decode([]byte("a: 360\nb: \"360\"\nc: true\nd: 0.5\ne: null\nf: !!str 5\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := v.(map[string]any)
	if m["a"] != 360 || m["b"] != "360" || m["c"] != true || m["d"] != 0.5 || m["e"] != nil || m["f"] != "5" {
		t.Errorf("types lost: %#v", m)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown tag", "a: !Reff X\n", "line 1: unknown tag !Reff"},
		{"duplicate key", "a: 1\nb: 2\na: 3\n", `line 3: duplicate key "a"`},
		{"merge key", "x: &x {a: 1}\ny:\n  <<: *x\n", "merge keys"},
		{"bad GetAtt", "a: !GetAtt Queue\n", "want Resource.Attribute"},
		{"not YAML", "a: [1, 2\n", "yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestDiffNamesThePath(t *testing.T) {
	a, _ := Decode([]byte("r: {p: [1, {q: !Ref A}]}\n"))
	b, _ := Decode([]byte("r: {p: [1.0, {q: !Ref B}], extra: 1}\n"))
	d := Diff(a, b)
	want := []string{`.r.extra: missing on the left, right has 1`, `.r.p[1].q: !Ref A != !Ref B`}
	if strings.Join(d, "\n") != strings.Join(want, "\n") {
		t.Errorf("diff:\n%s\nwant:\n%s", strings.Join(d, "\n"), strings.Join(want, "\n"))
	}
}
