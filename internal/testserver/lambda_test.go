package testserver

import (
	"strings"
	"testing"
)

func TestFunctionError(t *testing.T) {
	tests := []struct {
		name string
		body string
		want *FunctionError
	}{
		{"aws-lambda-go's error", `{"errorMessage":"boom","errorType":"errorString"}`, &FunctionError{Message: "boom", Type: "errorString"}},
		{"with a stack trace", `{"errorMessage":"panic","errorType":"runtime.Error","stackTrace":[{"path":"x.go","line":1,"label":"f"}]}`, &FunctionError{Message: "panic", Type: "runtime.Error"}},
		{"an answer", `{"statusCode":202,"body":"{}"}`, nil},
		{"an answer with more keys", `{"errorMessage":"x","errorType":"y","statusCode":500}`, nil},
		{"no type", `{"errorMessage":"x"}`, nil},
		{"null", `null`, nil},
		{"not JSON", `Task timed out after 30.00 seconds`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := functionError([]byte(tt.body))
			switch {
			case tt.want == nil && got != nil:
				t.Errorf("read %+v as a function error", got)
			case tt.want != nil && (got == nil || *got != *tt.want):
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLineSplitter(t *testing.T) {
	tests := []struct {
		name             string
		writes           []string
		function, others string
	}{
		{"platform lines apart", []string{"START RequestId: 1 Version: $LATEST\n{\"msg\":\"a\"}\nEND RequestId: 1\nREPORT RequestId: 1\tDuration: 1 ms\n"},
			"{\"msg\":\"a\"}\n", "START RequestId: 1 Version: $LATEST\nEND RequestId: 1\nREPORT RequestId: 1\tDuration: 1 ms\n"},
		{"a line in pieces", []string{"{\"ms", "g\":\"a\"}\nSTA", "RT RequestId: 2\n"}, "{\"msg\":\"a\"}\n", "START RequestId: 2\n"},
		{"a last line without newline", []string{"a\nb"}, "a\nb", ""},
		{"a function line naming a request", []string{"the END RequestId: is not at the start\n"}, "the END RequestId: is not at the start\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn, platform := &logBuffer{}, &logBuffer{}
			s := &lineSplitter{fn: fn, platform: platform}
			for _, w := range tt.writes {
				if n, err := s.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			s.flush()
			if got := fn.String(); got != tt.function {
				t.Errorf("function lines %q, want %q", got, tt.function)
			}
			if got := platform.String(); got != tt.others {
				t.Errorf("platform lines %q, want %q", got, tt.others)
			}
			if strings.Contains(fn.String(), "REPORT RequestId") {
				t.Error("a REPORT line in the function's output")
			}
		})
	}
}
