package trigger

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestMessages: the errors a user meets with a trigger file say what was
// wrong once, with the value, and what to do.
func TestMessages(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string // the problems, in order
	}{
		{"unset variable, reported once", "triggers:\n  - name: a\n    actions: [pushImage]\n    namespace: x\n    url: http://${REGTRIGGER_TEST_UNSET}/hook\n",
			[]string{"trigger a (line 2): url: environment variable REGTRIGGER_TEST_UNSET is not set: export it before running regtrigger, or write the value in the file"}},
		{"loopback URL, with the way to allow it", "triggers:\n  - name: a\n    actions: [pushImage]\n    namespace: x\n    url: http://127.0.0.1:9000/hook\n",
			[]string{"trigger a (line 2): url: outbound: blocked http://127.0.0.1:9000/hook: address 127.0.0.1 is", "; allow it with --allow-private 127.0.0.1/32 (serve's setting: give triggers apply and match the same)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.file), LoadOptions{LookupEnv: func(string) (string, bool) { return "", false }})
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) != 1 {
				t.Fatalf("want one problem, got %v", err)
			}
			got := ve.Problems[0].String()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("problem %q lacks %q", got, w)
				}
			}
		})
	}
	_, err := ReadFile(filepath.Join(t.TempDir(), "nope.yaml"), LoadOptions{})
	if err == nil || err.Error() != "cannot read the trigger file: no such file or directory" {
		t.Errorf("missing file: %v", err)
	}
}
